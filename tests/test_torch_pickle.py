"""Programs and functions pickle and copy before and after calls (plan caches are rebuilt)."""

from __future__ import annotations

import copy
import io
import multiprocessing
import pickle
from pathlib import Path

import pytest
import torch

import tndsl

CONV = Path(__file__).resolve().parent.parent / "gallery" / "conv.tn"


def _args():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 9, 7, generator=g), torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)


class Block(torch.nn.Module):
    """A module holding a tndsl function and its parameters."""

    def __init__(self):
        super().__init__()
        self.conv = tndsl.load(CONV).Y2
        self.weight = torch.nn.Parameter(torch.randn(4, 3, 3, 2))
        self.bias = torch.nn.Parameter(torch.randn(4))

    def forward(self, x):
        return self.conv(x, self.weight, self.bias)


@pytest.mark.parametrize("called", [False, True])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_program_and_function_round_trip(called, how):
    program = tndsl.load(CONV)
    args = _args()
    expected = torch.nn.functional.conv2d(*args, stride=2, padding=1)
    if called:
        program.Y2(*args)
        assert program.Y2._cache
    for thing in (program, program.Y2):
        copied = pickle.loads(pickle.dumps(thing)) if how == "pickle" else copy.deepcopy(thing)
        function = copied.Y2 if isinstance(copied, tndsl.Program) else copied
        assert not function._cache and not function._fast  # rebuilt, not copied
        torch.testing.assert_close(function(*args), expected)
        torch.testing.assert_close(function(*args), expected)  # the fast path after the rebuild


def test_torch_save_of_a_module_holding_a_function():
    block = Block()
    x = _args()[0]
    expected = block(x)
    buffer = io.BytesIO()
    torch.save(block, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded(x), expected)
    assert loaded.conv is not block.conv


def test_spawned_pool_calls_a_function():
    function = tndsl.load(CONV).Y2
    args = _args()
    function(*args)  # planned here; the workers plan again
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        (result,) = pool.starmap(function, [args])
    torch.testing.assert_close(result, function(*args))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_function_copied_alone_keeps_per_call_parameters(how):
    """Without its program, a function still binds ``param`` s per call (its root program
    travels with it, by text)."""
    function = tndsl.load(CONV).Y2
    copied = pickle.loads(pickle.dumps(function)) if how == "pickle" else copy.deepcopy(function)
    args = _args()
    for stride, padding in ((1, 0), (2, 1), (3, 2)):
        expected = torch.nn.functional.conv2d(*args, stride=stride, padding=padding)
        torch.testing.assert_close(copied(*args, stride=stride, padding=padding), expected)
    with pytest.raises(tndsl.TnCallError, match="unexpected argument 'strides'"):
        copied(*args, strides=1)
