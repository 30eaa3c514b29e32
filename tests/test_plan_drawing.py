"""The plan drawn next to the diagram: steps, torch ops, costs, badges; shapes from check lines."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import torch

import tndsl
from tndsl.ir import TnCallError
from tndsl.tools.render import render
from tndsl.tools.render.plan import check_line_shapes, plan_drawing

SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str, css: str) -> list[str]:
    return [
        " / ".join((t.text or "").strip() for t in g.iter(f"{SVG}text"))
        for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == css
    ]


def test_convolution_plan_is_one_conv2d_with_its_bias() -> None:
    program = tndsl.load("gallery/conv.tn")
    svg = render(program.Y2, plan={"X2": (2, 3, 9, 7), "W2": (4, 3, 3, 2), "b": (4,)})
    steps = _texts(svg, "plan-step")
    assert steps == ["① conv → F.conv2d / [2, 4, 5, 4] · 5.76 kFLOP · 2.46 kB"]
    assert _texts(svg, "plan-title") == ["plan of Y2 for X2[2, 3, 9, 7] W2[4, 3, 3, 2] b[4]: 1 step, 5.76 kFLOP, 2.46 kB moved"]
    assert sorted(_texts(svg, "tensor")) == ["W2 ①", "X2 ①", "b ①"]  # the steps that read each tensor
    assert _texts(svg, "pattern") == ["Π ① / stride=2, padding=1"] * 2  # Π lowered into the conv
    assert _texts(svg, "plan-input") == ["X2 / [2, 3, 9, 7]", "W2 / [4, 3, 3, 2]", "b / [4]"]
    assert _texts(svg, "plan-result") == ["Y2 / [2, 4, 5, 4]"]
    flows = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "plan-flow"]
    assert len(flows) == 4  # X2, W2 and b into the conv, the conv to Y2
    assert render(program.Y2, plan=[(2, 3, 9, 7), (4, 3, 3, 2), (4,)]) == svg  # shapes in input order
    tensors = [torch.zeros(2, 3, 9, 7), torch.zeros(4, 3, 3, 2), torch.zeros(4)]
    assert render(program.Y2, plan=tensors) == svg  # or tensors


def test_program_plan_from_check_lines_kfc_and_kfac_reduce() -> None:
    kfc = tndsl.load("gallery/kfc.tn")
    shapes = check_line_shapes(kfc)
    assert shapes["Omega2"] == {"X2": (3, 4, 7, 6), "g": 2, "k1": 3, "k2": 2}
    svg = render(kfc, plan=True)
    steps = _texts(svg, "plan-step")
    assert any("unfold → Tensor.unfold" in s and "a view, no copy" in s for s in steps)
    assert any("gram → torch.baddbmm" in s for s in steps)
    assert len(_texts(svg, "plan-title")) == 6  # every definition has a check line
    reduce = render(tndsl.load("gallery/kfac_reduce.tn")["Omega2"], plan=check_line_shapes(tndsl.load("gallery/kfac_reduce.tn"))["Omega2"])
    steps = _texts(reduce, "plan-step")
    names = [s.split(" / ")[0] for s in steps]
    # each Π summed over its out-leg is a folded [I, K] matrix applied to one axis, then one Gram step
    assert all(n.split(" ")[1] in ("matmul", "einsum") for n in names[:2]), names
    assert any(n.endswith("gram → torch.baddbmm") for n in names) and not any("unfold" in n for n in names)
    assert sorted(_texts(reduce, "plan-constant")) == ["constant / [10, 3]", "constant / [9, 2]"]  # Σₒ Π, folded at plan time
    assert set(_texts(reduce, "pattern")) == {"Π ①② / stride=3, padding=(1, 0), dilation=2"}


def test_plan_of_a_network_and_large_shapes_cost_nothing_to_draw() -> None:
    program = tndsl.load("gallery/kfc.tn")
    drawing = plan_drawing(program.Omega2, {"X2": (128, 256, 64, 64), "g": 1, "k1": 3, "k2": 3})
    assert "TFLOP" in drawing.header and drawing.shown[-1].call == "torch.baddbmm"  # chunked Gram, planned only
    svg = render(program.networks["U2"], plan={"X2": (2, 4, 7, 6), "g": 2, "k1": 3, "k2": 2})
    assert _texts(svg, "plan-step")[0].startswith("① pad → F.pad")


def test_plan_errors() -> None:
    program = tndsl.load("gallery/conv.tn")
    with pytest.raises(TnCallError, match="no shape given for b"):
        render(program.Y2, plan={"X2": (2, 3, 9, 7), "W2": (4, 3, 3, 2)})
    with pytest.raises(TnCallError, match="no input or size named Q"):
        render(program.Y2, plan={"X2": (2, 3, 9, 7), "W2": (4, 3, 3, 2), "b": (4,), "Q": (1,)})
    with pytest.raises(TnCallError, match="must have 4 axes"):
        render(program.Y2, plan={"X2": (2, 3, 9), "W2": (4, 3, 3, 2), "b": (4,)})
    with pytest.raises(TypeError, match="plan=True needs shapes"):
        render(program.Y2, plan=True)
    with pytest.raises(TypeError, match="a shape is a sequence of ints"):
        render(program.Y2, plan={"X2": "big", "W2": (4, 3, 3, 2), "b": (4,)})
