"""Program parameters: ``param`` declarations bound at load or per call (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tndsl
from tndsl.frontend.printer import format_program

GALLERY = Path(__file__).resolve().parent.parent / "gallery"

CONV2D = """\
param stride = 1
param padding = 0
param dilation = 1
input X[n, c, i1, i2]
input W[d, c, k1, k2]
pattern P = conv(stride=stride, padding=padding, dilation=dilation)
Y[n, d, o1, o2] = X[n, c, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[d, c, k1, k2]
"""


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 9, 10, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 2, generator=g, dtype=torch.float64)
    return x, w


def test_param_round_trips_through_the_printer():
    text = "param stride = (2, 1)\nparam padding = 'same'\nparam p = ((1, 0), 2)\npattern P = conv(stride=stride, padding=p)\n"
    program = tndsl.parse(text)
    assert format_program(program) == text
    assert tndsl.parse(format_program(program)) == program


@pytest.mark.parametrize(
    "params",
    [{}, {"stride": 2}, {"stride": (2, 1), "padding": (1, 0)}, {"padding": "same", "dilation": (1, 2)}, {"padding": "valid"}],
)
def test_load_time_binding_matches_torch(params):
    x, w = _data()
    program = tndsl.compile(CONV2D, **params)
    assert torch.allclose(program.Y(x, w), F.conv2d(x, w, **params))


def test_call_time_binding_builds_each_binding_once():
    x, w = _data(1)
    program = tndsl.compile(CONV2D)
    for stride in (1, 2, (2, 1), 2):
        assert torch.allclose(program.Y(x, w, stride=stride, padding=1), F.conv2d(x, w, stride=stride, padding=1))
    assert program.bindings is not None and len(program.bindings) == 4  # the defaults + 3 distinct bindings
    first = program.bindings.get({"stride": 2, "padding": 1}, "Y")
    assert program.bindings.get({"padding": 1, "stride": 2}, "Y") is first
    assert program.bindings.get({"stride": [2, 2], "padding": 1}, "Y") is not first  # (2, 2) is not 2
    strided = program.bindings.get({"stride": 2}, "Y").Y
    assert program.Y.source(x, w, stride=2) == strided.source(x, w) != program.Y.source(x, w)
    assert str(program.Y.plan(x, w, stride=2)) == str(strided.plan(x, w))


def test_a_call_cannot_change_a_parameter_bound_at_load():
    x, w = _data()
    program = tndsl.compile(CONV2D, stride=2)
    assert torch.allclose(program.Y(x, w, stride=2), F.conv2d(x, w, stride=2))  # repeating it is fine
    with pytest.raises(tndsl.TnCallError, match="'stride' was bound to 2"):
        program.Y(x, w, stride=1)


def test_unknown_and_invalid_bindings_are_errors():
    with pytest.raises(tndsl.TnNameError, match="unknown parameter 'strid'") as info:
        tndsl.compile(CONV2D, strid=2)
    assert "did you mean 'stride'" in str(info.value)
    with pytest.raises(tndsl.TnPatternError, match=r"<string>:6:18: stride must be a positive integer.*bound as 0"):
        tndsl.compile(CONV2D, stride=0)
    with pytest.raises(tndsl.TnError, match="must be an int"):
        tndsl.compile(CONV2D, stride=2.0)
    with pytest.raises(tndsl.TnPatternError, match="needs stride=1"):
        tndsl.compile(CONV2D, stride=2, padding="same")
    with pytest.raises(tndsl.TnCallError, match="unexpected argument 'strid'"):
        tndsl.compile(CONV2D).Y(*_data(), strid=1)


def test_static_errors_of_declarations():
    with pytest.raises(tndsl.TnNameError, match="<string>:2:25: unknown parameter 'strde'"):
        tndsl.compile("param stride = 2\npattern P = conv(stride=strde)\n")
    with pytest.raises(tndsl.TnDefinitionError, match="duplicate parameter"):
        tndsl.compile("param s = 1\nparam s = 2\n")
    with pytest.raises(tndsl.TnDefinitionError, match="name of an input or a size"):
        tndsl.compile("param k = 1\nsize k\n")


def test_a_tuple_with_the_wrong_number_of_dimensions_is_refused():
    x, w = _data()
    for stride in ((1, 2, 3), (2,)):
        program = tndsl.compile(CONV2D, stride=stride)
        assert "Y" in program.unbuilt and "Y" not in program.functions
        with pytest.raises(tndsl.TnPatternError, match=r"<string>:7:.*'Y' cannot be built with stride=.*pattern P has \d dimensions"):
            program.Y(x, w)
        with pytest.raises(tndsl.TnPatternError, match="cannot be built"):
            tndsl.compile(CONV2D).Y(x, w, stride=stride)


def test_kfac_reduce_gallery_bound_to_a_3x3_stride1_padding1_layer():
    """The issue's case: the gallery file, bound to the layer, is its KFAC-reduce factor."""
    x = torch.randn(3, 4, 8, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    program = tndsl.load(GALLERY / "kfac_reduce.tn", stride=1, padding=1, dilation=1)
    omega = program.Omega2(x, g=1, k1=3, k2=3)
    mean = F.unfold(x, 3, padding=1).mean(-1)  # [n, c k k]
    assert torch.allclose(omega[0], mean.T @ mean / x.shape[0])
    default = tndsl.load(GALLERY / "kfac_reduce.tn")  # the same, bound per call
    assert torch.allclose(default.Omega2(x, g=1, k1=3, k2=3, stride=1, padding=1, dilation=1), omega)


def test_contradicting_arguments_raise_instead_of_a_different_result():
    """Bound to stride 1, the weight VJP refuses an output gradient sized for stride 3."""
    program = tndsl.load(GALLERY / "conv_weight_vjp.tn", stride=1, padding=1, dilation=2)
    x, v = torch.randn(2, 4, 9, 8), torch.randn(2, 6, 3, 3)
    with pytest.raises(tndsl.TnError):
        program.GW2(x, v, g=2, k1=3, k2=2)
    out = [(s + 2 - 2 * (k - 1) - 1) + 1 for s, k in ((9, 3), (8, 2))]  # stride 1, padding 1, dilation 2
    v = torch.randn(2, 6, *out)
    assert program.GW2(x, v, g=2, k1=3, k2=2).shape == (6, 2, 3, 2)


@pytest.mark.parametrize("name", ["conv", "conv_transpose", "kfc", "kfac_reduce", "unfold", "conv_weight_vjp", "conv_input_vjp"])
def test_gallery_convolutions_declare_torch_named_parameters(name):
    program = tndsl.load(GALLERY / f"{name}.tn")
    expected = {"stride", "padding", "dilation"} | ({"output_padding"} if "transpose" in name else set())
    assert set(program.params) == expected
