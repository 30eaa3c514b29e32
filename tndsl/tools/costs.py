"""What each step of a plan costs: output shape, floating-point operations, bytes moved.

Shapes come from running each op of the :class:`~tndsl.backend.ops.Plan` on ``meta``
tensors (no memory, no arithmetic) through the same printer that makes the compiled
code, so they cannot drift from what runs. FLOPs count a multiply-add as two; bytes are
what a step reads (the memory its inputs span: an ``expand`` is read once) plus what it
writes. Views (reshape, permute, unfold, …) cost nothing; a reshape that has to copy
(of a permuted or unfolded tensor: the im2col buffer) is a step with its bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ..backend.emit import PRINTERS, STATEMENTS, compile_plan
from ..backend.ops import VIEWS, Op, Plan

__all__ = ["Step", "plan_steps", "torch_call", "format_count"]


@dataclass(frozen=True)
class Step:
    """One op of a plan with its output shape and cost."""

    op: Op
    shape: tuple[int, ...]
    dtype: torch.dtype
    flops: int
    bytes: int
    view: bool

    @property
    def call(self) -> str:
        """The torch function or method the op runs (``F.conv2d``, ``Tensor.unfold``, ``@``)."""
        return torch_call(self.op)


def plan_steps(plan: Plan, shapes: Sequence[Sequence[int]], dtypes: Sequence[torch.dtype] | None = None) -> list[Step]:
    """Every op of ``plan`` for arguments of ``shapes`` (and ``dtypes``, default float32)."""
    dtypes = list(dtypes) if dtypes is not None else [torch.float32] * len(shapes)
    values: dict[str, torch.Tensor] = {
        name: torch.empty(tuple(shape), dtype=dtype, device="meta") for name, shape, dtype in zip(plan.args, shapes, dtypes)
    }
    values.update({f"c{i}": value.to("meta") for i, value in enumerate(plan.constants)})
    steps = []
    for op in plan.ops:
        inputs = [values[name] for name in op.inputs]
        out = _run(op, values)
        values[op.out] = out
        view = op.prim in VIEWS and out._base is not None  # a reshape may have to copy
        flops = 0 if view else _FLOPS.get(op.prim, _no_flops)(op, inputs, out)
        moved = 0 if view else sum(_span_bytes(t) for t in _unique(op.inputs, inputs)) + out.numel() * out.element_size()
        steps.append(Step(op, tuple(out.shape), out.dtype, int(flops), int(moved), view))
    return steps


def _run(op: Op, values: dict[str, torch.Tensor]) -> torch.Tensor:
    names = list(dict.fromkeys(op.inputs))
    function, _ = compile_plan(Plan("step", tuple(names), (op,), op.out), "step", "one op on meta tensors")
    return function(*(values[name] for name in names))


def _unique(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return list(dict(zip(names, tensors)).values())


def _span_bytes(tensor: torch.Tensor) -> int:
    """The bytes a tensor's elements occupy in memory (an expanded axis counts once)."""
    if tensor.numel() == 0:
        return 0
    span = 1 + sum((size - 1) * abs(stride) for size, stride in zip(tensor.shape, tensor.stride()))
    return span * tensor.element_size()


def _no_flops(op: Op, inputs: list[torch.Tensor], out: torch.Tensor) -> int:
    return 0


def _einsum(op: Op, inputs: list[torch.Tensor], out: torch.Tensor) -> int:
    left, right = str(op.param("equation")).split("->")
    sizes: dict[str, int] = {}
    for letters, tensor in zip(left.split(","), inputs):
        sizes.update(zip(letters, tensor.shape))
    summed = any(letter not in right for letter in sizes)
    return math.prod(sizes.values()) * max(1, len(inputs) - 1 + summed)


def _gram(op: Op, inputs: list[torch.Tensor], out: torch.Tensor) -> int:
    rows = out.shape[0] * out.shape[1]
    return 2 * out.numel() * (inputs[0].numel() // max(rows, 1))


_FLOPS: dict[str, Callable[[Op, list[torch.Tensor], torch.Tensor], int]] = {
    "einsum": _einsum,
    "matmul": lambda op, x, out: 2 * out.numel() * x[0].shape[-1],
    "conv": lambda op, x, out: 2 * out.numel() * (x[1].numel() // x[1].shape[0]),
    "conv_transpose": lambda op, x, out: 2 * x[0].numel() * (x[1].numel() // x[1].shape[0]),
    "conv_weight": lambda op, x, out: 2 * out.numel() * (x[1].numel() // x[1].shape[1]),
    "gram": _gram,
    "gram_chunked": _gram,
    "mul": lambda op, x, out: out.numel(),
    "add": lambda op, x, out: out.numel(),
    "scale": lambda op, x, out: out.numel(),
    "sum": lambda op, x, out: x[0].numel(),
}

_CALL = re.compile(r"^(?:[a-z]\w*\s*=\s*)?(F\.\w+|torch(?:\.\w+)+)\(")
_METHOD = re.compile(r"^(?:[a-z]\w*\s*=\s*)?[a-z]\w*\.(\w+)\(")


def torch_call(op: Op) -> str:
    """The torch function, method or operator that runs ``op`` (read off the emitted code)."""
    params: dict[str, Any] = dict(op.params)
    names = [f"x{i}" for i in range(len(op.inputs))]
    if op.prim in STATEMENTS:
        lines = STATEMENTS[op.prim]("out", names, params)
        calls = [m[1] for line in lines if (m := _CALL.match(line.strip()))]
        strided = any(".as_strided(" in line for line in lines)
        return calls[0] if calls else "Tensor.as_strided" if strided else op.prim
    expression = PRINTERS[op.prim](names, params)
    match = _CALL.match(expression)
    if match:
        return match[1]
    match = _METHOD.match(expression)
    if match:
        return f"Tensor.{match[1]}"
    if expression.startswith("x0["):
        return "Tensor[...]"
    operator = re.match(r"^x0 (\S+) ", expression)
    return operator[1] if operator else op.prim


def format_count(value: float, unit: str) -> str:
    """``2.1 MFLOP``, ``640 B``: three significant digits, decimal prefixes."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.0f} {unit}"
