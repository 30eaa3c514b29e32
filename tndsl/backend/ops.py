"""The plan as data: a list of operations, built with common-subexpression elimination.

Planning and lowering append :class:`Op` s to an :class:`OpList` — a primitive name, the
names of its inputs, the name of its output and its static parameters — never source
text. The clean-ups that used to read generated code run here, on the list:

- common-subexpression elimination: an op equal to an earlier one (primitive, inputs,
  parameters) is not added again; its output name is reused;
- view merging: a reshape of a reshape is one reshape of the original;
- dead-code removal: :meth:`OpList.finish` keeps only the ops the result depends on;
- contiguity: a result that is a view of an ``expand`` (stride 0) is made contiguous.

The finished :class:`Plan` prints as a readable op list (``str(plan)``); Python source is
printed from it last (:mod:`tndsl.backend.emit`). Names: ``a0, a1, …`` arguments,
``c0, …`` plan-time constants, ``t1, …`` intermediate values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from .cost import BYTE_FLOPS, OP_FLOPS, VIEWS, Shape, flops_of, shape_of

__all__ = ["Op", "Plan", "OpList"]


@dataclass(frozen=True)
class Op:
    """``out = prim(*inputs, **params)``; params are static and hashable (ints, tuples, strs)."""

    prim: str
    inputs: tuple[str, ...]
    out: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple:
        """What makes two ops compute the same value."""
        return (self.prim, self.inputs, self.params)

    def param(self, name: str) -> Any:
        return dict(self.params)[name]

    def __str__(self) -> str:
        params = "".join(f" {name}={value!r}" for name, value in self.params)
        return f"{self.out} = {self.prim}({', '.join(self.inputs)}){params}"


@dataclass(frozen=True)
class Plan:
    """A network planned for one call signature: arguments, ops, constants and result."""

    name: str
    args: tuple[str, ...]
    ops: tuple[Op, ...]
    result: str
    constants: tuple[torch.Tensor, ...] = ()

    def __str__(self) -> str:
        lines = [f"plan {self.name}({', '.join(self.args)}):"]
        for index, value in enumerate(self.constants):
            lines.append(f"  c{index} = constant {tuple(value.shape)} {value.dtype}")
        lines += [f"  {op}" for op in self.ops]
        lines.append(f"  return {self.result}")
        return "\n".join(lines)

    def count(self, prim: str) -> int:
        """How many ops of primitive ``prim`` the plan runs."""
        return sum(op.prim == prim for op in self.ops)


@dataclass
class _Constant:
    """A plan-time constant: its value, or how to make it (made only if the plan keeps it)."""

    make: Callable[[], torch.Tensor]
    shape: Shape
    key: Any = None
    value: torch.Tensor | None = None

    def get(self) -> torch.Tensor:
        if self.value is None:
            self.value = self.make()
        return self.value


class OpList:
    """Collects ops and constants while a plan is built; knows every value's shape.

    ``args`` gives the arguments' names and shapes; ``itemsize`` the bytes per element of
    the computation (for the cost model).
    """

    def __init__(self, args: Mapping[str, Shape], itemsize: int = 4):
        self.args = dict(args)
        self.itemsize = itemsize
        self.ops: list[Op] = []
        self.constants: list[_Constant] = []
        self.shapes: dict[str, Shape] = dict(self.args)
        self._known: dict[tuple, str] = {}
        self._producer: dict[str, Op] = {}
        self._counter = 0

    def child(self, *names: str) -> "OpList":
        """An empty list over the same arguments and this list's values ``names``, for
        planning a candidate (that :meth:`merge` adds back)."""
        other = OpList({**self.args, **{name: self.shapes[name] for name in names}}, self.itemsize)
        other._counter = self._counter  # fresh names never clash with ``names``
        return other

    def fresh(self, prefix: str = "t") -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def add(self, prim: str, *inputs: str, **params: Any) -> str:
        """Append ``prim(*inputs, **params)`` (unless an equal op exists); its output name."""
        if prim == "reshape":
            source = self._producer.get(inputs[0])
            if source is not None and source.prim == "reshape":
                inputs = source.inputs  # a reshape of a reshape is one reshape
        op_params = tuple(params.items())
        key = (prim, tuple(inputs), op_params)
        if key in self._known:
            return self._known[key]
        op = Op(prim, tuple(inputs), self.fresh(), op_params)
        self.shapes[op.out] = shape_of(prim, [self.shapes[name] for name in inputs], params)
        self.ops.append(op)
        self._known[key] = op.out
        self._producer[op.out] = op
        return op.out

    def shape(self, name: str) -> Shape:
        return self.shapes[name]

    def constant(self, value: torch.Tensor | Callable[[], torch.Tensor], shape: Shape | None = None, key: Any = None) -> str:
        """A name for a plan-time constant: a tensor, or a function making it (then
        ``shape`` is required and it is made only if the finished plan uses it). Equal
        tensors, or equal ``key`` s, share one name."""
        if isinstance(value, torch.Tensor):
            entry = _Constant(lambda: value, tuple(value.shape), key, value)
        else:
            assert shape is not None, "a lazy constant needs its shape"
            entry = _Constant(value, tuple(shape), key)
        return self._adopt(entry)

    def producer(self, name: str) -> Op | None:
        return self._producer.get(name)

    def is_expanded(self, name: str) -> bool:
        """Whether ``name`` is (a view of) an ``expand``: memory with stride 0."""
        op = self._producer.get(name)
        while op is not None:
            if op.prim == "expand":
                return True
            if op.prim not in VIEWS:
                return False
            op = self._producer.get(op.inputs[0])
        return False

    def live(self, result: str) -> list[Op]:
        """The ops ``result`` depends on, in order."""
        needed = {result}
        live: list[Op] = []
        for op in reversed(self.ops):
            if op.out in needed:
                live.append(op)
                needed.update(op.inputs)
        live.reverse()
        return live

    def cost(self, result: str) -> float:
        """Flops plus bytes moved (times :data:`BYTE_FLOPS`) of computing ``result``, plus
        :data:`OP_FLOPS` per op that is not a view."""
        total = 0.0
        for op in self.live(result):
            flops, moved = flops_of(op.prim, [self.shapes[n] for n in op.inputs], dict(op.params), self.shapes[op.out])
            if op.prim == "reshape" and self._strided(op.inputs[0]):
                moved = 2.0 * math.prod(self.shapes[op.out])  # reshaping a strided view copies it
            total += flops + BYTE_FLOPS * moved * self.itemsize + (OP_FLOPS if moved else 0.0)
        return total

    def _strided(self, name: str) -> bool:
        """Whether ``name`` is a view that is (probably) not contiguous: a permuted,
        unfolded, sliced or expanded one."""
        op = self._producer.get(name)
        while op is not None and op.prim in VIEWS:
            if op.prim != "reshape" and op.prim != "squeeze":
                return True
            op = self._producer.get(op.inputs[0])
        return False

    def constant_bytes(self, result: str) -> int:
        """Bytes of the plan-time constants ``result`` depends on."""
        names = {n for op in self.live(result) for n in op.inputs} | {result}
        return sum(
            math.prod(entry.shape) * self.itemsize for k, entry in enumerate(self.constants) if f"c{k}" in names
        )

    def merge(self, other: "OpList", result: str) -> str:
        """Add the ops ``result`` needs in ``other`` (a candidate) to this list; the new
        name of ``result``."""
        rename: dict[str, str] = {name: name for name in other.args}
        used = {n for op in other.live(result) for n in op.inputs} | {result}
        for k, entry in enumerate(other.constants):
            if f"c{k}" in used:
                rename[f"c{k}"] = self._adopt(entry)
        for op in other.live(result):
            rename[op.out] = self.add(op.prim, *(rename[n] for n in op.inputs), **dict(op.params))
        return rename[result]

    def _adopt(self, entry: _Constant) -> str:
        for index, known in enumerate(self.constants):
            if _same(known, entry):
                return f"c{index}"
        self.constants.append(entry)
        name = f"c{len(self.constants) - 1}"
        self.shapes[name] = entry.shape
        return name

    def finish(self, name: str, result: str) -> Plan:
        """The plan computing ``result``: contiguous, dead ops removed, constants made and
        renumbered."""
        if self.is_expanded(result):
            result = self.add("contiguous", result)
        live = self.live(result)
        names = {n for op in live for n in op.inputs} | {result}
        used = [k for k in range(len(self.constants)) if f"c{k}" in names]
        rename = {f"c{old}": f"c{new}" for new, old in enumerate(used)}
        ops = tuple(Op(op.prim, tuple(rename.get(n, n) for n in op.inputs), op.out, op.params) for op in live)
        constants = tuple(self.constants[old].get() for old in used)
        return Plan(name, tuple(self.args), ops, rename.get(result, result), constants)


def _same(a: _Constant, b: _Constant) -> bool:
    """Whether two constants are the same: one object, equal keys, or equal known values."""
    if a is b or (a.key is not None and a.key == b.key):
        return True
    if a.value is None or b.value is None:
        return False
    x, y = a.value, b.value
    return x.shape == y.shape and x.dtype == y.dtype and x.device == y.device and bool(torch.equal(x, y))
