"""Planning a network for one shape signature and emitting its straight-line code.

Per term: deltas are merged away (their legs renamed to one label), constants (Π) are
materialized and folded at plan time, each operand is reduced over legs nobody else
needs, and the rest is contracted pairwise in the order opt_einsum finds. The code runs
two-operand einsums only; nothing is searched per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import opt_einsum as oe
import torch

from ..ir import Kind, Network, Term
from .constants import constant_value
from .emit import Emitter, einsum_equation
from .lower import Operand, gram, is_dense, lower, tuple_code

__all__ = ["Signature", "plan"]

MAX_EINSUM_LEGS = 52


@dataclass(frozen=True)
class Signature:
    """What a plan depends on besides the network: shapes, dtype, device, sizes."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[torch.dtype, ...]
    device: torch.device
    dtype: torch.dtype  # the promoted dtype of the computation
    sizes: tuple[tuple[str, int], ...]  # every label's size


class _Arguments:
    """Arguments cast to the computation's dtype and split per use (emitted once each)."""

    def __init__(self, emit: Emitter, signature: Signature, sizes: Mapping[str, int], params: Mapping[str, str]):
        self.emit, self.signature, self.sizes, self.params = emit, signature, sizes, params
        self.shapes = dict(zip(params, signature.shapes))
        self.dtypes = dict(zip(params, signature.dtypes))
        self.done: dict[tuple, str] = {}

    def __call__(self, tensor) -> str:
        split = tuple(self.sizes[leg] for leg in tensor.legs)
        key = (tensor.name, split)
        if key not in self.done:
            code = self.params[tensor.name]
            if self.dtypes[tensor.name] != self.signature.dtype:
                code = self.emit.assign(f"{code}.to({self.signature.dtype})", "x")
            if split != tuple(self.shapes[tensor.name]):
                code = self.emit.assign(f"{code}.reshape({_tuple(split)})", "x")
            self.done[key] = code
        return self.done[key]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, label: str) -> str:
        parent = self.parent.setdefault(label, label)
        if parent != label:
            parent = self.parent[label] = self.find(parent)
        return parent

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def plan(network: Network, signature: Signature, lowering: bool = True) -> tuple[object, str]:
    """Emit and compile the function computing ``network`` for ``signature``."""
    sizes = dict(signature.sizes)
    emit = Emitter()
    params = [f"a{i}" for i in range(len(network.inputs))]
    prepared = _Arguments(emit, signature, sizes, dict(zip((spec.name for spec in network.inputs), params)))
    legs = network.output_legs
    results = [_term(term, network, sizes, signature, prepared, emit, lowering) for term in network.terms]
    result = results[0]
    for other in results[1:]:
        result = emit.assign(f"{result} + {other}", "s")
    flat = tuple(sizes[leg] for leg in legs)
    grouped = tuple(math.prod(sizes[leg] for leg in group) for group in network.output)
    if len(results) == 1 and ".expand(" in "\n".join(emit.lines):
        result = emit.assign(f"{result}.contiguous()", "y")
    if grouped != flat:
        result = emit.assign(f"{result}.reshape({_tuple(grouped)})", "y")
    doc = f"tndsl network {network.name!r} for shapes {list(signature.shapes)}"
    return emit.compile("tn_" + _identifier(network.name), params, result, doc)


def _identifier(name: str) -> str:
    return name if name.isidentifier() else "network"


_tuple = tuple_code


def _term(term: Term, network: Network, sizes, signature, prepared, emit: Emitter, lowering: bool) -> str:
    """Code for one product term, shaped as the (ungrouped) output."""
    merge = _UnionFind()
    for tensor in term.tensors:
        if tensor.kind is Kind.DELTA:
            for leg in tensor.legs[1:]:
                merge.union(tensor.legs[0], leg)
    output = tuple(merge.find(leg) for leg in network.output_legs)
    operands: list[Operand] = []
    for tensor in term.tensors:
        labels = tuple(merge.find(leg) for leg in tensor.legs)
        if tensor.kind is Kind.INPUT:
            operands.append(Operand(labels, code=prepared(tensor)))
        elif tensor.kind is not Kind.DELTA:
            value = _constant(network, tensor, sizes, signature)
            shape = tuple(sizes[leg] for leg in tensor.legs)
            pattern = (network.pattern(tensor.name), *shape) if tensor.kind is Kind.PATTERN else None
            slicing = (tensor.slice.start, tensor.slice.step) if tensor.kind is Kind.SLICE else None
            operands.append(Operand(labels, value=value, pattern=pattern, slicing=slicing))
    present = {label for op in operands for label in op.labels}
    coeff = term.coeff.evaluate(sizes)
    # labels only deltas touched: summed ones scale the term, open ones broadcast
    loose = {merge.find(leg) for t in term.tensors for leg in t.legs} - present - set(output)
    coeff *= math.prod(sizes[label] for label in loose)
    keep = tuple(dict.fromkeys(label for label in output if label in present))
    if not operands:
        code = emit.constant(torch.ones((), dtype=signature.dtype, device=signature.device))
    else:
        scalar = torch.empty((), dtype=signature.dtype, device=signature.device) if lowering else None
        code, coeff = _contract(operands, keep, sizes, emit, scalar, coeff)
    if coeff != 1.0:
        code = emit.assign(f"{code} * {coeff!r}")
    return _shape_output(code, keep, output, sizes, emit)


def _contract(
    operands: list[Operand],
    keep: tuple[str, ...],
    sizes: Mapping[str, int],
    emit: Emitter,
    lowering: torch.Tensor | None,
    coeff: float,
) -> tuple[str, float]:
    """Contract operands down to labels ``keep`` (in that order).

    ``lowering`` is a 0-d tensor of the computation's dtype and device when Π lowerings
    and Gram steps are enabled, None for the plain einsum path.
    Returns the code name and what is left of ``coeff`` (a final Gram step absorbs it).
    """
    spare = lowering is not None
    operands = [_reduce(op, operands, keep, emit, sizes, spare) for op in operands]
    if lowering is not None:
        operands = lower(operands, keep, sizes, emit, lowering.dtype)
        operands = [_reduce(op, operands, keep, emit, sizes) for op in operands]
    if len(operands) > 1:
        path = _path(operands, keep, sizes)
        for i, j in path:
            a, b = operands[i], operands[j]
            rest = [op for n, op in enumerate(operands) if n not in (i, j)]
            needed = set(keep).union(*(op.labels for op in rest))
            labels = tuple(dict.fromkeys(l for l in a.labels + b.labels if l in needed))
            if not rest:
                labels = keep
            step = None
            if lowering is not None:
                step = gram(a, b, labels, sizes, emit, lowering, coeff if not rest else 1.0)
                if step is not None and not rest:
                    coeff = 1.0
            operands = rest + [step or _pair(a, b, labels, emit)]
    (last,) = operands
    if last.labels != keep:
        last = _single(last, keep, emit)
    if last.constant:
        return emit.constant(last.value), coeff
    return last.code, coeff


def _reduce(
    op: Operand, operands: list[Operand], keep: tuple[str, ...], emit: Emitter, sizes: Mapping[str, int], spare: bool = False
) -> Operand:
    """Sum out legs only this operand has, and take diagonals of repeated legs.

    With ``spare`` (before lowering), a dense Π on an input is left alone (its window view
    is a reshape, and summing that view is cheaper than folding Π into a matrix), and so
    are size-1 legs of runtime tensors (a lowering absorbs them into a reshape).
    """
    if spare and op.pattern is not None and is_dense(op.pattern) and any(
        o.code is not None and o.labels.count(op.labels[0]) == 1 for o in operands
    ):
        return op
    others = set(keep).union(*(o.labels for o in operands if o is not op))
    if spare and op.code is not None:
        others |= {label for label in op.labels if sizes[label] == 1 and op.labels.count(label) == 1}
    labels = tuple(dict.fromkeys(l for l in op.labels if l in others))
    if labels == op.labels:
        return op
    return _single(op, labels, emit, sizes)


def _single(op: Operand, labels: tuple[str, ...], emit: Emitter, sizes: Mapping[str, int] | None = None) -> Operand:
    """One operand to ``labels``: a permute, a sum then permute, or an einsum for diagonals.

    Size-1 legs are squeezed (a view); a window view is summed one axis at a time, last
    first, which reads it in place instead of materializing it.
    """
    if op.constant:
        return Operand(labels, value=torch.einsum(einsum_equation([op.labels], labels), op.value))
    code = op.code
    current = op.labels
    if len(set(current)) == len(current):
        summed = [n for n, label in enumerate(current) if label not in labels]
        ones = [n for n in summed if sizes is not None and sizes[current[n]] == 1]
        if ones:
            code = emit.assign(f"{code}.squeeze({_tuple(ones)})")
        summed = [n - sum(1 for m in ones if m < n) for n in summed if n not in ones]
        current = tuple(label for label in current if label in labels or sizes is None or sizes[label] != 1)
        if summed and op.window:
            for axis in sorted(summed, reverse=True):
                code = emit.assign(f"{code}.sum({axis})")
        elif summed:
            code = emit.assign(f"{code}.sum({_tuple(summed)})")
        current = tuple(label for label in current if label in labels)
        if current != labels:
            code = emit.assign(f"{code}.permute({_tuple(current.index(label) for label in labels)})")
        return Operand(labels, code=code)
    return Operand(labels, code=emit.assign(f"torch.einsum({einsum_equation([current], labels)!r}, {code})"))


def _pair(a: Operand, b: Operand, labels: tuple[str, ...], emit: Emitter) -> Operand:
    if len(set(a.labels + b.labels)) > MAX_EINSUM_LEGS:
        return _broadcast_pair(a, b, labels, emit)
    equation = einsum_equation([a.labels, b.labels], labels)
    if a.constant and b.constant:
        return Operand(labels, value=torch.einsum(equation, a.value, b.value))
    x = emit.constant(a.value) if a.constant else a.code
    y = emit.constant(b.value) if b.constant else b.code
    return Operand(labels, code=emit.assign(f"torch.einsum({equation!r}, {x}, {y})"))


def _broadcast_pair(a: Operand, b: Operand, labels: tuple[str, ...], emit: Emitter) -> Operand:
    """A contraction step with more legs than einsum has letters: align, multiply, sum."""
    union = tuple(dict.fromkeys(a.labels + b.labels))
    if len(set(a.labels)) != len(a.labels) or len(set(b.labels)) != len(b.labels):
        raise ValueError("a diagonal in a contraction step with more than 52 legs")
    aligned = [_align(op, union, emit) for op in (a, b)]
    code = emit.assign(f"{aligned[0]} * {aligned[1]}")
    summed = [n for n, label in enumerate(union) if label not in labels]
    if summed:
        code = emit.assign(f"{code}.sum({_tuple(summed)})")
    rest = tuple(label for label in union if label in labels)
    result = Operand(rest, code=code)
    return result if rest == labels else _single(result, labels, emit)


def _align(op: Operand, union: tuple[str, ...], emit: Emitter) -> str:
    code = emit.constant(op.value) if op.constant else op.code
    present = [label for label in union if label in op.labels]
    if tuple(present) != op.labels:
        code = emit.assign(f"{code}.permute({_tuple(op.labels.index(label) for label in present)})")
    index = ", ".join(":" if label in op.labels else "None" for label in union)
    return emit.assign(f"{code}[{index}]")


def _path(operands: list[Operand], keep: tuple[str, ...], sizes: Mapping[str, int]) -> list[tuple[int, int]]:
    symbols: dict[str, str] = {}
    for label in [l for op in operands for l in op.labels] + list(keep):
        symbols.setdefault(label, oe.get_symbol(len(symbols)))
    equation = ",".join("".join(symbols[l] for l in op.labels) for op in operands) + "->" + "".join(symbols[l] for l in keep)
    shapes = [tuple(sizes[l] for l in op.labels) for op in operands]
    strategy = "optimal" if len(operands) <= 6 else ("dp" if len(operands) <= 16 else "greedy")
    path, _ = oe.contract_path(equation, *shapes, shapes=True, optimize=strategy)
    return [tuple(sorted(step)) for step in path]


def _shape_output(code: str, have: tuple[str, ...], output: tuple[str, ...], sizes, emit: Emitter) -> str:
    """Broadcast missing output legs and embed repeated ones as diagonals."""
    unique = tuple(dict.fromkeys(output))
    if have != unique:
        index = ", ".join(":" if label in have else "None" for label in unique)
        code = emit.assign(f"{code}[{index}]" if have else f"{code}.reshape({_tuple([1] * len(unique))})")
        code = emit.assign(f"{code}.expand({_tuple(sizes[label] for label in unique)})")
    if unique != output:
        # a leg repeated in the output: write into the generalized diagonal of a zero tensor
        full = emit.assign(f"{code}.new_zeros({_tuple(sizes[label] for label in output)})", "z")
        strides = [0] * len(unique)
        stride = 1
        for position in reversed(range(len(output))):
            strides[unique.index(output[position])] += stride
            stride *= sizes[output[position]]
        emit.lines.append(
            f"{full}.as_strided({_tuple(sizes[label] for label in unique)}, {_tuple(strides)}).copy_({code})"
        )
        code = full
    return code


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(network: Network, tensor, sizes, signature: Signature) -> torch.Tensor:
    """A constant tensor's dense value, cached across plans (Π by its parameters)."""
    shape = tuple(sizes[leg] for leg in tensor.legs)
    what = network.pattern(tensor.name) if tensor.kind.uses_pattern else tensor.slice
    key = (tensor.kind, what, shape, signature.dtype, signature.device)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = constant_value(network, tensor, sizes, signature.dtype, signature.device)
    return _CONSTANTS[key]
