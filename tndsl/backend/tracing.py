"""Calling a function where torch traces: under dispatch modes (fake tensors, make_fx) and
inside ``torch.compile``.

Under a mode, constants made while planning belong to the mode (fake tensors, graph
constants), so a direct call under a mode plans afresh and caches nothing.

Inside dynamo the planner (plain Python over dicts and the IR) is never traced. Where
every argument's shape is static (and no autocast region opens inside the compiled
function), :func:`traced_call` asks for the plan by an ``assume_constant_result`` call
on the shapes, dtypes and devices, which dynamo runs once, at trace time; the function
plans on shape-only stand-ins outside any mode and caches the plan like an eager
call's, and dynamo then traces the generated code itself, as it would hand-written
torch code. The code is found as an attribute of :class:`_Plans` (dynamo guards on that
attribute alone). Elsewhere (symbolic shapes: ``dynamic=True``, or dynamo's automatic
dynamic shapes) the call is a ``nonstrict_trace`` region, which dynamo records as one
opaque call and its passes (dynamo's, aot_autograd's forward and backward) run on fake
tensors, under a mode: there the function plans once per signature outside the modes,
keeps free sizes symbolic where the plan allows (:mod:`.dynamic`), and lifts the plan's
constants into the trace (:func:`with_constants`). The function reaches both paths as
its handle, a unique string: dynamo specialises on strings (an integer that changes
between compiles would become symbolic).
"""

from __future__ import annotations

import contextlib
import itertools
import types
import warnings
import weakref
from contextlib import AbstractContextManager
from typing import Any, Callable, Iterable

import torch
from torch.fx.experimental.symbolic_shapes import guard_int, has_static_value, is_concrete_int, optimization_hint
from torch.utils._python_dispatch import _disable_current_modes, _get_current_dispatch_mode_stack

__all__ = ["new_handle", "under_mode", "jit_traced_sizes", "traced_call", "outside_modes", "standin", "hint", "symbolic", "specialise",
           "with_constants", "publish", "withdraw"]

_COUNTER = itertools.count()
_LIVE: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()


class _Plans:
    """Generated code planned while dynamo traced, one attribute per (function, static
    signature): ``(code, argument order)``."""


def publish(entry: tuple[Callable, tuple[int | str, ...] | None]) -> str:
    """Hold ``(code, argument order)`` where :func:`traced_call` finds it (order None:
    the positional arguments as given); its name."""
    name = f"plan_{next(_COUNTER)}"
    setattr(_Plans, name, entry)
    return name


def withdraw(names: Iterable[str]) -> None:
    """Drop published entries (a graph that read one recompiles if called again)."""
    for name in names:
        if hasattr(_Plans, name):
            delattr(_Plans, name)


def new_handle(owner: Any) -> str:
    """A fresh handle for ``owner`` (an object with ``_static`` and ``_traced`` methods),
    weakly kept."""
    handle = f"tndsl-{next(_COUNTER)}"
    _LIVE[handle] = owner
    return handle


@contextlib.contextmanager
def jit_traced_sizes():
    """Under ``torch.jit.trace`` sizes are traced 0-d tensors: planning reads them as the
    constants they are (traces are shape-specialised), so its TracerWarnings — one per
    size the planner looks at — are silenced; outside a trace, nothing changes."""
    if not torch.jit.is_tracing():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def under_mode() -> bool:
    """Whether a torch dispatch mode (FakeTensorMode, a proxy or tracing mode) is active."""
    return bool(_get_current_dispatch_mode_stack())


def outside_modes() -> AbstractContextManager:
    """A context without the active dispatch modes: tensors made there are real."""
    return _disable_current_modes()


def hint(size: int | torch.SymInt) -> int:
    """A size's value in this trace (a symbolic size's example value), adding no guard."""
    return optimization_hint(size) if isinstance(size, torch.SymInt) else int(size)


def symbolic(size: int | torch.SymInt) -> bool:
    """Whether a size is symbolic (not yet specialised to one value)."""
    return isinstance(size, torch.SymInt) and not is_concrete_int(size)


def specialise(size: int | torch.SymInt) -> int:
    """A size as an int; a symbolic one is guarded to its value (dynamo recompiles for others)."""
    return guard_int(size) if isinstance(size, torch.SymInt) else size


def standin(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A real tensor of ``shape`` that holds one element (stride 0): what planning reads
    of an argument, made outside the modes."""
    return torch.empty((), dtype=dtype, device=device).expand(shape)


def with_constants(function: Callable) -> Callable:
    """``function`` (generated code whose plan-time constants are its tensor globals) with
    those constants lifted into the active modes, as ``torch.tensor`` constants are: a
    real tensor cannot enter a fake-tensor trace."""
    constants = {k: v for k, v in function.__globals__.items() if isinstance(v, torch.Tensor)}
    if not constants:
        return function
    lifted = {k: torch.ops.aten.lift_fresh_copy.default(v) for k, v in constants.items()}
    return types.FunctionType(function.__code__, {**function.__globals__, **lifted}, function.__name__)


@torch._dynamo.nonstrict_trace
def _run(handle: str, args: tuple, kwargs: dict) -> torch.Tensor:
    return _LIVE[handle]._traced(*args, **kwargs)


@torch._dynamo.assume_constant_result
def _static_plan(handle: str, described: tuple, names: tuple, autocast: tuple) -> str | None:
    """Run by dynamo at trace time (its arguments are constants): see :func:`traced_call`."""
    owner = _LIVE.get(handle)
    return None if owner is None else owner._static(described, names, autocast)


def traced_call(handle: str, args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    """The handle's function called on ``args`` inside dynamo: the generated code traced
    directly where the shapes are static, else one region dynamo does not trace into.

    Dynamo interprets this function's bytecode and inlines every call and (in Python
    3.11) every comprehension at a cost each, so it is written as plain loops."""
    described: tuple = ()  # what planning reads: (shape, dtype, device) of a tensor, else (value,)
    sizes = 0  # the sum of every size and int argument: symbolic ones are >= 2, so it is constant iff they all are
    ints = True
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            sizes = sizes + sum(value.shape)
            described = described + ((value.shape, value.dtype, value.device),)
        else:
            ints = ints and type(value) is int
            sizes = sizes + value if ints else sizes
            described = described + ((value,),)
    if ints and has_static_value(sizes):
        cpu, cuda = torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda")
        autocast = (torch.get_autocast_dtype("cpu") if cpu else None, torch.get_autocast_dtype("cuda") if cuda else None)
        name = _static_plan(handle, described, tuple(kwargs), autocast)
        if name is not None:
            code, order = getattr(_Plans, name)
            if order is None:
                return code(*args)
            ordered = []
            for i in order:
                ordered.append(args[i] if isinstance(i, int) else kwargs[i])
            return code(*ordered)
    return _run(handle, args, kwargs)
