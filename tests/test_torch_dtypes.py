"""dtypes as torch treats them: mixed float arguments refused (or promoted on request), and
results under ``torch.autocast`` in autocast's dtype, as ``F.conv2d`` gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tndsl

CONV = Path(__file__).resolve().parent.parent / "gallery" / "conv.tn"


def _args():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 9, 7, generator=g), torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)


def test_mixed_float_dtypes_are_refused_naming_both_inputs():
    x, w, b = _args()
    with pytest.raises(RuntimeError):  # what torch does
        F.conv2d(x, w.double(), b, 2, 1)
    conv = tndsl.load(CONV)
    with pytest.raises(tndsl.TnCallError, match=r"conv\.tn:\d+:1: calling 'Y2': arguments 'X2' \(torch\.float32\) and 'W2' \(torch\.float64\)"):
        conv.Y2(x, w.double(), b)
    with pytest.raises(tndsl.TnCallError, match=r"'X2' \(torch\.float16\) and 'W2' \(torch\.float32\)"):
        conv.Y2(x.half(), w, b)
    conv.Y2(x, w, b)  # a planned signature does not let a mixed one through the fast path
    with pytest.raises(tndsl.TnCallError, match="'b' \\(torch.float64\\)"):
        conv.Y2(x, w, b.double())


def test_promote_opts_in_to_promotion():
    x, w, b = _args()
    for program in (tndsl.load(CONV, promote=True), tndsl.compile(CONV.read_text(), promote=True)):
        y = program.Y2(x, w.double(), b)
        assert y.dtype == torch.float64
        torch.testing.assert_close(y, F.conv2d(x.double(), w.double(), b.double(), stride=2, padding=1))


def test_integer_arguments_do_not_count_as_mixed():
    program = tndsl.compile("input A[i, j]\ninput B[j, k]\nC[i, k] = A[i, j] * B[j, k]\n")
    a, b = torch.randn(2, 3), torch.arange(12).reshape(3, 4)
    torch.testing.assert_close(program.C(a, b), a @ b.float())


def test_index_arguments_are_exempt():
    program = tndsl.compile("input X[n, o]\nindex J[s -> o]\nY[n, s] = X[n, o] * J[s, o]\n")
    x, j = torch.randn(2, 5, dtype=torch.float64), torch.tensor([4, 0, 2])
    torch.testing.assert_close(program.Y(x, j), x[:, j])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_the_autocast_dtype_like_conv2d(dtype):
    x, w, b = _args()
    conv = tndsl.load(CONV)
    outside = conv.Y2(x, w, b)
    with torch.autocast("cpu", dtype):
        expected = F.conv2d(x, w, b, 2, 1)
        y = conv.Y2(x, w, b)
        assert y.dtype == expected.dtype == dtype
        torch.testing.assert_close(y, expected, atol=0.1, rtol=0.05)
        mixed = conv.Y2(x.to(dtype), w, b)  # autocast casts the mix, as it does for F.conv2d
        assert mixed.dtype == F.conv2d(x.to(dtype), w, b, 2, 1).dtype
    after = conv.Y2(x, w, b)  # the plan cache keys on the autocast state
    assert after.dtype == torch.float32
    torch.testing.assert_close(after, outside)
    with pytest.raises(tndsl.TnCallError, match="different dtypes"):
        conv.Y2(x.to(dtype), w, b)


def test_autocast_leaves_float64_and_plain_products_alone():
    x, w, b = _args()
    conv = tndsl.load(CONV)
    scale = tndsl.compile("input X[i]\ninput Y[i]\nZ[i] = X[i] * Y[i]\n")
    with torch.autocast("cpu", torch.bfloat16):
        assert conv.Y2(x.double(), w.double(), b.double()).dtype == torch.float64
        assert F.conv2d(x.double(), w.double(), b.double()).dtype == torch.float64
        assert scale.Z(x[0, 0, 0], x[0, 0, 1]).dtype == (x[0, 0, 0] * x[0, 0, 1]).dtype == torch.float32
