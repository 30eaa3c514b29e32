"""Π, the convolution index pattern: size rules, kernel inference, values, and errors."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import tndsl
from tndsl.backend.constants import dense_pattern
from tndsl import PatternSpec, TnCallError, TnError, TnPatternError, TnSizeError

PADDINGS = (0, 1, 2, (0, 1), (2, 0), "same", "valid")

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")



def _specs(output_padding: bool = False):
    for stride, padding, dilation in itertools.product((1, 2, 3), PADDINGS, (1, 2, 3)):
        if padding == "same" and stride != 1:
            continue
        for op in range(stride) if output_padding else (0,):
            yield PatternSpec.create(stride=stride, padding=padding, dilation=dilation, output_padding=op)


def _brute_pads(spec: PatternSpec, kernel: int) -> tuple[int, int]:
    if spec.padding == "same":
        total = spec.dilation * (kernel - 1)
        return total // 2, total - total // 2
    return spec.padding


def _brute_out(spec: PatternSpec, i: int, k: int) -> int:
    """The number of output positions whose whole (dilated) window fits the padded input."""
    left, right = _brute_pads(spec, k)
    o = 0
    while o * spec.stride + (k - 1) * spec.dilation <= i + left + right - 1:
        o += 1
    return o


# -- parameters ---------------------------------------------------------------------------
def test_create_normalizes_padding():
    assert PatternSpec.create().padding == (0, 0)
    assert PatternSpec.create(padding=2).padding == (2, 2)
    assert PatternSpec.create(padding=(0, 1)).padding == (0, 1)
    assert PatternSpec.create(padding="valid").padding == (0, 0)
    assert PatternSpec.create(padding="same").padding == "same"
    assert PatternSpec.create(stride=2, dilation=3, output_padding=1) == PatternSpec(2, (0, 0), 3, 1)


@pytest.mark.parametrize(
    "params",
    [
        dict(stride=0),
        dict(stride=-1),
        dict(dilation=0),
        dict(padding=-1),
        dict(padding=(1, -1)),
        dict(padding=(1, 2, 3)),
        dict(padding="full"),
        dict(padding=1.5),
        dict(output_padding=1),
        dict(stride=2, output_padding=2),
        dict(output_padding=-1),
        dict(stride=2, padding="same"),
        dict(stride=True),
        dict(kernel=3),
    ],
)
def test_create_rejects(params):
    with pytest.raises(ValueError):
        PatternSpec.create(**params)


def test_describe_round_trips():
    specs = list(_specs(output_padding=True))
    text = "".join(f"pattern P{n} = {spec.describe()}\n" for n, spec in enumerate(specs))
    patterns = tndsl.compile(text).declarations.patterns
    assert [patterns[f"P{n}"] for n in range(len(specs))] == specs


# -- size rules ---------------------------------------------------------------------------
def test_out_size_matches_brute_force_and_torch():
    for spec in _specs():
        for i, k in itertools.product(range(1, 12), range(1, 5)):
            expected = _brute_out(spec, i, k)
            assert spec.out_size(i, k) == expected or (expected == 0 and spec.out_size(i, k) < 1), (spec, i, k)
            if expected >= 1:
                left, right = spec.pads(k)
                x = F.pad(torch.zeros(1, 1, i), (left, right))
                y = F.conv1d(x, torch.zeros(1, 1, k), stride=spec.stride, dilation=spec.dilation)
                assert y.shape[-1] == spec.out_size(i, k)


def test_same_keeps_the_size_and_pads_like_torch():
    for dilation, k, i in itertools.product((1, 2, 3), range(1, 6), range(1, 9)):
        spec = PatternSpec.create(padding="same", dilation=dilation)
        assert spec.out_size(i, k) == i
        total = dilation * (k - 1)
        assert spec.pads(k) == (total // 2, total - total // 2)
        x = torch.randn(1, 1, i, dtype=torch.float64)
        w = torch.randn(1, 1, k, dtype=torch.float64)
        ours = torch.einsum("i,iok,k->o", x[0, 0], dense_pattern(spec, i, i, k, torch.float64, "cpu"), w[0, 0])
        torch.testing.assert_close(ours, F.conv1d(x, w, padding="same", dilation=dilation)[0, 0], rtol=1e-12, atol=1e-12)


def test_valid_is_no_padding():
    for stride, dilation, i, k in itertools.product((1, 2, 3), (1, 2), range(1, 10), range(1, 4)):
        valid = PatternSpec.create(stride=stride, padding="valid", dilation=dilation)
        zero = PatternSpec.create(stride=stride, padding=0, dilation=dilation)
        assert valid.out_size(i, k) == zero.out_size(i, k)
        if zero.out_size(i, k) >= 1:
            o = zero.out_size(i, k)
            assert torch.equal(dense_pattern(valid, i, o, k, torch.float64, "cpu"), dense_pattern(zero, i, o, k, torch.float64, "cpu"))


def test_in_size_inverts_out_size_with_output_padding():
    """Transpose direction: I from (O, K), the remainder of the forward division is output_padding."""
    for spec in _specs():
        for i, k in itertools.product(range(1, 14), range(1, 5)):
            o = spec.out_size(i, k)
            if o < 1:
                continue
            left, right = spec.pads(k)
            op = (i + left + right - spec.dilation * (k - 1) - 1) % spec.stride
            transposed = PatternSpec(spec.stride, spec.padding, spec.dilation, op)
            assert transposed.in_size(o, k) == i
            assert transposed.out_size(transposed.in_size(o, k), k) == o


def test_in_size_matches_conv_transpose():
    for stride, padding, dilation in itertools.product((1, 2, 3), (0, 1, 2), (1, 2)):
        for op, o, k in itertools.product(range(stride), range(1, 6), range(1, 4)):
            spec = PatternSpec.create(stride=stride, padding=padding, dilation=dilation, output_padding=op)
            if spec.in_size(o, k) < 1:
                continue
            y = F.conv_transpose1d(
                torch.zeros(1, 1, o), torch.zeros(1, 1, k), stride=stride, padding=padding, output_padding=op, dilation=dilation
            )
            assert y.shape[-1] == spec.in_size(o, k)


# -- kernel inference ---------------------------------------------------------------------
def test_kernel_inferable_rule():
    assert PatternSpec.create().kernel_inferable
    assert PatternSpec.create(stride=2, dilation=2).kernel_inferable
    assert PatternSpec.create(stride=1, dilation=3, padding=(1, 0)).kernel_inferable
    assert not PatternSpec.create(stride=2).kernel_inferable
    assert not PatternSpec.create(padding="same").kernel_inferable


def test_kernel_inference_is_exactly_where_unique():
    """K is unique given (I, O) iff stride ≤ dilation (padding not 'same'); kernel_size finds it."""
    for spec in _specs():
        ambiguous = False
        for i, o in itertools.product(range(1, 13), range(1, 13)):
            fits = [k for k in range(1, 30) if spec.out_size(i, k) == o]
            if len(fits) > 1:
                ambiguous = True
            if spec.kernel_inferable:
                assert len(fits) <= 1, (spec, i, o, fits)
                assert spec.kernel_size(i, o) == (fits[0] if fits else None), (spec, i, o)
        assert ambiguous == (not spec.kernel_inferable), spec


def test_kernel_inferred_in_a_program():
    program = tndsl.compile(
        "input X[n, c, i]\ninput V[n, d, o]\npattern P = conv(padding=1)\nG[d, c, k] = X[n, c, i] * P[i, o, k] * V[n, d, o]\n"
    )
    x = torch.randn(2, 3, 9, dtype=torch.float64)
    v = torch.randn(2, 4, 7, dtype=torch.float64)  # 9 + 2 - (K - 1) = 7 -> K = 5
    g = program.G(x, v)
    assert g.shape == (4, 3, 5)
    w = torch.zeros(4, 3, 5, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(F.conv1d(x, w, padding=1), w, v)
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12)


def test_kernel_not_inferable_is_a_positioned_error():
    text = "input X[n, c, i]\ninput V[n, d, o]\npattern P = conv(stride=2)\nG[d, c, k] = X[n, c, i] * P[i, o, k] * V[n, d, o]\n"
    with pytest.raises(TnSizeError) as info:
        tndsl.compile(text, "g.tn")
    message = str(info.value)
    assert message.startswith("g.tn:4:9: cannot infer the size of leg 'k' in 'G'")
    assert "size k" in message
    # a keyword size fixes it
    program = tndsl.compile("size k\n" + text)
    x, v = torch.randn(2, 3, 9, dtype=torch.float64), torch.randn(2, 4, 4, dtype=torch.float64)
    assert program.G(x, v, k=2).shape == (4, 3, 2)


def test_one_pattern_used_with_different_sizes():
    program = tndsl.compile(
        "input X[n, c, i1, i2]\ninput W[d, c, k1, k2]\npattern P = conv(stride=2, padding=1)\n"
        "Y[n, d, o1, o2] = X[n, c, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[d, c, k1, k2]\n"
    )
    x = torch.randn(2, 3, 11, 6, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(program.Y(x, w), F.conv2d(x, w, stride=2, padding=1), rtol=1e-12, atol=1e-12)


# -- values -------------------------------------------------------------------------------
def test_dense_matches_the_definition():
    for spec in _specs():
        for i, k in itertools.product(range(1, 8), range(1, 4)):
            o = spec.out_size(i, k)
            if o < 1:
                continue
            value = dense_pattern(spec, i, o, k, torch.float64, "cpu")
            assert value.shape == (i, o, k)
            left, _ = spec.pads(k)
            ii = torch.arange(i).view(-1, 1, 1)
            oo = torch.arange(o).view(1, -1, 1)
            kk = torch.arange(k).view(1, 1, -1)
            expected = (ii == oo * spec.stride + kk * spec.dilation - left).to(torch.float64)
            assert torch.equal(value, expected), (spec, i, k)


def test_dense_dtype_and_device():
    value = dense_pattern(PatternSpec.create(stride=2), 5, 2, 2, torch.float32, "cpu")
    assert value.dtype == torch.float32 and value.device.type == "cpu"


# -- positioned errors through tndsl.compile ----------------------------------------------
@pytest.mark.parametrize(
    "line, col, error, words",
    [
        ("pattern P = conv(stride=0)", 18, TnPatternError, "stride must be a positive integer"),
        ("pattern P = conv(padding=1, dilation=0)", 29, TnPatternError, "dilation must be a positive integer"),
        ("pattern P = conv(stride=2, output_padding=2)", 28, TnPatternError, "output_padding must be smaller than stride"),
        ("pattern P = conv(output_padding=1)", 18, TnPatternError, "output_padding must be smaller than stride"),
        ("pattern P = conv(stride=3, padding='same')", 28, TnPatternError, "padding='same' needs stride=1"),
        ("pattern P = conv(padding='full')", 18, TnPatternError, "padding must be an integer, a pair"),
        ("pattern P = conv(kernel=3)", 18, TnPatternError, "unknown parameter 'kernel'"),
        ("pattern P = conv(stride=1, stride=2)", 28, TnPatternError, "parameter 'stride' given twice"),
        ("pattern P = pool(stride=2)", 13, TnPatternError, "unknown pattern kind 'pool'"),
        # negative numbers are not in the grammar: a positioned syntax error at the sign
        ("pattern P = conv(padding=-1)", 18, TnPatternError, "padding must be non-negative"),
        ("pattern P = conv(padding=(1, -2))", 18, TnPatternError, "non-negative integers"),
    ],
)
def test_invalid_parameters_are_positioned(line, col, error, words):
    text = f"input X[i]\n{line}\nY[o] = X[i] * P[i, o, k]\nsize k = 2\n"
    with pytest.raises(error) as info:
        tndsl.compile(text, "p.tn")
    message = str(info.value)
    assert message.startswith(f"p.tn:2:{col}: "), message
    assert words in message
    assert line in message  # the source line is shown, with a caret under the culprit
    caret = message.splitlines()[2]
    assert caret.index("^") == 4 + col - 1


def test_empty_output_is_a_static_error_when_sizes_are_fixed():
    text = "size i = 3\nsize k = 3\npattern P = conv(dilation=2)\nY[o] = delta[i] * P[i, o, k]\n"
    with pytest.raises(TnError) as info:
        tndsl.compile(text, "e.tn")
    message = str(info.value)
    assert message.startswith("e.tn:4:1: ")
    assert "empty output" in message


def test_empty_output_is_a_call_error():
    program = tndsl.compile("input X[n, i]\ninput W[k]\npattern P = conv(dilation=2)\nY[n, o] = X[n, i] * P[i, o, k] * W[k]\n", "e.tn")
    assert program.Y(torch.ones(1, 5), torch.ones(3)).shape == (1, 1)
    with pytest.raises(TnCallError) as info:
        program.Y(torch.ones(1, 4), torch.ones(3))
    message = str(info.value)
    assert message.startswith("e.tn:4:1: ")
    assert "empty output" in message and "i=4" in message and "k=3" in message


def test_transpose_size_rule_in_a_program():
    """The input leg is open: its size comes from (O, K) and output_padding."""
    program = tndsl.compile(
        "input X[n, c, o]\ninput W[c, d, k]\npattern P = conv(stride=3, padding=1, dilation=2, output_padding=2)\n"
        "Y[n, d, i] = X[n, c, o] * P[i, o, k] * W[c, d, k]\n"
    )
    x, w = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64)
    expected = F.conv_transpose1d(x, w, stride=3, padding=1, output_padding=2, dilation=2)
    torch.testing.assert_close(program.Y(x, w), expected, rtol=1e-12, atol=1e-12)
