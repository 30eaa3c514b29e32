"""Networks nobody put in the gallery: derived shapes, keyword sizes, language growth."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

import tndsl

STRIDED = """
input X[n, i]
input W[k]
pattern P = conv(stride=2)
Y[n, o] = X[n, i] * P[i, o, k] * W[k]
L[] = Y[n, o] * Y[n, o]
GX = grad(L, X)
"""


def test_gradient_of_a_strided_conv_has_the_input_shape():
    """The issue's example: (2, 6) came back as (2, 5) without an error."""
    program = tndsl.compile(STRIDED)
    x, w = torch.randn(2, 6, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    y = F.conv1d(xr[:, None], w[None, None], stride=2)[:, 0]
    (expected,) = torch.autograd.grad((y * y).sum(), xr)
    assert program.GX(x, w).shape == (2, 6)
    torch.testing.assert_close(program.GX(x, w), expected)


GGN = """
input X[n, c, i]
input W[d, c, k]
input T[n, c, i]
input V[n, d, o]
pattern P = conv(stride={s}, padding={p}, dilation={dil})
size k = {k}
Y[n, d, o] = X[n, c, i] * P[i, o, k] * W[d, c, k]
JT = jvp(Y, X, T)
GT = vjp(Y, X, JT)
GX = vjp(Y, X, V)
JW = jvp(Y, W, W)
"""


def _conv(x, w, s, p, dil):
    left, right = p if isinstance(p, tuple) else (p, p)
    return F.conv1d(F.pad(x, (left, right)), w, stride=s, dilation=dil)


@pytest.mark.parametrize("seed", range(12))
def test_derivatives_of_random_convolutions_match_autograd(seed):
    rng = random.Random(seed)
    s, dil, k = rng.choice([1, 2, 3]), rng.choice([1, 2]), rng.choice([1, 2, 3])
    p = rng.choice([0, 1, (1, 0), (0, 2)])
    i = rng.randint(dil * (k - 1) + 1 + s, 13)
    text = GGN.format(s=s, p=p if isinstance(p, int) else f"({p[0]}, {p[1]})", dil=dil, k=k)
    program = tndsl.compile(text)
    g = torch.Generator().manual_seed(seed)
    x, t = torch.randn(2, 3, i, generator=g, dtype=torch.float64), torch.randn(2, 3, i, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, k, generator=g, dtype=torch.float64)
    y = _conv(x, w, s, p, dil)
    v = torch.randn(y.shape, generator=g, dtype=torch.float64)
    # the Gauss-Newton product: its input size comes from the tangent T
    _, jt = torch.func.jvp(lambda x_: _conv(x_, w, s, p, dil), (x,), (t,))
    (gt,) = torch.autograd.grad(_conv(x.requires_grad_(), w, s, p, dil), x, jt)
    assert program.GT(w, t).shape == t.shape
    torch.testing.assert_close(program.GT(w, t), gt)
    # the input VJP without X: the size is asked for when the stride leaves it open
    (gx,) = torch.autograd.grad(_conv(x, w, s, p, dil), x, v)
    keywords = {"i": i} if "i" in program.GX.required else {}
    if s > 1:
        assert "i" in program.GX.required
        with pytest.raises(tndsl.TnCallError, match="strided pattern only bounds it"):
            program.GX(w, v)
    torch.testing.assert_close(program.GX(w, v, **keywords), gx)
    torch.testing.assert_close(program.JW(x.detach(), w), y.detach())


def test_a_size_keyword_is_asked_for_only_when_no_argument_fixes_it():
    program = tndsl.compile("size i\ninput A[i, j]\nB[i] = A[i, j]\nO[i] = delta[i]\n")
    a = torch.randn(3, 4)
    torch.testing.assert_close(program.B(a), a.sum(1))  # A fixes i: no keyword needed
    torch.testing.assert_close(program.B(a, i=3), a.sum(1))  # still accepted, and checked
    with pytest.raises(tndsl.TnCallError, match="size mismatch"):
        program.B(a, i=4)
    assert program.O.required and not program.B.required
    with pytest.raises(tndsl.TnCallError, match="missing size keyword argument"):
        program.O()
    assert torch.equal(program.O(i=2), torch.ones(2))
