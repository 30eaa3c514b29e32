"""Printing a :class:`~tndsl.backend.ops.Plan` as straight-line torch source, and compiling it.

Each primitive has one printer in :data:`PRINTERS` (an expression) or :data:`STATEMENTS`
(several lines, e.g. a chunked loop). Only generated names (``a0``, ``c0``, ``t1``, each
checked by :func:`~tndsl.backend.pysource.identifier`), integers, float literals, dtype
names and einsum equations over generated letters reach the source; the one string from
outside, the docstring, is written by :func:`~tndsl.backend.pysource.literal`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .dynamic import Sym
from .ops import Op, Plan
from .pysource import identifier, is_identifier, literal

__all__ = ["source", "compile_plan", "function_name", "PRINTERS", "STATEMENTS"]


def function_name(name: str) -> str:
    """The generated function's name for a network named ``name``: ``tn_`` and the name
    when that is an identifier (no keyword can start with ``tn_``), else ``tn_network``."""
    candidate = f"tn_{name}"
    return candidate if is_identifier(candidate) else "tn_network"


def _int(value: int | Sym) -> str:
    """An integer literal, or a size read from the arguments (a symbolic batch size)."""
    return value.code() if isinstance(value, Sym) else str(int(value))


def _ints(values: Sequence[int | Sym]) -> str:
    return "(" + "".join(f"{_int(v)}, " for v in values) + ")"


def _bias(x: Sequence[str]) -> str:
    """A convolution's optional third input, its bias."""
    return x[2] if len(x) > 2 else "None"


def _call(function: str, *arguments: str) -> str:
    """``function(a, b, ...)`` from generated argument texts."""
    return f"{function}({', '.join(arguments)})"


def _float(value: float | Sym) -> str:
    if isinstance(value, Sym):
        return value.code()
    value = float(value)
    return repr(value) if math.isfinite(value) else f"float({literal(str(value))})"


def _scalar(value: float | Sym) -> str:
    """A coefficient: an int literal when it is integral (so integer tensors stay integer,
    as ``int_tensor * 2`` does in torch), else a float literal (or a symbolic size's)."""
    if isinstance(value, Sym):
        return value.code()
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else _float(value)


def _dtype(name: str) -> str:
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"not a torch dtype: {name!r}")
    return f"torch.{name}"


def _index(items: Sequence[Any]) -> str:
    """``None`` inserts an axis, ``(start, stop, step)`` slices, ``()`` keeps the axis, an
    integer selects one entry (dropping the axis)."""
    parts = []
    for item in items:
        if item is None:
            parts.append("None")
        elif isinstance(item, int):
            parts.append(str(int(item)))
        elif item == ():
            parts.append(":")
        else:
            start, stop, step = item
            parts.append(f"{int(start)}:{int(stop)}" + ("" if step == 1 else f":{int(step)}"))
    return ", ".join(parts)


Printer = Callable[[Sequence[str], dict], str]

#: primitive → the expression computing it from input names and static parameters.
PRINTERS: dict[str, Printer] = {
    "to": lambda x, p: f"{x[0]}.to({_dtype(p['dtype'])})",
    "reshape": lambda x, p: f"{x[0]}.reshape({_ints(p['shape'])})",
    "permute": lambda x, p: f"{x[0]}.permute({_ints(p['dims'])})",
    "sum": lambda x, p: f"{x[0]}.sum({_ints(p['dims'])})",
    "squeeze": lambda x, p: f"{x[0]}.squeeze({_ints(p['dims'])})",
    "movedim": lambda x, p: f"{x[0]}.movedim({int(p['source'])}, {int(p['destination'])})",
    "unfold": lambda x, p: f"{x[0]}.unfold({int(p['axis'])}, {int(p['size'])}, {int(p['step'])})",
    "narrow": lambda x, p: f"{x[0]}.narrow({int(p['axis'])}, {int(p['start'])}, {int(p['length'])})",
    "step": lambda x, p: f"{x[0]}[..., ::{int(p['step'])}]",
    "index": lambda x, p: f"{x[0]}[{_index(p['index'])}]",
    "expand": lambda x, p: f"{x[0]}.expand({_ints(p['shape'])})",
    "contiguous": lambda x, p: f"{x[0]}.contiguous()",
    "diagonal": lambda x, p: f"{x[0]}.diagonal(0, {int(p['dim1'])}, {int(p['dim2'])})",
    "pad": lambda x, p: f"F.pad({x[0]}, {_ints(p['pads'])})",
    "einsum": lambda x, p: f"torch.einsum({literal(str(p['equation']))}, {', '.join(x)})",
    "mul": lambda x, p: f"{x[0]} * {x[1]}",
    "add": lambda x, p: f"{x[0]} + {x[1]}",
    "scale": lambda x, p: f"{x[0]} * {_scalar(p['factor'])}",
    "matmul": lambda x, p: f"{x[0]} @ {x[1]}",
    "conv": lambda x, p: _call(
        f"F.conv{int(p['dims'])}d", x[0], x[1], _bias(x), _ints(p["stride"]), _ints(p["padding"]), _ints(p["dilation"]),
        str(int(p["groups"])),
    ),
    "conv_weight": lambda x, p: _call(
        f"torch.nn.grad.conv{int(p['dims'])}d_weight", x[0], _ints(p["weight"]), x[1], _ints(p["stride"]),
        _ints(p["padding"]), _ints(p["dilation"]), str(int(p["groups"])),
    ),
    "conv_transpose": lambda x, p: _call(
        f"F.conv_transpose{int(p['dims'])}d", x[0], x[1], _bias(x), _ints(p["stride"]), _ints(p["padding"]),
        _ints(p["output_padding"]), str(int(p["groups"])), _ints(p["dilation"]),
    ),
    "fold": lambda x, p: _call(
        "F.fold", x[0], _ints(p["output_size"]), _ints(p["kernel_size"]), _ints(p["dilation"]), "0", _ints(p["stride"])
    ),
    "take": lambda x, p: f"{x[0]}[{_take(x[1], p)}]",
    "gram": lambda x, p: f"torch.baddbmm({x[1]}, {_gram_product(x[0], p)}, beta=0, alpha={_float(p['alpha'])})",
}


def _take(index: str, p: dict) -> str:
    """Advanced indexing: each indexed axis takes its component of the flat index."""
    parts = [":"] * (max(p["axes"]) + 1)
    for axis, stride, size in zip(p["axes"], p["strides"], p["sizes"]):
        component = index if stride == 1 else f"{index} // {int(stride)}"
        if len(p["axes"]) > 1 and stride * size != math.prod(p["sizes"]):
            component = f"({component}) % {int(size)}"
        parts[axis] = component
    return ", ".join(parts)


def _window_starts(index: str, p: dict) -> str:
    """The flat offset of each selected window's first entry in the flattened input."""
    terms = []
    for stride, size, step in zip(p["strides"], p["sizes"], p["steps"]):
        component = index if stride == 1 else f"{index} // {int(stride)}"
        if stride * size != math.prod(p["sizes"]):
            component = f"({component}) % {int(size)}"
        terms.append(f"({component}) * {int(step)}")
    return " + ".join(terms)


def _gram_product(u: str, p: dict) -> str:
    return f"{u}.transpose(1, 2), {u}" if p["transposed"] else f"{u}, {u}.transpose(1, 2)"


def _gram_chunked(out: str, x: Sequence[str], p: dict) -> list[str]:
    """``Σ_chunks uᵀu`` over chunks of axis ``axis`` of the operand, accumulated in place."""
    u = f"{out}_u"
    axis, total, step = int(p["axis"]), int(p["total"]), int(p["step"])
    permute = f".permute({_ints(p['dims'])})" if p["dims"] else ""
    product = _gram_product(u, p)
    return [
        f"{out} = None",
        f"for j in range(0, {total}, {step}):",
        f"    {u} = {x[0]}.narrow({axis}, j, min({step}, {total} - j))",
        *([f"    {u} = {u}{permute}"] if permute else []),
        f"    {u} = {u}.reshape({_ints(p['shape'])})",
        f"    if {out} is None:",
        f"        {out} = torch.baddbmm({x[1]}, {product}, beta=0, alpha={_float(p['alpha'])})",
        "    else:",
        f"        {out}.baddbmm_({product}, alpha={_float(p['alpha'])})",
    ]


def _embed_diagonal(out: str, x: Sequence[str], p: dict) -> list[str]:
    """A zero tensor of ``shape`` whose generalized diagonal (a strided view) holds ``x``."""
    return [
        f"{out} = {x[0]}.new_zeros({_ints(p['shape'])})",
        f"{out}.as_strided({_ints(p['view'])}, {_ints(p['strides'])}).copy_({x[0]})",
    ]


def _index_select(out: str, flat: str, index: str, first: int) -> list[str]:
    """``flat.index_select(first, index)`` with the axes before ``first`` merged into one:
    torch's index_select copies one entry at a time far faster from a 2-d (or 3-d, rows)
    tensor than along a later axis."""
    if first <= 1:
        return [f"{out} = {flat}.index_select({first}, {index})"]
    return [
        f"{out}_n = {flat}.shape[:{first}]",
        f"{out} = {flat}.flatten(0, {first - 1})",
        f"{out} = {out}.index_select(1, {index})",
        f"{out} = {out}.unflatten(0, {out}_n)",
    ]


def _select_flat(out: str, x: Sequence[str], p: dict) -> list[str]:
    """Entries of the flattened indexed axes (``first`` on, before ``trail`` axes copied
    whole as rows), at the index's (flat) positions."""
    first, last = int(p["first"]), -1 - int(p["trail"])
    return [f"{out} = {x[0]}.flatten({first}, {last})", *_index_select(out, out, f"{x[1]}.reshape(-1)", first)]


def _gather_windows(out: str, x: Sequence[str], p: dict) -> list[str]:
    """Selected windows of the flattened spatial axes (axes ``first`` on; trailing axes
    after them are rows copied whole): each window's start plus the constant offsets of
    its entries, one ``index_select``."""
    first = int(p["first"])
    return [
        f"{out}_i = {_window_starts(x[1], p)}",
        f"{out}_i = {out}_i.reshape(-1, 1) + {x[2]}",
        f"{out} = {x[0]}.flatten({first}, {first + len(p['strides']) - 1})",
        *_index_select(out, out, f"{out}_i.reshape(-1)", first),
    ]


#: primitive → the lines computing it (for ops that are not one expression).
STATEMENTS: dict[str, Callable[[str, Sequence[str], dict], list[str]]] = {
    "one_hot": lambda out, x, p: [
        f"{out} = {x[0]}.long()",
        f"{out} = F.one_hot({out}, {int(p['classes'])})",
        f"{out} = {out}.to({_dtype(p['dtype'])})",
    ],
    "select_flat": _select_flat,
    "gather_windows": _gather_windows,
    "gram_chunked": _gram_chunked,
    "embed_diagonal": _embed_diagonal,
}


def _lines(op: Op) -> list[str]:
    params = dict(op.params)
    out, inputs = identifier(op.out), [identifier(name) for name in op.inputs]
    if op.prim in STATEMENTS:
        return STATEMENTS[op.prim](out, inputs, params)
    return [f"{out} = {PRINTERS[op.prim](inputs, params)}"]


def source(plan: Plan, function: str, doc: str) -> str:
    """The plan as one Python function ``function`` (a generated identifier); ``doc``, any
    text, becomes its docstring through :func:`literal`."""
    body = [f"    {line}" for op in plan.ops for line in _lines(op)]
    args = ", ".join(identifier(arg) for arg in plan.args)
    return (
        f"def {identifier(function)}({args}):\n    {literal(doc)}\n" + "".join(line + "\n" for line in body)
        + f"    return {identifier(plan.result)}\n"
    )


def compile_plan(plan: Plan, function: str, doc: str) -> tuple[Callable, str]:
    """The plan's function (constants bound as globals ``c0, c1, …``) and its source."""
    text = source(plan, function, doc)
    namespace: dict[str, Any] = {"torch": torch, "F": F}
    namespace.update({f"c{i}": value for i, value in enumerate(plan.constants)})
    exec(compile(text, f"<tndsl {function}>", "exec"), namespace)  # noqa: S102 - generated, see module doc
    return namespace[function], text
