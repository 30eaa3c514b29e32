"""Π simplifications: each one equals the unsimplified network on random data."""

from __future__ import annotations

from pathlib import Path

import torch

import tndsl
from tndsl import simplify as S
from tndsl.ir import Kind
KIND_DELTA, KIND_PATTERN, KIND_PATTERN_SUM, KIND_SLICE = Kind.DELTA, Kind.PATTERN, Kind.PATTERN_SUM, Kind.SLICE
from tndsl.backend.program import Function
from tndsl.tools.reference import dense_reference
from tndsl.ir import solve

DT = torch.float64


def setup(text, shapes, name="Y", **keywords):
    network = tndsl.compile(text)[name].network
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(*shape, generator=g, dtype=DT) for shape in shapes]
    sizes, unknown = solve(network, [a.shape for a in args], keywords)
    assert not unknown
    return network, args, sizes


def kinds(network):
    return [t.kind for term in network.terms for t in term.tensors]


def check(before, after, args, sizes):
    """The simplified network equals the original: dense reference and compiled, lowered or not."""
    keywords = {name: sizes[label] for label, name in before.sizes if isinstance(name, str)}
    expected = Function(before)(*args, **keywords)
    torch.testing.assert_close(dense_reference(before, args, keywords), expected)
    torch.testing.assert_close(dense_reference(after, args, keywords), expected)
    for function in (Function(after), Function(after, lowering=False)):
        # a simplification may fix a keyword size to the number it used
        taken = {k: v for k, v in keywords.items() if k in function.keywords}
        torch.testing.assert_close(function(*args, **taken), expected)


CONV1D = """
input X[n, c, i]
input W[d, c, k]
pattern P = conv({params})
size k = {k}
Y[n, d, o] = X[n, c, i] * P[i, o, k] * W[d, c, k]
"""


def conv(params, k):
    return CONV1D.format(params=params, k=k)


def test_dense_pattern_becomes_a_reshape():
    net, args, sizes = setup(conv("stride=3", 3), [(2, 3, 12), (4, 3, 3)])
    out = S.dense_pattern(net, sizes)
    assert KIND_PATTERN not in kinds(out)
    assert out.input("X").axes[-1] == ("i_o", "i_k")
    check(net, out, args, sizes)


def test_dense_pattern_conditions():
    for params, k, i in [("stride=3", 3, 13), ("stride=3, padding=1", 3, 12), ("stride=2", 3, 12), ("stride=3, dilation=2", 3, 12)]:
        net, _, sizes = setup(conv(params, k), [(2, 3, i), (4, 3, k)])
        assert S.dense_pattern(net, sizes) == net, params
    # X used twice: its declaration cannot change for one use only
    text = conv("stride=3", 3) + "Z[n, d, o] = Y[n, d, o] + X[n, c, j] * delta[j, o] * W[d, c, k] * delta[k]\n"
    net, _, sizes = setup(text.replace("delta[j, o]", "delta[j]"), [(2, 3, 12), (4, 3, 3)], name="Z")
    assert S.dense_pattern(net, sizes) == net


def test_downsample_pattern_slices_then_dense():
    net, args, sizes = setup(conv("stride=4", 2), [(2, 3, 11), (4, 3, 2)])
    out = S.downsample_pattern(net, sizes)
    assert kinds(out).count(KIND_SLICE) == 2
    dense = [s for n, s in out.patterns]
    assert dense and all(s.stride == 4 for s in dense)
    check(net, out, args, sizes)
    # dilation: windows still disjoint
    net, args, sizes = setup(conv("stride=5, dilation=2", 3), [(2, 3, 14), (4, 3, 3)])
    check(net, S.downsample_pattern(net, sizes), args, sizes)
    # overlap or padding: unchanged
    net, _, sizes = setup(conv("stride=2, padding=1", 3), [(2, 3, 11), (4, 3, 3)])
    assert S.downsample_pattern(net, sizes) == net


def test_kernel_one_is_a_strided_slice():
    net, args, sizes = setup(conv("stride=2, padding=1", 1), [(2, 3, 9), (4, 3, 1)])
    out = S.kernel_one_slice(net, sizes)
    assert KIND_PATTERN not in kinds(out) and KIND_SLICE in kinds(out)
    check(net, out, args, sizes)


def test_summed_pattern_is_a_constant_matrix():
    text = """
input X[n, c, i]
pattern P = conv(stride=2, padding=1)
size k = 3
A[n, c, k] = X[n, c, i] * P[i, o, k]
"""
    net, args, sizes = setup(text, [(2, 3, 9)], name="A")
    out = S.summed_pattern(net, sizes)
    assert kinds(out) == ["input", KIND_PATTERN_SUM]
    check(net, out, args, sizes)


def test_summed_pattern_fires_on_the_gallery_kfac_reduce():
    """Its coefficient divides by |o1|·|o2|·|p1|·|p2|: the averages become numbers."""
    path = Path(__file__).resolve().parent.parent / "gallery" / "kfac_reduce.tn"
    net = tndsl.load(path).networks["Omega2"]
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(3, 4, 9, 10, generator=g, dtype=DT)]
    sizes, _ = solve(net, [a.shape for a in args], {"g": 2, "k1": 2, "k2": 3})
    out = S.summed_pattern(net, sizes)
    assert kinds(out).count(KIND_PATTERN_SUM) == 4 and KIND_PATTERN not in kinds(out)
    assert not any(label.startswith(("o", "p")) for label, _ in out.terms[0].coeff.powers)
    check(net, out, args, sizes)


def test_prune_deltas():
    text = """
input A[i, j]
input B[j, k]
Y[i, k] = A[i, j] * delta[j, l, l] * B[l, k] + A[i, m] * delta[m] * B[m, k] + delta[i, k] * A[i, i]
"""
    net, args, sizes = setup(text, [(3, 3), (3, 3)])
    out = S.prune_deltas(net)
    deltas = [t for term in out.terms for t in term.tensors if t.kind == KIND_DELTA]
    assert [d.legs for d in deltas] == [("i", "k")]  # the diagonal embedding stays
    check(net, out, args, sizes)


def test_drop_size_one_legs():
    text = """
input X[(g c), i]
input D[a]
Y[(g n), i] = X[g, c, i] * D[a] * delta[c, n, a]
"""
    net, args, sizes = setup(text, [(4, 5), (1,)], g=4)
    net2 = tndsl.compile(text.replace("input X", "size g = 4\ninput X")).Y.network
    sizes, _ = solve(net2, [a.shape for a in args])
    out = S.drop_size_one_legs(net2, sizes)
    assert out.input("X").axes == (("g",), ("i",))
    assert out.output == (("g",), ("i",))
    check(net2, out, args, sizes)


def test_merge_legs_that_travel_together():
    text = """
input X[n, (a b), c]
input W[(a b), d]
Y[n, d, c] = X[n, a, b, c] * W[a, b, d]
"""
    net = tndsl.compile(text.replace("input X", "size a = 2\ninput X")).Y.network
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(2, 6, 4, generator=g, dtype=DT), torch.randn(6, 5, generator=g, dtype=DT)]
    sizes, _ = solve(net, [a.shape for a in args])
    out = S.merge_legs(net, sizes)
    assert out.input("X").axes == (("n",), ("a_b",), ("c",))
    assert len(out.terms[0].tensors[0].legs) == 3
    check(net, out, args, sizes)


def test_simplify_pipeline_on_a_derived_network():
    text = conv("stride=3", 3) + "input V[n, d, o]\nG = vjp(Y, W, V)\n"
    net, args, sizes = setup(text, [(2, 3, 12), (2, 4, 4)], name="G")
    out = S.simplify(net, sizes)
    assert KIND_PATTERN not in kinds(out)
    check(net, out, args, sizes)
