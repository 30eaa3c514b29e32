"""The gallery's convolution programs over a sampled grid of hyper-parameters, vs PyTorch.

Each op family runs one gallery file with its ``pattern P = conv(...)`` line replaced by the
sampled parameters (the files use keyword and input-driven sizes, so nothing else changes).
The grid — N ∈ {1, 2, 3}; stride {1, 2, 3}; padding {0, 1, 2, (0, 1), 'same', 'valid'};
dilation {1, 2}; kernel {1, 2, 3}; groups {1, 2, depthwise}; batch {1, 3}; odd input sizes;
dense (kernel = stride) and down-sampling (stride > kernel) cases; output_padding for the
transpose families — is sampled with a seeded RNG. Each case compares the compiled function
AND :func:`tndsl.tools.reference.dense_reference` with the PyTorch reference of :mod:`tndsl.tools.check`
(float64 to 1e-10, float32 to 1e-5; the PyTorch reference always runs in float64).

Parsing dominates the cost of a case, so each gallery file is compiled once and a case swaps
Π's parameters in the built network (``Network.patterns``); every ``END_TO_END``-th case
instead compiles the edited text, so the parser and builder see the parameters too.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
import torch

import tndsl
from tndsl.tools.check import REFERENCES, relative_error
from tndsl.tools.reference import dense_reference

GALLERY = Path(__file__).resolve().parent.parent / "gallery"
CASES_PER_FAMILY = 150
END_TO_END = 10
FLOAT32_SHARE = 0.3
PATTERN_LINE = re.compile(r"^pattern P = conv\(.*\)$", re.M)
PATTERN_PARAMS: dict[str, dict] = {}  # pattern line -> conv() parameters

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using padding='same'"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

STRIDES = (1, 2, 3)
PADDINGS = (0, 1, 2, (0, 1), "same", "valid")
DILATIONS = (1, 2)
KERNELS = (1, 2, 3)
GROUPS = (1, 2, "depthwise")
BATCHES = (1, 3)


# -- the size rules, written out independently of tndsl.patterns -------------------------
def _pads(padding, kernel: int, dilation: int) -> tuple[int, int]:
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    if isinstance(padding, tuple):
        return padding
    return padding, padding


def _out(i: int, k: int, stride: int, padding, dilation: int) -> int:
    left, right = _pads(padding, k, dilation)
    return (i + left + right - dilation * (k - 1) - 1) // stride + 1


def _in(o: int, k: int, stride: int, padding, dilation: int, output_padding: int) -> int:
    left, right = _pads(padding, k, dilation)
    return (o - 1) * stride - left - right + dilation * (k - 1) + 1 + output_padding


def _pattern_text(stride, padding, dilation, output_padding) -> str:
    pad = f"'{padding}'" if isinstance(padding, str) else (f"({padding[0]}, {padding[1]})" if isinstance(padding, tuple) else str(padding))
    text = f"pattern P = conv(stride={stride}, padding={pad}, dilation={dilation}, output_padding={output_padding})"
    PATTERN_PARAMS[text] = dict(stride=stride, padding=padding, dilation=dilation, output_padding=output_padding)
    return text


@dataclass(frozen=True)
class Case:
    family: str
    file: str
    definition: str
    pattern: str
    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    keywords: tuple[tuple[str, int], ...]
    reference: str
    arguments: tuple[str, ...]
    params: tuple[tuple[str, object], ...]
    dtype: torch.dtype
    seed: int

    @property
    def id(self) -> str:
        params = dict(self.params)
        shape = "x".join(map(str, self.shapes[0][1]))
        dt = "f32" if self.dtype == torch.float32 else "f64"
        return (
            f"{self.definition}-s{params.get('stride')}-p{params.get('padding')}-d{params.get('dilation')}"
            f"-op{params.get('output_padding', 0)}-g{params.get('groups', 1)}-{shape}-{dt}-{self.seed}"
        ).replace(" ", "").replace("'", "")


# -- sampling -------------------------------------------------------------------------------
def _hyper(rng: random.Random, transpose: bool):
    n = rng.choice((1, 2, 3))
    case = rng.random()
    if case < 0.12:  # dense: kernel = stride, no padding
        stride = rng.choice(STRIDES)
        kernels = (stride,) * n
        padding, dilation = rng.choice((0, "valid")), 1
    elif case < 0.24:  # down-sampling: stride > kernel
        stride = rng.choice((2, 3))
        kernels = tuple(rng.choice([k for k in KERNELS if k < stride]) for _ in range(n))
        padding, dilation = rng.choice((0, "valid", 1)), 1
    else:
        stride = rng.choice(STRIDES)
        padding = rng.choice(PADDINGS)
        if padding == "same":
            stride = 1
        dilation = rng.choice(DILATIONS)
        first = rng.choice(KERNELS)
        kernels = (first,) + tuple(rng.choice(KERNELS) for _ in range(n - 1))
    output_padding = rng.randrange(stride) if transpose else 0
    return n, stride, padding, dilation, kernels, output_padding


def _channels(rng: random.Random, groups_choice):
    if groups_choice == 1:
        return 1, rng.choice((1, 2, 3)), rng.choice((1, 2))
    if groups_choice == 2:
        return 2, rng.choice((1, 2)), rng.choice((1, 2))
    return rng.choice((2, 3)), 1, rng.choice((1, 2))  # depthwise: one input channel per group


def _spatial(rng, n, kernels, stride, padding, dilation, output_padding, transpose):
    """(input sizes I, output sizes O) of the underlying convolution, all non-empty."""
    for _ in range(1000):
        if transpose:
            outs = tuple(rng.choice((2, 3, 4, 5)) for _ in range(n))
            ins = tuple(_in(o, k, stride, padding, dilation, output_padding) for o, k in zip(outs, kernels))
        else:
            ins = tuple(rng.choice((3, 5, 7, 9, 11) if n < 3 else (3, 5, 7)) for _ in range(n))
            outs = tuple(_out(i, k, stride, padding, dilation) for i, k in zip(ins, kernels))
        if min(ins) >= 1 and min(outs) >= 1:
            return ins, outs
    raise AssertionError("no non-empty sizes found")


def _make(family: str, rng: random.Random, seed: int) -> Case:
    transpose = family.startswith("conv_transpose")
    n, stride, padding, dilation, kernels, op = _hyper(rng, transpose)
    ins, outs = _spatial(rng, n, kernels, stride, padding, dilation, op, transpose)
    g, ci, co = _channels(rng, rng.choice(GROUPS))
    batch = rng.choice(BATCHES)
    kernel_kw = tuple((f"k{d + 1}", k) for d, k in enumerate(kernels))
    conv = dict(stride=stride, padding=padding, dilation=dilation)
    tr = dict(conv, output_padding=op)
    N = n
    if family == "conv":
        file, definition = "conv_groups.tn", f"Y{N}"
        shapes = {f"X{N}": (batch, g * ci, *ins), f"W{N}": (g * co, ci, *kernels), "b": (g * co,)}
        keywords, reference, arguments, params = (), f"conv{N}d", (f"X{N}", f"W{N}", "b"), dict(conv, groups=g)
    elif family == "conv_transpose":
        file, definition = "conv_transpose.tn", f"Y{N}"
        shapes = {f"X{N}": (batch, g * ci, *outs), f"W{N}": (g * ci, co, *kernels), "b": (g * co,)}
        keywords, reference, arguments, params = (("g", g),), f"conv_transpose{N}d", (f"X{N}", f"W{N}", "b"), dict(tr, groups=g)
    elif family == "unfold":
        file, definition = "unfold.tn", f"U{N}"
        shapes = {f"X{N}": (batch, g * ci, *ins)}
        keywords, reference, arguments, params = kernel_kw, f"unfold{N}d", (f"X{N}",), dict(conv, kernel_size=kernels)
    elif family == "conv_transpose_unfold":
        file, definition = "conv_transpose_unfold.tn", f"U{N}"
        shapes = {f"X{N}": (batch, g * ci, *outs)}
        keywords, reference, arguments, params = kernel_kw, f"conv_transpose_unfold{N}d", (f"X{N}",), dict(tr, kernel_size=kernels)
    elif family == "conv_input_vjp":
        file, definition = "conv_input_vjp.tn", f"GX{N}"
        shapes = {f"V{N}": (batch, g * co, *outs), f"W{N}": (g * co, ci, *kernels)}
        keywords = (("g", g),) + tuple((f"i{d + 1}", i) for d, i in enumerate(ins))
        reference, arguments, params = f"conv_input_vjp{N}d", (f"V{N}", f"W{N}"), dict(conv, groups=g, input_size=ins)
    elif family == "conv_weight_vjp":
        file, definition = "conv_weight_vjp.tn", f"GW{N}"
        shapes = {f"X{N}": (batch, g * ci, *ins), f"V{N}": (batch, g * co, *outs)}
        keywords = (("g", g),) + kernel_kw
        reference, arguments, params = f"conv_weight_vjp{N}d", (f"X{N}", f"V{N}"), dict(conv, groups=g, kernel_size=kernels)
    elif family == "conv_input_jvp":
        file, definition = "conv_input_jvp.tn", f"YD{N}"
        shapes = {f"W{N}": (g * co, ci, *kernels), f"T{N}": (batch, g * ci, *ins)}
        keywords, reference, arguments, params = (), f"conv_input_jvp{N}d", (f"W{N}", f"T{N}"), dict(conv, groups=g)
    elif family == "conv_weight_jvp":
        file, definition = "conv_weight_jvp.tn", f"YD{N}"
        shapes = {f"X{N}": (batch, g * ci, *ins), f"T{N}": (g * co, ci, *kernels)}
        keywords, reference, arguments, params = (), f"conv_weight_jvp{N}d", (f"X{N}", f"T{N}"), dict(conv, groups=g)
    elif family in ("kfc", "kfac_reduce"):
        file, definition = f"{family}.tn", f"Omega{N}"
        shapes = {f"X{N}": (batch, g * ci, *ins)}
        keywords = (("g", g),) + kernel_kw
        reference, arguments, params = f"{family}{N}d", (f"X{N}",), dict(conv, groups=g, kernel_size=kernels)
    elif family == "conv_transpose_kfac_reduce":
        file, definition = "conv_transpose_kfac_reduce.tn", f"Omega{N}"
        shapes = {f"X{N}": (batch, g * ci, *outs)}
        keywords = (("g", g),) + kernel_kw
        reference, arguments, params = f"{family}{N}d", (f"X{N}",), dict(tr, groups=g, kernel_size=kernels)
    elif family == "ggn_diagonal":
        file, definition = "ggn_diagonal.tn", f"D{N}"
        columns = rng.choice((1, 2))
        shapes = {f"X{N}": (batch, g * ci, *ins), f"S{N}": (columns, batch, g * co, *outs)}
        keywords = (("g", g),) + kernel_kw
        reference, arguments, params = f"ggn_diagonal{N}d", (f"X{N}", f"S{N}"), dict(conv, groups=g, kernel_size=kernels)
    else:  # pragma: no cover
        raise AssertionError(family)
    dtype = torch.float32 if rng.random() < FLOAT32_SHARE else torch.float64
    return Case(
        family,
        file,
        definition,
        _pattern_text(stride, padding, dilation, op),
        tuple(shapes.items()),
        tuple(keywords),
        reference,
        arguments,
        tuple(params.items()),
        dtype,
        seed,
    )


FAMILIES = (
    "conv",
    "conv_transpose",
    "unfold",
    "conv_transpose_unfold",
    "conv_input_vjp",
    "conv_weight_vjp",
    "conv_input_jvp",
    "conv_weight_jvp",
    "kfc",
    "kfac_reduce",
    "conv_transpose_kfac_reduce",
    "ggn_diagonal",
)


def _cases(family: str) -> list[Case]:
    rng = random.Random(f"tndsl-grid-{family}")
    return [_make(family, rng, seed) for seed in range(CASES_PER_FAMILY)]


ALL_CASES = [case for family in FAMILIES for case in _cases(family)]



@lru_cache(maxsize=None)
def _text_program(file: str, pattern: str | None) -> tndsl.Program:
    text = (GALLERY / file).read_text(encoding="utf-8")
    if pattern is not None:
        text, count = PATTERN_LINE.subn(pattern, text)
        assert count == 1, f"{file} must have exactly one 'pattern P = conv(...)' line"
    return tndsl.compile(text, file)


@lru_cache(maxsize=None)
def _function(case_file: str, definition: str, pattern: str, end_to_end: bool) -> tuple[tndsl.Function, tndsl.Network]:
    if end_to_end:
        program = _text_program(case_file, pattern)
        return program[definition], program.networks[definition]
    network = _text_program(case_file, None).networks[definition]
    spec = tndsl.PatternSpec.create(**PATTERN_PARAMS[pattern])
    patterns = tuple((name, spec if name == "P" else old) for name, old in network.patterns)
    network = dataclasses.replace(network, patterns=patterns)
    return tndsl.Function(network), network


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_grid_case(case: Case) -> None:
    function, network = _function(case.file, case.definition, case.pattern, case.seed % END_TO_END == 0)
    generator = torch.Generator().manual_seed(case.seed)
    tensors = {name: torch.randn(shape, generator=generator, dtype=torch.float64) for name, shape in case.shapes}
    keywords = dict(case.keywords)
    inputs = {name: tensors[name].to(case.dtype) for name in function.inputs}
    value = function(**inputs, **keywords)
    assert value.dtype == case.dtype
    # the reference sees exactly the (rounded) inputs the function saw, in float64
    reference = REFERENCES[case.reference](*(tensors[name].to(case.dtype).double() for name in case.arguments), **dict(case.params))
    assert value.shape == reference.shape
    tolerance = 1e-10 if case.dtype == torch.float64 else 1e-5
    error = relative_error(value, reference)
    assert error <= tolerance, f"compiled vs {case.reference}: {error:.3e}"
    dense = dense_reference(network, inputs, keywords)
    assert dense.dtype == case.dtype
    error = relative_error(dense, reference)
    assert error <= tolerance, f"dense_reference vs {case.reference}: {error:.3e}"


def test_grid_covers_the_parameter_space() -> None:
    """The sample hits every value of every grid axis, and dense and down-sampling cases."""
    seen: dict[str, set] = {key: set() for key in ("N", "stride", "padding", "dilation", "groups", "op", "dtype")}
    dense = downsample = batch1 = batch3 = 0
    for case in ALL_CASES:
        params = dict(case.params)
        n = int(case.definition[-1])
        seen["N"].add(n)
        seen["stride"].add(params["stride"])
        seen["padding"].add(params["padding"])
        seen["dilation"].add(params["dilation"])
        seen["groups"].add(params.get("groups", 1))
        seen["op"].add(params.get("output_padding", 0))
        seen["dtype"].add(case.dtype)
        kernels = params.get("kernel_size")
        if kernels is not None and params["padding"] in (0, "valid") and params["dilation"] == 1:
            dense += all(k == params["stride"] for k in kernels) and params["stride"] > 1
            downsample += all(k < params["stride"] for k in kernels)
    assert seen["N"] == {1, 2, 3}
    assert seen["stride"] == {1, 2, 3}
    assert seen["padding"] == {0, 1, 2, (0, 1), "same", "valid"}
    assert seen["dilation"] == {1, 2}
    assert {1, 2, 3} <= seen["groups"]
    assert seen["op"] == {0, 1, 2}
    assert seen["dtype"] == {torch.float32, torch.float64}
    assert dense > 10 and downsample > 10
    for case in ALL_CASES:
        batch = dict(case.shapes)[case.arguments[0]][0] if case.family not in ("conv_input_jvp",) else None
        if batch == 1:
            batch1 += 1
        elif batch == 3:
            batch3 += 1
    assert batch1 > 100 and batch3 > 100
    # odd input sizes appear for every forward family
    assert any(all(s % 2 == 1 for s in dict(c.shapes)[c.arguments[0]][2:]) for c in ALL_CASES if c.family == "conv")
