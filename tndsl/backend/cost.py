"""The cost model: each primitive's result shape, flops and bytes moved.

The planner prices whole op lists with it — a lowered plan against the generic
contraction — and takes the cheaper (:func:`tndsl.backend.plan.plan`). Views cost
nothing; a contraction costs two flops per multiply-add; bytes are what a step reads
and writes. :data:`BYTE_FLOPS` converts bytes to flops (the machine balance).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

__all__ = ["shape_of", "flops_of", "einsum_layout", "copy_is_negligible", "Shape", "BYTE_FLOPS", "INDEX_FLOPS", "OP_FLOPS", "FOLD_ELEMENT_FLOPS", "CONV_ELEMENT_FLOPS", "VIEWS"]

Shape = tuple[int, ...]

#: How many flops one byte moved counts as.
BYTE_FLOPS = 2.0

#: What one call of a torch op costs besides its work (dispatch, allocation, a kernel
#: launch: a few µs, as long as a CPU matrix product takes for 500 kflop), so that small
#: networks take the plan with fewer ops.
OP_FLOPS = 500_000.0

#: What one index of an indexing op costs besides the entries it copies (an
#: ``index_select`` copies a row of contiguous entries per index: one entry per index is
#: many times slower than a copy).
INDEX_FLOPS = 64.0

#: What ``F.fold`` (col2im) costs per input entry: it adds them into place one at a time,
#: on one CPU thread (measured: about as long as a matrix product's 256 flops).
FOLD_ELEMENT_FLOPS = 256.0

#: Primitives that return a view of their first input: no flops, no bytes.
VIEWS = frozenset({"reshape", "permute", "squeeze", "index", "expand", "unfold", "narrow", "movedim", "step", "diagonal"})


def _reshape(x: Sequence[Shape], p: dict) -> Shape:
    shape = list(p["shape"])
    if -1 in shape:
        known = math.prod(v for v in shape if v != -1)
        shape[shape.index(-1)] = math.prod(x[0]) // known if known else 0
    return tuple(shape)


def _drop(shape: Shape, dims: Sequence[int]) -> Shape:
    dropped = {d % len(shape) for d in dims} if shape else set()
    return tuple(v for k, v in enumerate(shape) if k not in dropped)


def _movedim(x: Sequence[Shape], p: dict) -> Shape:
    shape = list(x[0])
    value = shape.pop(p["source"] % len(shape))
    destination = p["destination"] % (len(shape) + 1)
    shape.insert(destination, value)
    return tuple(shape)


def _unfold(x: Sequence[Shape], p: dict) -> Shape:
    shape = list(x[0])
    axis = p["axis"] % len(shape)
    shape[axis] = (shape[axis] - p["size"]) // p["step"] + 1
    return tuple(shape) + (p["size"],)


def _index(x: Sequence[Shape], p: dict) -> Shape:
    shape: list[int] = []
    rest = list(x[0])
    for item in p["index"]:
        if item is None:
            shape.append(1)
        elif isinstance(item, int):
            rest.pop(0)
        elif item == ():
            shape.append(rest.pop(0))
        else:
            size = rest.pop(0)
            start, stop, step = item
            shape.append(len(range(start, min(stop, size), step)))
    return tuple(shape + rest)


def _pad(x: Sequence[Shape], p: dict) -> Shape:
    shape = list(x[0])
    pads = p["pads"]
    for k in range(len(pads) // 2):
        shape[-1 - k] += pads[2 * k] + pads[2 * k + 1]
    return tuple(shape)


def _einsum(x: Sequence[Shape], p: dict) -> Shape:
    inputs, output = p["equation"].split("->")
    sizes = {c: v for spec, shape in zip(inputs.split(","), x) for c, v in zip(spec, shape)}
    return tuple(sizes[c] for c in output)


def _broadcast(x: Sequence[Shape], p: dict) -> Shape:
    a, b = x
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(max(u, v) for u, v in zip(a, b))


def _matmul(x: Sequence[Shape], p: dict) -> Shape:
    """``torch.matmul``'s result, vectors (1-d operands) included."""
    a, b = x
    if len(a) == 1:
        return b[:-2] + b[-1:] if len(b) > 1 else ()
    if len(b) == 1:
        return a[:-1]
    return _broadcast([a[:-2], b[:-2]], p) + (a[-2], b[-1])


def _conv(x: Sequence[Shape], p: dict) -> Shape:
    n = p["dims"]
    outs = tuple(
        (i + 2 * pad - d * (k - 1) - 1) // s + 1
        for i, k, s, pad, d in zip(x[0][2:], x[1][2:], p["stride"], p["padding"], p["dilation"])
    )
    return (x[0][0], x[1][0]) + outs[:n]


def _conv_transpose(x: Sequence[Shape], p: dict) -> Shape:
    ins = tuple(
        (o - 1) * s - 2 * pad + d * (k - 1) + 1 + e
        for o, k, s, pad, d, e in zip(x[0][2:], x[1][2:], p["stride"], p["padding"], p["dilation"], p["output_padding"])
    )
    return (x[0][0], x[1][1] * p["groups"]) + ins


def _diagonal(x: Sequence[Shape], p: dict) -> Shape:
    shape = x[0]
    i, j = p["dim1"], p["dim2"]
    return tuple(v for k, v in enumerate(shape) if k not in (i, j)) + (min(shape[i], shape[j]),)


def _take(x: Sequence[Shape], p: dict) -> Shape:
    axes = list(p["axes"])
    rest = [v for a, v in enumerate(x[0]) if a not in axes]
    if axes == list(range(axes[0], axes[0] + len(axes))):
        return tuple(x[0][: axes[0]]) + tuple(x[1]) + tuple(x[0][axes[-1] + 1 :])
    return tuple(x[1]) + tuple(rest)


def _gram(x: Sequence[Shape], p: dict) -> Shape:
    b, rows, cols = x[0]
    free = cols if p["transposed"] else rows
    return (b, free, free)


def _gram_chunked(x: Sequence[Shape], p: dict) -> Shape:
    whole = _reshape([x[0]], {"shape": p["shape"]})
    return _gram([whole], p)


#: primitive → result shape from input shapes and static parameters.
SHAPES: dict[str, Callable[[Sequence[Shape], dict], Shape]] = {
    "to": lambda x, p: x[0],
    "reshape": _reshape,
    "permute": lambda x, p: tuple(x[0][d] for d in p["dims"]),
    "sum": lambda x, p: _drop(x[0], p["dims"]),
    "squeeze": lambda x, p: _drop(x[0], p["dims"]),
    "movedim": _movedim,
    "unfold": _unfold,
    "narrow": lambda x, p: x[0][: p["axis"]] + (p["length"],) + x[0][p["axis"] + 1 :],
    "step": lambda x, p: x[0][:-1] + (-(-x[0][-1] // p["step"]),),
    "index": _index,
    "expand": lambda x, p: tuple(p["shape"]),
    "contiguous": lambda x, p: x[0],
    "pad": _pad,
    "einsum": _einsum,
    "mul": _broadcast,
    "add": _broadcast,
    "scale": lambda x, p: x[0],
    "matmul": _matmul,
    "conv": _conv,
    "conv_weight": lambda x, p: tuple(p["weight"]),
    "conv_transpose": _conv_transpose,
    "fold": lambda x, p: (x[0][0], x[0][1] // math.prod(p["kernel_size"])) + tuple(p["output_size"]),
    "diagonal": _diagonal,
    "take": lambda x, p: _take(x, p),
    "select_flat": lambda x, p: (
        tuple(x[0][: p["first"]]) + (math.prod(x[1]),) + tuple(x[0][len(x[0]) - p["trail"] :])
    ),
    "gather_windows": lambda x, p: (
        tuple(x[0][: p["first"]]) + (math.prod(x[1]) * x[2][0],) + tuple(x[0][p["first"] + len(p["strides"]) :])
    ),
    "one_hot": lambda x, p: x[0] + (p["classes"],),
    "gram": _gram,
    "gram_chunked": _gram_chunked,
    "embed_diagonal": lambda x, p: tuple(p["shape"]),
}


def shape_of(prim: str, inputs: Sequence[Shape], params: dict) -> Shape:
    return SHAPES[prim](inputs, params)


def _einsum_flops(x: Sequence[Shape], p: dict, out: Shape) -> float:
    inputs, _ = p["equation"].split("->")
    sizes = {c: v for spec, shape in zip(inputs.split(","), x) for c, v in zip(spec, shape)}
    return 2.0 * math.prod(sizes.values()) if len(x) > 1 else float(math.prod(x[0]))


def copy_is_negligible(elements: int, itemsize: int) -> bool:
    """Whether copying ``elements`` (read and written) costs less than a sixteenth of one
    op's dispatch (:data:`OP_FLOPS`): then no layout is worth searching for."""
    return 2 * elements * itemsize * BYTE_FLOPS < OP_FLOPS / 16


def einsum_layout(x: Sequence[Shape], equation: str) -> tuple[int, int]:
    """How ``torch.einsum`` lays out a two-operand contraction for its batched matmul, the
    operands taken as contiguous: ``(elements copied, elements read transposed)``.

    torch arranges the left operand as ``[batch, left-only, summed]`` and the right one as
    ``[batch, summed, right-only]``, each group in the order the equation's output (for
    summed legs: the letters) gives, and reshapes them to 3-d: a group whose axes are not
    consecutive in memory makes that reshape a copy. An operand whose two matrix groups lie
    the other way round in memory is read transposed (slower in a CPU matmul).
    """
    inputs, output = equation.split("->")
    specs = inputs.split(",")
    if len(specs) != 2 or any(len(set(spec)) != len(spec) for spec in specs):
        return 0, 0
    left, right = specs
    copied = transposed = 0
    for spec, other, shape, first in ((left, right, x[0], True), (right, left, x[1], False)):
        where: dict[str, int] = {}  # memory positions of the axes that are not size 1
        for c, v in zip(spec, shape):
            if v != 1:
                where[c] = len(where)
        batch: list[int] = []
        own: list[int] = []
        summed: list[int] = []
        for c in output:
            if c in where:
                (batch if c in other else own).append(where[c])
        for c in sorted(spec):
            if c in where and c in other and c not in output:
                summed.append(where[c])
        if any(g and g[-1] - g[0] != len(g) - 1 or g != sorted(g) for g in (batch, own, summed)):
            copied += math.prod(shape)
        elif own and summed and (own[0] < summed[0]) != first:
            transposed += math.prod(shape)  # the left operand's summed axes, the right one's own axes, lie first
    return copied, transposed


#: What one result element of a convolution costs besides its multiply-adds (a CPU
#: convolution spends about as long per result element as a matrix product does on 256
#: flops, however few channels it sums: a depthwise one runs far below the matmul rate).
CONV_ELEMENT_FLOPS = 256.0


def _conv_flops(x: Sequence[Shape], p: dict, out: Shape) -> float:
    # every output element: (input channels per group) x (kernel volume) multiply-adds
    return math.prod(out) * (2.0 * (x[0][1] // p["groups"]) * math.prod(x[1][2:]) + CONV_ELEMENT_FLOPS)


def _conv_weight_flops(x: Sequence[Shape], p: dict, out: Shape) -> float:
    # per weight element: batch x (output positions) multiply-adds
    return 2.0 * math.prod(out) * x[0][0] * math.prod(x[1][2:])


def _conv_transpose_flops(x: Sequence[Shape], p: dict, out: Shape) -> float:
    # the adjoint of a convolution from ``out`` to ``x[0]``
    return 2.0 * math.prod(x[0]) * (x[1][1]) * math.prod(x[1][2:]) + CONV_ELEMENT_FLOPS * math.prod(out)


def _gram_flops(x: Sequence[Shape], p: dict, out: Shape) -> float:
    whole = _reshape([x[0]], {"shape": p["shape"]}) if "shape" in p and len(x[0]) != 3 else x[0]
    b, rows, cols = whole
    summed = rows if p["transposed"] else cols
    return 2.0 * math.prod(out) * summed


#: primitive → flops from input shapes, parameters and the result shape (default: one per
#: result element; views: none).
FLOPS: dict[str, Callable[[Sequence[Shape], dict, Shape], float]] = {
    "einsum": _einsum_flops,
    "matmul": lambda x, p, out: 2.0 * math.prod(out) * x[0][-1],
    "conv": _conv_flops,
    "conv_weight": _conv_weight_flops,
    "conv_transpose": _conv_transpose_flops,
    "gram": _gram_flops,
    "gram_chunked": _gram_flops,
    "sum": lambda x, p, out: float(math.prod(x[0])),
    "fold": lambda x, p, out: FOLD_ELEMENT_FLOPS * math.prod(x[0]),
}


def flops_of(prim: str, inputs: Sequence[Shape], params: dict, out: Shape) -> tuple[float, float]:
    """``(flops, elements moved)`` of one op: views are free; other ops read their inputs
    and write their result."""
    if prim in VIEWS:
        return 0.0, 0.0
    if prim in ("take", "select_flat", "gather_windows"):  # reads only the selected entries
        rows = math.prod(out)  # one index per entry, or per row of trailing axes copied whole
        if prim == "gather_windows":
            rows //= max(1, math.prod(inputs[0][params["first"] + len(params["strides"]) :]))
        elif prim == "select_flat":
            rows //= max(1, math.prod(inputs[0][len(inputs[0]) - params["trail"] :]))
        return float(math.prod(out) + INDEX_FLOPS * rows), float(2 * math.prod(out) + math.prod(inputs[1]))
    if prim == "one_hot":  # a scatter, one index at a time, after reading the index twice (its range checked);
        # written as int64, then converted
        return float(math.prod(out) + INDEX_FLOPS * math.prod(inputs[0])), float(3 * math.prod(out) + 2 * math.prod(inputs[0]))
    flops = FLOPS[prim](inputs, params, out) if prim in FLOPS else float(math.prod(out))
    moved = float(sum(math.prod(s) for s in inputs) + math.prod(out))
    if prim == "einsum":
        moved += 2 * einsum_layout(inputs, params["equation"])[0]  # read and written once more
    return flops, moved
