"""``function.fx(*args)``: the plan as a torch.fx.GraphModule that pickles and scripts."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F

import tndsl

CONV = Path(__file__).resolve().parent.parent / "gallery" / "conv.tn"
UNLOWERED = "pattern P = conv(stride=2, padding=1)\ninput X[n, i]\ninput W[k]\nY[n, o] = X[n, i] * P[i, o, k] * W[k]\n"


def _args():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 9, 7, generator=g), torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)


def test_fx_graph_module_computes_the_plan_and_pickles_and_scripts():
    args = _args()
    module = tndsl.load(CONV).Y2.fx(*args)
    assert isinstance(module, torch.fx.GraphModule)
    assert any(node.target is torch.conv2d for node in module.graph.nodes)
    expected = F.conv2d(*args, stride=2, padding=1)
    torch.testing.assert_close(module(*args), expected)
    torch.testing.assert_close(pickle.loads(pickle.dumps(module))(*args), expected)
    torch.testing.assert_close(torch.jit.script(module)(*args), expected)


def test_fx_constants_are_buffers():
    x, w = torch.randn(2, 9), torch.randn(3)
    function = tndsl.compile(UNLOWERED, lowering=False).Y
    module = function.fx(x, w)
    buffers = dict(module.named_buffers())
    assert len(buffers) == 1 and next(iter(buffers.values())).shape == (9, 5, 3)  # the Π
    torch.testing.assert_close(module(x, w), function(x, w))
    torch.testing.assert_close(torch.jit.script(module)(x, w), function(x, w))
    torch.testing.assert_close(pickle.loads(pickle.dumps(module))(x, w), function(x, w))
