"""Calling a function where torch traces: under dispatch modes (fake tensors, make_fx) and
inside ``torch.compile``.

Under a mode, constants made while planning belong to the mode (fake tensors, graph
constants), so such a call plans afresh and caches nothing. Inside dynamo, the planner
(plain Python over dicts and the IR) is not traced: the call is a ``nonstrict_trace``
region, which dynamo records as one opaque call and aot_autograd traces (with fake
tensors, under a mode) into the graph, so the plan's torch ops reach inductor. The
function reaches that region as its handle, a unique string: dynamo specialises on
strings (an integer that changes between compiles would become symbolic).
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

__all__ = ["new_handle", "under_mode", "traced_call"]

_COUNTER = itertools.count()
_LIVE: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()


def new_handle(owner: Any) -> str:
    """A fresh handle for ``owner`` (any object with a ``_call`` method), weakly kept."""
    handle = f"tndsl-{next(_COUNTER)}"
    _LIVE[handle] = owner
    return handle


def under_mode() -> bool:
    """Whether a torch dispatch mode (FakeTensorMode, a proxy or tracing mode) is active."""
    return bool(_get_current_dispatch_mode_stack())


@torch._dynamo.nonstrict_trace
def _run(handle: str, args: tuple, kwargs: dict) -> torch.Tensor:
    return _LIVE[handle]._call(*args, **kwargs)


def traced_call(handle: str, args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    """The handle's function called on ``args``, as one region dynamo does not trace into."""
    return _run(handle, args, kwargs)
