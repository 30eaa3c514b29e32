"""Compilation: random networks against torch.einsum, and the compiled function's contract."""

from __future__ import annotations

import math
import random
import string

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tndsl


def _random_case(seed: int):
    """A random program (2-8 tensors, hyperedges, traces, groupings, sums, scalars) and its reference."""
    rng = random.Random(seed)
    labels = [f"l{i}" for i in range(rng.randint(2, 9))]
    size = {label: rng.randint(1, 4) for label in labels}
    by_size: dict[int, list[str]] = {}
    for label in labels:
        by_size.setdefault(size[label], []).append(label)
    n_inputs = rng.randint(2, 8)
    inputs = []  # (name, split legs as declared, axes grouping)
    for k in range(n_inputs):
        legs = [rng.choice(labels) for _ in range(rng.randint(0, 4))]
        legs = list(dict.fromkeys(legs))
        axes = []
        position = 0
        while position < len(legs):
            width = 2 if position + 1 < len(legs) and rng.random() < 0.2 else 1
            axes.append(tuple(legs[position : position + width]))
            position += width
        inputs.append((f"T{k}", tuple(legs), tuple(axes)))
    terms = []  # (coeff value, size powers, [(input index or 'delta', use labels)])
    unused = list(range(n_inputs))
    for _ in range(rng.randint(1, 3)):
        factors = []
        for _ in range(rng.randint(1, 4)):
            index = unused.pop() if unused else rng.randrange(n_inputs)
            _, legs, _ = inputs[index]
            use = [leg if rng.random() < 0.7 else rng.choice(by_size[size[leg]]) for leg in legs]
            factors.append((index, tuple(use)))
        if rng.random() < 0.2:
            s = rng.choice(list(by_size))
            factors.append(("delta", tuple(rng.choice(by_size[s]) for _ in range(rng.randint(1, 3)))))
        value = rng.choice([1, 1, 2, -1, 0.5])
        mentioned = [l for _, use in factors for l in use]
        powers = [rng.choice(mentioned)] if mentioned and rng.random() < 0.2 else []
        terms.append((value, powers, factors))
    for index in unused:  # every input is used somewhere
        _, legs, _ = inputs[index]
        terms[0][2].append((index, legs))
    present = [label for _, _, fs in terms for _, use in fs for label in use]
    candidates = list(dict.fromkeys(present))
    rng.shuffle(candidates)
    output = candidates[: rng.randint(0, min(4, len(candidates)))]
    groups = []
    position = 0
    while position < len(output):
        width = 2 if position + 1 < len(output) and rng.random() < 0.3 else 1
        groups.append(tuple(output[position : position + width]))
        position += width

    def axis_text(axis):
        return axis[0] if len(axis) == 1 else "(" + " ".join(axis) + ")"

    lines = [f"input {name}[{', '.join(axis_text(a) for a in axes)}]" for name, _, axes in inputs]
    fixed = {axis[0] for _, _, axes in inputs for axis in axes if len(axis) > 1}
    fixed |= {label for _, _, fs in terms for index, use in fs if index == "delta" for label in use}
    lines += [f"size {label} = {size[label]}" for label in labels if label in fixed or rng.random() < 0.3]
    term_texts = []
    for value, powers, factors in terms:
        parts = [f"{name if index == 'delta' else inputs[index][0]}[{', '.join(use)}]" for index, use in factors for name in ["delta"]]
        text = " * ".join(parts)
        if value != 1:
            text = f"{value} * " + text
        for label in powers:
            text += f" / |{label}|"
        term_texts.append(text)
    lines.append(f"Y[{', '.join(axis_text(g) for g in groups)}] = " + " + ".join(term_texts))
    source = "\n".join(lines) + "\n"

    tensors = [torch.randn([math.prod(size[l] for l in axis) for axis in axes], dtype=torch.float64, generator=torch.Generator().manual_seed(seed + k)) for k, (_, _, axes) in enumerate(inputs)]

    def reference():
        letters = {label: string.ascii_letters[i] for i, label in enumerate(labels)}
        result = torch.zeros([size[l] for l in output], dtype=torch.float64)
        for value, powers, factors in terms:
            operands, specs = [], []
            for index, use in factors:
                if index == "delta":
                    n = size[use[0]]
                    delta = torch.zeros([n] * len(use), dtype=torch.float64)
                    for i in range(n):
                        delta[(i,) * len(use)] = 1
                    operands.append(delta)
                else:
                    operands.append(tensors[index].reshape([size[l] for l in inputs[index][1]]))
                specs.append("".join(letters[l] for l in use))
            have = [l for l in output if any(l in use for _, use in factors)]
            out = torch.einsum(",".join(specs) + "->" + "".join(letters[l] for l in have), *operands)
            out = out * value / math.prod(size[l] for l in powers)
            index = tuple(slice(None) if l in have else None for l in output)
            result = result + out[index] if output else result + out
        return result.reshape([math.prod(size[l] for l in g) for g in groups])

    return source, tensors, reference


@settings(max_examples=220, deadline=None, derandomize=True)
@given(st.integers(0, 2**31))
def test_random_networks_match_einsum(seed):
    source, tensors, reference = _random_case(seed)
    program = tndsl.compile(source, "random.tn")
    result = program.Y(*tensors)
    expected = reference()
    assert result.shape == expected.shape, source
    torch.testing.assert_close(result, expected, rtol=1e-10, atol=1e-10, msg=lambda m: m + "\n" + source)


def test_sixty_labels():
    labels = [f"x{i}" for i in range(60)]
    lines = [f"input A{i}[{labels[i]}, {labels[i + 1]}]" for i in range(59)]
    lines.append(f"Y[{labels[0]}, {labels[59]}] = " + " * ".join(f"A{i}[{labels[i]}, {labels[i + 1]}]" for i in range(59)))
    program = tndsl.compile("\n".join(lines))
    mats = [torch.randn(2, 2, dtype=torch.float64) / 1.5 for _ in range(59)]
    expected = torch.linalg.multi_dot(mats)
    torch.testing.assert_close(program.Y(*mats), expected)
    # 60 distinct open legs as well: an outer product of 60 vectors of size 1
    lines = [f"input v{i}[{labels[i]}]" for i in range(60)]
    lines.append(f"Z[{', '.join(labels)}] = " + " * ".join(f"v{i}[{labels[i]}]" for i in range(60)))
    vectors = [torch.full((1,), 1.01) for _ in range(60)]
    out = tndsl.compile("\n".join(lines)).Z(*vectors)
    assert out.shape == (1,) * 60 and abs(out.item() - 1.01**60) < 1e-4


CORE = """
input A[i, j]
input B[j, k]
input v[k]
input X[n, (c k2)]
size k2 = 3
C[i, k] = A[i, j] * B[j, k]
T[] = A[i, i]
D[i, j] = delta[i, j] * A[i, j]
E[(i j)] = A[i, j] + v[j] - 2 * delta[i, j]
G[c, d] = X[n, c, k2] * X[n, d, k2] / |n|
U[(n c), k2] = X[n, c, k2]
N[i] = C[i, k] * v[k] * |k|
"""


@pytest.fixture(scope="module")
def core():
    return tndsl.compile(CORE, "core.tn")


def test_core_semantics(core):
    a = torch.randn(3, 3, dtype=torch.float64)
    b = torch.randn(3, 4, dtype=torch.float64)
    v = torch.randn(3, dtype=torch.float64)
    x = torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(core.C(a, b), a @ b)
    torch.testing.assert_close(core["T"](a), torch.trace(a))
    torch.testing.assert_close(core.D(a), torch.diag(torch.diag(a)))
    torch.testing.assert_close(core.E(a, v), (a + v - 2 * torch.eye(3, dtype=torch.float64)).reshape(9))
    xs = x.reshape(5, 2, 3)
    torch.testing.assert_close(core.G(x), torch.einsum("nck,ndk->cd", xs, xs) / 5)
    torch.testing.assert_close(core.U(x), xs.reshape(10, 3))
    torch.testing.assert_close(core.N(a, b, v[:3].new_ones(4)), (a @ b).sum(1) * 4)
    torch.testing.assert_close(core.C(A=a, B=b), a @ b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_are_kept(core, dtype):
    a = torch.randn(3, 5).to(dtype)
    b = torch.randn(5, 4).to(dtype)
    out = core.C(a, b)
    assert out.dtype == dtype and out.device == a.device
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-5)
    torch.testing.assert_close(out.double(), a.double() @ b.double(), rtol=tol, atol=tol)


def test_dtype_promotion(core):
    a = torch.randn(3, 5, dtype=torch.float32)
    b = torch.randn(5, 4, dtype=torch.float64)
    with pytest.raises(tndsl.TnCallError, match="different dtypes"):  # as torch's matmul
        core.C(a, b)
    promoting = tndsl.compile(CORE, "core.tn", promote=True)
    assert promoting.C(a, b).dtype == torch.promote_types(a.dtype, b.dtype)
    assert promoting.C(a.half(), b.float()).dtype == torch.float32


def test_plans_are_cached_and_source_is_straight_line(core):
    a, b = torch.randn(3, 5), torch.randn(5, 4)
    core.C(a, b)
    cache = core.C._cache
    size = len(cache)
    core.C(torch.randn(3, 5), torch.randn(5, 4))
    assert len(cache) == size
    core.C(torch.randn(2, 5), b)
    assert len(cache) == size + 1
    source = core.C.source(a, b)
    assert source.startswith("def tn_C(a0, a1):") and "torch.einsum(" in source
    for line in source.splitlines():
        if "einsum(" in line:
            assert line.count(",") <= 3  # two operands at most


def test_no_user_text_in_generated_source():
    program = tndsl.compile("input evil__import__[i, j]\nY[i] = evil__import__[i, j]  # os.system('x')\n")
    source = program.Y.source(torch.ones(2, 2))
    body = source.split("\n", 2)[2]  # after the def line and the docstring literal
    assert "evil" not in body and "os.system" not in source


def test_sum_of_broadcast_terms_has_full_shape():
    program = tndsl.compile("input b[c]\ninput x[n]\nY[n, c] = b[c] + 0 * x[n]\nZ[n, c] = b[c] * delta[n]\nsize n = 3")
    b = torch.arange(4.0)
    assert torch.equal(program.Y(b, torch.zeros(3)), b.expand(3, 4))
    assert torch.equal(program.Z(b), b.expand(3, 4)) and program.Z(b).is_contiguous()


def test_python_api_network_takes_unfixed_sizes_as_keywords():
    program = tndsl.compile("input A[i, j]\ninput B[j, k]\nC[i, k] = A[i, j] * B[j, k]")
    gradient = tndsl.Function(tndsl.rewrite.grad(program.networks["C"], "A"))
    assert gradient.keywords == ("i",)  # i_1 follows from i through the delta
    b = torch.randn(4, 5, dtype=torch.float64)
    out = gradient(b, i=3)
    expected = torch.einsum("il,jk->ikl" + "j", torch.eye(3, dtype=torch.float64), b)
    torch.testing.assert_close(out, expected)
    with pytest.raises(tndsl.TnCallError, match="missing size keyword argument"):
        gradient(b)
