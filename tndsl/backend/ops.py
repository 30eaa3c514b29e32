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

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

__all__ = ["Op", "Plan", "OpList", "VIEWS"]

#: Primitives whose result is a view of their first input (for the contiguity decision).
VIEWS = frozenset({"reshape", "permute", "squeeze", "index", "expand", "unfold", "narrow", "movedim", "step"})


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
class OpList:
    """Collects ops and constants while a plan is built."""

    ops: list[Op] = field(default_factory=list)
    constants: list[torch.Tensor] = field(default_factory=list)
    _known: dict[tuple, str] = field(default_factory=dict)
    _producer: dict[str, Op] = field(default_factory=dict)
    _counter: int = 0

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
        self.ops.append(op)
        self._known[key] = op.out
        self._producer[op.out] = op
        return op.out

    def constant(self, value: torch.Tensor) -> str:
        """A name for a plan-time constant; equal constants share one name."""
        for index, known in enumerate(self.constants):
            if known is value or (
                known.shape == value.shape
                and known.dtype == value.dtype
                and known.device == value.device
                and torch.equal(known, value)
            ):
                return f"c{index}"
        self.constants.append(value)
        return f"c{len(self.constants) - 1}"

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

    def finish(self, name: str, args: Sequence[str], result: str) -> Plan:
        """The plan computing ``result``: contiguous, dead ops removed, constants renumbered."""
        if self.is_expanded(result):
            result = self.add("contiguous", result)
        needed = {result}
        live: list[Op] = []
        for op in reversed(self.ops):
            if op.out in needed:
                live.append(op)
                needed.update(op.inputs)
        live.reverse()
        used = sorted({int(n[1:]) for op in live for n in op.inputs if n.startswith("c")} | (
            {int(result[1:])} if result.startswith("c") else set()
        ))
        rename = {f"c{old}": f"c{new}" for new, old in enumerate(used)}
        ops = tuple(
            Op(op.prim, tuple(rename.get(n, n) for n in op.inputs), op.out, op.params) for op in live
        )
        constants = tuple(self.constants[old] for old in used)
        return Plan(name, tuple(args), ops, rename.get(result, result), constants)
