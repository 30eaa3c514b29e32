"""Π lowerings: each one fires where it should and equals the dense (unlowered) network."""

from __future__ import annotations

import random

import pytest
import torch

import tndsl
from tndsl.backend import lower

CONV = """
input X[n, (g c), i1, i2]
input W[(g d), c, k1, k2]
input V[n, (g d), o1, o2]
size g
size k1
size k2
pattern P = conv(stride={s}, padding={p}, dilation={d})
pattern Q = conv(stride={s2}, padding={p2}, dilation={d2})
Y[n, (g d), o1, o2] = X[n, g, c, i1, i2] * P[i1, o1, k1] * Q[i2, o2, k2] * W[g, d, c, k1, k2]
GW[(g d), c, k1, k2] = X[n, g, c, i1, i2] * P[i1, o1, k1] * Q[i2, o2, k2] * V[n, g, d, o1, o2]
GX[n, (g c), i1, i2] = V[n, g, d, o1, o2] * P[i1, o1, k1] * Q[i2, o2, k2] * W[g, d, c, k1, k2]
U[n, (g c k1 k2), (o1 o2)] = X[n, g, c, i1, i2] * P[i1, o1, k1] * Q[i2, o2, k2]
KFC[g, (c k1 k2), (e l1 l2)] = U[n, g, c, k1, k2, o1, o2] * U[n, g, e, l1, l2, o1, o2] / |n|
A[n, (g c k1 k2)] = X[n, g, c, i1, i2] * P[i1, o1, k1] * Q[i2, o2, k2] / (|o1| * |o2|)
Red[g, (c k1 k2), (e l1 l2)] = A[n, g, c, k1, k2] * A[n, g, e, l1, l2] / |n|
"""

EXPECTED = {
    "Y": "F.conv2d(",
    "GW": "torch.nn.grad.conv2d_weight(",
    "GX": "F.conv_transpose2d(",
    "U": ".unfold(",
    "KFC": "torch.baddbmm(",
}


def _case(rng: random.Random):
    s, s2 = rng.choice([1, 2, 3]), rng.choice([1, 2])
    p = rng.choice(["0", "1", "2", "(0, 1)", "(2, 0)", "'valid'"] + (["'same'"] if s == 1 else []))
    p2 = rng.choice(["0", "1", "(1, 0)"] + (["'same'"] if s2 == 1 else []))
    d, d2 = rng.choice([1, 2]), rng.choice([1, 2])
    k1, k2 = rng.choice([1, 2, 3]), rng.choice([1, 2, 3])
    g, c, dd, n = rng.choice([1, 2]), rng.choice([1, 3]), rng.choice([1, 2]), rng.choice([1, 3])
    i1, i2 = rng.randint(7, 11), rng.randint(6, 9)
    return dict(s=s, p=p, d=d, s2=s2, p2=p2, d2=d2), (k1, k2, g, c, dd, n, i1, i2)


@pytest.mark.parametrize("seed", range(40))
def test_lowered_equals_dense(seed):
    rng = random.Random(seed)
    params, (k1, k2, g, c, dd, n, i1, i2) = _case(rng)
    text = CONV.format(**params)
    lowered = tndsl.compile(text, "conv.tn", lowering="always")
    dense = tndsl.compile(text, "conv.tn", lowering=False)
    torch.manual_seed(seed)
    x = torch.randn(n, g * c, i1, i2, dtype=torch.float64)
    w = torch.randn(g * dd, c, k1, k2, dtype=torch.float64)
    y = dense.Y(x, w, g=g, k1=k1, k2=k2)
    v = torch.randn_like(y)
    args = {"Y": (x, w), "GW": (x, v), "GX": (v, w), "U": (x,), "KFC": (x,), "Red": (x,)}
    for name, expected in [*EXPECTED.items(), ("Red", "")]:
        kwargs = {"g": g, "k1": k1, "k2": k2}
        fast = lowered[name]
        try:
            reference = dense[name](*args[name], **kwargs)
        except tndsl.TnError:
            continue  # e.g. an input size the transpose rule cannot reach
        source = fast.source(*args[name], **kwargs)
        assert expected in source, (name, params, source)
        if name == "Red":
            # Π summed over its out-leg: a matrix, or a plain reshape view for a dense Π
            dense = (params["s"] == k1 and params["d"] == 1 and params["p"] in ("0", "'valid'")) or (
                params["s2"] == k2 and params["d2"] == 1 and params["p2"] == "0"
            )
            assert ".unfold(" not in source or dense, (params, source)
        else:
            assert "einsum(" not in source, (name, source)  # no dense Π contraction left
        torch.testing.assert_close(fast(*args[name], **kwargs), reference, rtol=1e-10, atol=1e-10)


def test_switch_turns_lowering_off(monkeypatch):
    text = CONV.format(s=1, p=1, d=1, s2=1, p2=1, d2=1)
    x, w = torch.randn(2, 4, 6, 6), torch.randn(4, 2, 3, 3)
    sizes = dict(g=2, k1=3, k2=3)
    assert "F.conv2d(" in tndsl.compile(text).Y.source(x, w, **sizes)
    assert "F.conv2d(" not in tndsl.compile(text, lowering=False).Y.source(x, w, **sizes)
    monkeypatch.setenv("TNDSL_LOWERING", "0")
    assert "F.conv2d(" not in tndsl.compile(text).Y.source(x, w, **sizes)


def test_gram_in_chunks(monkeypatch):
    monkeypatch.setattr(lower, "GRAM_CHUNK_ELEMENTS", 10)
    text = CONV.format(s=1, p=1, d=1, s2=2, p2=0, d2=1)
    x = torch.randn(5, 4, 7, 8, dtype=torch.float64)
    fast = tndsl.compile(text).KFC
    sizes = dict(g=2, k1=3, k2=2)
    assert "for j in range(0, 5, 1):" in fast.source(x, **sizes)
    torch.testing.assert_close(fast(x, **sizes), tndsl.compile(text, lowering=False).KFC(x, **sizes))


def test_kfac_reduce_folds_patterns_into_small_matrices():
    text = CONV.format(s=2, p=1, d=1, s2=2, p2=1, d2=1)
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64)
    source = tndsl.compile(text).Red.source(x, g=2, k1=3, k2=3)
    assert ".unfold(" not in source  # nothing unfolded: Π summed over o is a [in, kernel] matrix


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_lowered_dtypes(dtype):
    text = CONV.format(s=2, p=1, d=1, s2=1, p2="'same'", d2=2)
    x, w = torch.randn(2, 4, 9, 8), torch.randn(4, 2, 3, 3)
    sizes = dict(g=2, k1=3, k2=3)
    fast = tndsl.compile(text).Y(x.to(dtype), w.to(dtype), **sizes)
    reference = tndsl.compile(text, lowering=False).Y(x.double(), w.double(), **sizes)
    assert fast.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(fast.double(), reference, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("transpose", [False, True])
def test_a_layer_bias_is_the_convolutions_bias(transpose):
    """``+ b[co]`` after a convolution is F.conv2d's own bias argument (one call, no expand)."""
    pattern = "P[i1, o1, k1] * P[i2, o2, k2]"
    x_legs, y_legs = ("n, ci, o1, o2", "n, co, i1, i2") if transpose else ("n, ci, i1, i2", "n, co, o1, o2")
    w = "W[ci, co, k1, k2]" if transpose else "W[co, ci, k1, k2]"
    text = (f"input X[{x_legs}]\ninput {w}\ninput b[co]\npattern P = conv(stride=2, padding=1)\n"
            f"Y[{y_legs}] = X[{x_legs}] * {pattern} * {w} + b[co]\n")
    program = tndsl.compile(text)
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    weight = torch.randn(3, 4, 3, 3, dtype=torch.float64) if transpose else torch.randn(4, 3, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    functional = torch.nn.functional.conv_transpose2d if transpose else torch.nn.functional.conv2d
    expected = functional(x, weight, bias, stride=2, padding=1)
    source, value = program.Y.source(x, weight, bias), program.Y(x, weight, bias)
    torch.testing.assert_close(value, expected)
    body = source.split("\n", 2)[2]
    assert body.count("F.conv") == 1 and ", a2, (" in body and "+" not in body and "expand" not in body, source
