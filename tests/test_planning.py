"""Planning: lowerings chosen by cost, new lowerings (fold, pixel shuffle), deterministic and
bounded paths."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tndsl
from bench.open_world import CP, SHUFFLE, TUCKER
from bench.planning import random_regular
from tndsl.backend.paths import greedy, optimal

ROOT = Path(__file__).resolve().parent.parent


def _conv_ops(plan):
    return [op for op in plan.ops if op.prim == "conv"]


def test_tucker_conv_projects_before_convolving():
    """Lowering first would convolve every input channel with every rank (batch n·c):
    the planner prices that and takes the 1×1 projection first, as PyTorch's way does."""
    x = torch.randn(2, 16, 12, 12, dtype=torch.float64)
    u, g, v = torch.randn(16, 4, dtype=torch.float64), torch.randn(4, 4, 3, 3, dtype=torch.float64), torch.randn(4, 16, dtype=torch.float64)
    program = tndsl.compile(TUCKER)
    plan = program.Y.plan(x, u, g, v)
    (conv,) = _conv_ops(plan)
    computed = [op.prim for op in plan.ops if op.prim not in ("reshape", "permute")]
    assert computed[0] in ("einsum", "matmul") and computed[1] == "conv"  # X·U first
    assert dict(conv.params)["groups"] == 1
    always = tndsl.compile(TUCKER, lowering="always").Y.plan(x, u, g, v)
    assert always.ops[0].prim == "reshape" and dict(always.ops[0].params)["shape"] == (2 * 16, 1, 12, 12)  # n·c as batch
    reference = F.conv2d(F.conv2d(F.conv2d(x, u.t()[:, :, None, None]), g.permute(1, 0, 2, 3), padding=1), v.t()[:, :, None, None])
    torch.testing.assert_close(program.Y(x, u, g, v), reference)


def test_cp_conv_is_separable_and_priced_as_a_cpu_runs_it():
    """Lowered, a CP-factorized kernel is one convolution per spatial axis; projected first,
    both are depthwise (one group per rank). A convolution summing so few products per
    result runs far below the matmul rate, and the cost model knows it: by cost, the
    generic plan's banded matrices (Π folded with the factors) win, as measured on CPU."""
    x = torch.randn(2, 16, 10, 11, dtype=torch.float64)
    a, bk, bl, d = (torch.randn(*s, dtype=torch.float64) for s in [(16, 4), (4, 3), (4, 3), (4, 8)])
    always = tndsl.compile(CP, lowering="always")
    assert len(_conv_ops(always.Y.plan(x, a, bk, bl, d))) == 2
    program = tndsl.compile(CP)
    assert not _conv_ops(program.Y.plan(x, a, bk, bl, d))
    dense = tndsl.compile(CP, lowering=False)
    torch.testing.assert_close(program.Y(x, a, bk, bl, d), dense.Y(x, a, bk, bl, d))
    torch.testing.assert_close(always.Y(x, a, bk, bl, d), dense.Y(x, a, bk, bl, d))


def test_chosen_plan_is_the_cheapest_candidate():
    from tndsl.backend import plan as planning

    seen = []
    original = planning._term_with

    def spy(term, planner, ops, strategy):
        var = original(term, planner, ops, strategy)
        seen.append((strategy.name, ops.cost(var)))
        return var

    x = torch.randn(2, 16, 12, 12, dtype=torch.float64)
    args = (x, torch.randn(16, 4, dtype=torch.float64), torch.randn(4, 4, 3, 3, dtype=torch.float64), torch.randn(4, 16, dtype=torch.float64))
    planning._term_with = spy
    try:
        plan = tndsl.compile(TUCKER).Y.plan(*args)
    finally:
        planning._term_with = original
    names = [name for name, _ in seen]
    assert names == ["lowered", "projected", "generic"]
    best = min(seen, key=lambda item: item[1])[0]
    assert best == "projected" and _conv_ops(plan)


FOLD = """
input Z[n, c, k1, k2, o1, o2]
pattern P = conv(stride={s}, padding={p}, dilation={d})
size i1
size i2
Y[n, c, i1, i2] = Z[n, c, k1, k2, o1, o2] * P[i1, o1, k1] * P[i2, o2, k2]
Y1[n, c, k2, o2, i1] = Z[n, c, k1, k2, o1, o2] * P[i1, o1, k1]
"""


@pytest.mark.parametrize("col2im", [True, False])
@pytest.mark.parametrize("s, p, d", list(itertools.product([1, 2, 3], ["0", "1", "(1, 0)"], [1, 2])))
def test_fold_equals_dense(s, p, d, col2im, monkeypatch):
    """Both forms of a fold, F.fold (col2im) and one matrix product per Π (each made the
    only candidate here)."""
    from tndsl.backend import lower

    only = lower._fold_col2im if col2im else lower._fold_matmuls
    monkeypatch.setattr(lower, "_fold_col2im", only)
    monkeypatch.setattr(lower, "_fold_matmuls", only)
    text = FOLD.format(s=s, p=p, d=d)
    lowered, dense = tndsl.compile(text, lowering="always"), tndsl.compile(text, lowering=False)
    spec = tndsl.PatternSpec.create(stride=s, padding=eval(p), dilation=d)
    for i1, i2 in [(7, 8), (10, 6)]:
        o1, o2 = spec.out_size(i1, 3), spec.out_size(i2, 2)
        if min(o1, o2) < 1:
            continue
        z = torch.randn(2, 3, 3, 2, o1, o2, dtype=torch.float64)
        source = lowered.Y.source(z, i1=i1, i2=i2)
        assert ("F.fold(" in source) == col2im and ("@" in source) != col2im and "einsum" not in source
        torch.testing.assert_close(lowered.Y(z, i1=i1, i2=i2), dense.Y(z, i1=i1, i2=i2))
        torch.testing.assert_close(lowered.Y1(z, i1=i1), dense.Y1(z, i1=i1))


def test_fold_matches_torch():
    text = FOLD.format(s=2, p=1, d=1)
    u = torch.randn(2, 3 * 3 * 2, 4 * 4, dtype=torch.float64)  # F.unfold's layout [n, (c k1 k2), (o1 o2)]
    z = u.reshape(2, 3, 3, 2, 4, 4)
    expected = F.fold(u, (8, 7), (3, 2), padding=1, stride=2)
    torch.testing.assert_close(tndsl.compile(text).Y(z, i1=8, i2=7), expected)


def test_pixel_shuffle_is_a_reshape():
    x = torch.randn(2, 12, 5, 6)
    program = tndsl.compile(SHUFFLE)
    plan = program.Y.plan(x)
    assert {op.prim for op in plan.ops} <= {"reshape", "permute"}
    assert torch.equal(program.Y(x), F.pixel_shuffle(x, 2))


def _mps_grad(sites: int) -> str:
    lines = [f"input A{s}[l{s}, p{s}, l{s + 1}]" for s in range(sites)]
    lines += ["size l0 = 1", f"size l{sites} = 1"]
    bra = " * ".join(f"A{s}[l{s}, p{s}, l{s + 1}]" for s in range(sites))
    ket = " * ".join(f"A{s}[m{s}, p{s}, m{s + 1}]" for s in range(sites)).replace("m0", "l0").replace(f"m{sites}", f"l{sites}")
    return "\n".join(lines + [f"N[] = {bra} * {ket}", "G = grad(N, A3)"])


def test_plans_do_not_depend_on_the_hash_seed(tmp_path):
    (tmp_path / "mps.tn").write_text(_mps_grad(10))
    code = (
        "import tndsl, torch, hashlib\n"
        f"p = tndsl.load({str(tmp_path / 'mps.tn')!r})\n"
        "args = [torch.ones(1 if s == 0 else 3, 2, 1 if s == 9 else 3) for s in range(10)]\n"
        "f = p.G\n"
        "args = [a for s, a in enumerate(args) if f'A{s}' in f.inputs]\n"
        "print(hashlib.md5(f.source(*args).encode()).hexdigest())\n"
    )
    digests = set()
    for seed in ("0", "1", "123"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize("n", [8, 16, 30])
def test_random_networks_plan_fast_and_right(n):
    text, shapes = random_regular(n, seed=n)
    program = tndsl.compile(text)
    generator = torch.Generator().manual_seed(n)
    args = [torch.rand(*shape, generator=generator, dtype=torch.float64) for shape in shapes]
    start = time.perf_counter()
    value = program.R(*args)
    assert time.perf_counter() - start < 0.5
    from tndsl.tools.reference import dense_reference

    if n <= 16:
        torch.testing.assert_close(value, dense_reference(program.R.network, args))


def test_long_chain_plans_about_as_fast_as_opt_einsum_finds_a_path():
    """Timed side by side in one process (a ratio, robust to a busy machine); the
    benchmark (bench/planning.py) records the figures."""
    import opt_einsum as oe

    n = 300
    text = "\n".join(f"input M{k}[i{k}, i{k + 1}]" for k in range(n))
    text += f"\nC[i0, i{n}] = " + " * ".join(f"M{k}[i{k}, i{k + 1}]" for k in range(n))
    function = tndsl.compile(text).C
    args = [torch.eye(3, dtype=torch.float64) for _ in range(n)]
    equation = ",".join(oe.get_symbol(k) + oe.get_symbol(k + 1) for k in range(n)) + "->" + oe.get_symbol(0) + oe.get_symbol(n)
    ours, theirs = [], []
    for _ in range(3):
        start = time.perf_counter()
        function.plan(*args)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        oe.contract_path(equation, *[(3, 3)] * n, shapes=True, optimize="auto")
        theirs.append(time.perf_counter() - start)
    assert min(ours) < 10 * min(theirs), (ours, theirs)
    torch.testing.assert_close(function(*args), torch.eye(3, dtype=torch.float64))


def test_paths_are_valid_and_optimal_is_no_worse_than_greedy():
    rng = random.Random(0)
    for _ in range(30):
        n = rng.randint(2, 7)
        raw = [frozenset(rng.sample("abcdefgh", rng.randint(1, 3))) for _ in range(n)]
        sizes = {c: rng.randint(2, 5) for c in "abcdefgh"}
        keep = frozenset(rng.sample(sorted(set().union(*raw)), 1))
        # as the planner sees them: legs only one operand has are summed beforehand
        labels = [frozenset(l for l in x if l in keep or sum(l in y for y in raw) > 1) for x in raw]
        for strategy in (optimal, greedy):
            steps = strategy(labels, keep, sizes)
            assert len(steps) == n - 1 and all(i < j for i, j in steps)
        assert _flops(optimal(labels, keep, sizes), labels, keep, sizes) <= _flops(greedy(labels, keep, sizes), labels, keep, sizes)


def _flops(steps, labels, keep, sizes):
    current = list(labels)
    total = 0
    for i, j in steps:
        a, b = current[i], current[j]
        rest = [x for k, x in enumerate(current) if k not in (i, j)]
        needed = set(keep).union(*rest)
        total += _prod(a | b, sizes)
        current = rest + [frozenset((a | b) & needed)]
    return total


def _prod(labels, sizes):
    out = 1
    for label in labels:
        out *= sizes[label]
    return out



@pytest.mark.parametrize("weight", ["W[r, c, e]", "W[c, e, r]"])
def test_a_pair_summed_over_a_middle_block_is_one_matrix_product(weight):
    """X[n, c, e, h, w]·W over (c, e): torch.einsum would copy X to put (c, e) last; one
    broadcast matmul reads X in place (the 1×1 projection of a factorized conv)."""
    text = (
        f"input X[n, c, e, h, w]\ninput {weight}\n"
        f"Y[n, r, h, w] = X[n, c, e, h, w] * {weight}\nZ[h, r, n, w] = X[n, c, e, h, w] * {weight}\n"
    )
    program = tndsl.compile(text)
    x = torch.randn(3, 8, 4, 9, 11, dtype=torch.float64)  # large enough for a copy of X to matter
    w = torch.randn(6, 8, 4, dtype=torch.float64) if weight.startswith("W[r") else torch.randn(8, 4, 6, dtype=torch.float64)
    rce = w if weight.startswith("W[r") else w.permute(2, 0, 1)
    for name, equation in (("Y", "nrhw"), ("Z", "hrnw")):
        plan = program[name].plan(x, w)
        assert plan.count("matmul") == 1 and plan.count("einsum") == 0
        torch.testing.assert_close(program[name](x, w), torch.einsum(f"ncehw,rce->{equation}", x, rce))
