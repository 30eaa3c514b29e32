"""Issue 14 regressions: no silent wrong value, no raw traceback, no runaway.

Each test failed before its fix; the fuzz test (tests/test_fuzz.py) covers the same ground
at random.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import tndsl
from tndsl.backend import program as program_module
from tndsl.tools.reference import dense_reference

GRAM = "input A[n, a]\nG[a, b] = A[n, a] * A[n, b] / |n|\n"
MM = "input A[i, j]\ninput B[j, k]\nC[i, k] = A[i, j] * B[j, k]\n"


def _three_ways(text: str, name: str, *args, **keywords):
    """The compiled value, the value with lowering off, and the dense reference."""
    on = tndsl.compile(text)
    off = tndsl.compile(text, lowering=False)
    return on[name](*args, **keywords), off[name](*args, **keywords), dense_reference(on.networks[name], args, keywords)


# -- wrong values ----------------------------------------------------------------------------


def test_integer_gram_step_is_not_truncated():
    a = torch.arange(12).reshape(3, 4)
    expected = (a.T.double() @ a.double()) / 3
    for value in _three_ways(GRAM, "G", a):
        torch.testing.assert_close(value.double(), expected)


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_integer_and_bool_arguments_compute_in_int64(dtype):
    a = (torch.arange(6).reshape(2, 3) % 3).to(dtype)
    b = (torch.arange(12).reshape(3, 4) % 2).to(dtype)
    expected = a.long() @ b.long()
    for value in _three_ways(MM, "C", a, b):
        assert value.dtype == torch.int64
        assert torch.equal(value, expected)


def test_int32_through_a_summed_pattern_and_a_sum():
    text = (
        "input X[n, c, i]\npattern P = conv(stride=2)\nsize k = 3\nsize l = 3\n"
        "U[c, k, d, l] = X[n, c, i] * P[i, o, k] * X[n, d, j] * P[j, p, l] / |o|\n"
        "T[] = X[n, c, i] * X[n, c, i]\n"
    )
    x = torch.randint(-3, 4, (2, 2, 7), dtype=torch.int32)
    for name in ("U", "T"):
        values = _three_ways(text, name, x)
        for value in values[1:]:
            assert value.dtype == values[0].dtype
            torch.testing.assert_close(value, values[0])


def test_complex_arguments_match_the_reference():
    text = "input X[n, c, i]\ninput W[d, c, k]\npattern P = conv(stride=2, padding=1)\nY[n, d, o] = X[n, c, i] * P[i, o, k] * W[d, c, k]\n" + GRAM
    x = torch.randn(2, 3, 9, dtype=torch.complex128)
    w = torch.randn(4, 3, 3, dtype=torch.complex128)
    for name, args in (("Y", (x, w)), ("G", (x[0],))):
        on, off, dense = _three_ways(text, name, *args)
        torch.testing.assert_close(on, dense)
        torch.testing.assert_close(off, dense)


def test_cached_call_checks_keyword_types():
    program = tndsl.compile("input x[i]\nsize k\nY[i, k] = x[i] * delta[k]\n")
    x = torch.ones(3)
    assert program.Y(x, k=2).shape == (3, 2)
    assert program.Y(x, k=1).shape == (3, 1)
    for bad in (2.0, True, 1.0, "2"):
        with pytest.raises(tndsl.TnCallError, match="positive integer"):
            program.Y(x, k=bad)


def test_cached_call_checks_argument_types():
    program = tndsl.compile(MM)
    a, b = torch.ones(2, 3), torch.ones(3, 4)
    program.C(a, b)

    class Fake:
        shape, dtype, device = a.shape, a.dtype, a.device

    with pytest.raises(tndsl.TnCallError, match="torch.Tensor"):
        program.C(Fake(), b)


def test_an_input_and_a_size_keyword_may_share_a_name():
    program = tndsl.compile("input k[i]\nsize k\nY[i, k] = k[i] * delta[k]\n")
    x = torch.arange(3.0)
    assert torch.equal(program.Y(x, k=2), x[:, None].expand(3, 2))
    with pytest.raises(tndsl.TnCallError, match="missing"):
        program.Y(k=x)


def test_plan_eviction_drops_fast_keys(monkeypatch):
    monkeypatch.setattr(program_module, "MAX_PLANS", 2)
    function = tndsl.compile("input x[i]\nY[i] = x[i] * 2\n").Y
    for n in range(1, 6):
        function(torch.ones(n))
    assert len(function._cache) == 2
    assert len(function._fast) == 2


def test_missing_torch_kernel_is_a_call_error():
    program = tndsl.compile(MM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = torch.ones(2, 3, dtype=torch.complex32)
        b = torch.ones(3, 4, dtype=torch.complex32)
    for _ in range(2):  # planned, then cached
        with pytest.raises(tndsl.TnCallError, match=r"^<string>:3:1: calling 'C': torch cannot compute .*complex32"):
            program.C(a, b)
