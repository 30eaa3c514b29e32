"""Planning a network for one call signature: an op list (:class:`~tndsl.backend.ops.Plan`).

Per term: deltas are merged away (their legs renamed to one label), each operand is
reduced over legs nobody else needs, and then candidate plans are built and priced by the
cost model (:mod:`tndsl.backend.cost`); the cheapest is kept:

- **lowered**: Π sub-networks become convolutions, views and small matrices
  (:mod:`tndsl.backend.lower`), the rest is contracted pairwise;
- **projected, then lowered**: first the contractions between runtime tensors over legs
  that no Π touches and that shrink the data (a factorized kernel's 1×1 projections),
  then as above;
- **generic**: Π as dense constants, everything contracted pairwise.

Constants are folded at plan time and made only for the plan that is kept. The path is
deterministic and bounded (:mod:`tndsl.backend.paths`); nothing is searched per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from ..ir import Kind, Network, Term, TnNotSupportedError
from .constants import MAX_CONSTANT_BYTES, ConstantCache
from .cost import copy_is_negligible, einsum_layout
from .dtypes import AUTOCAST_PRIMS, casts_result
from .einsum import MAX_LETTERS, einsum_equation
from .lower import Operand, PatternUse, gram, lower
from .ops import OpList, Plan
from .paths import path
from .signature import Signature

__all__ = ["Signature", "plan"]


@dataclass(frozen=True)
class Strategy:
    """How a candidate plan treats a term: Π lowerings, Gram steps, projections first."""

    name: str
    lower: bool
    gram: bool
    project: bool = False


LOWERED = Strategy("lowered", lower=True, gram=True)
PROJECTED = Strategy("projected", lower=True, gram=True, project=True)
GENERIC = Strategy("generic", lower=False, gram=True)
PLAIN = Strategy("plain", lower=False, gram=False)  # the switch: lowering=False


@dataclass
class _Planner:
    """The state of planning one network: its op list, sizes, and where its constants live."""

    network: Network
    signature: Signature
    lowering: bool | str  # True: by cost; False: never; "always"
    constants: ConstantCache
    ops: OpList

    def __post_init__(self) -> None:
        self.sizes = dict(self.signature.sizes)
        self.args = [f"a{i}" for i in range(len(self.network.inputs))]
        self.params = dict(zip((spec.name for spec in self.network.inputs), self.args))
        self.shapes = dict(zip(self.params, self.signature.shapes))
        self.dtypes = dict(zip(self.params, self.signature.dtypes))
        self.selected = {spec.name: len(spec.target) for spec in self.network.inputs}

    @property
    def gram_steps(self) -> bool:
        """Gram steps scale by a float ``alpha``: only for floating and complex dtypes."""
        dtype = self.signature.dtype
        return dtype.is_floating_point or dtype.is_complex

    def argument(self, tensor, ops: OpList) -> Operand:
        """An argument as an operand: data cast to the computation's dtype, split into the
        legs of this use; an index keeps its integers (its target legs are not axes)."""
        var = self.params[tensor.name]
        selected = self.selected[tensor.name]
        legs = tensor.legs[: len(tensor.legs) - selected]
        if self.dtypes[tensor.name] != self.signature.dtype and not selected:
            var = ops.add("to", var, dtype=str(self.signature.dtype).removeprefix("torch."))
        split = tuple(self.sizes[leg] for leg in legs)
        if split != tuple(self.shapes[tensor.name]):
            var = ops.add("reshape", var, shape=split)
        return Operand(tensor.legs, var=var, select=selected)

    def strategies(self, term: Term) -> list[Strategy]:
        """The candidates worth building for a term."""
        if not self.lowering or 0 in self.sizes.values():
            return [PLAIN]  # off, or an empty leg: plain einsums handle empty tensors
        if self.lowering == "always":
            return [LOWERED]
        kinds = [t.kind for t in term.tensors if t.kind is not Kind.DELTA]
        if all(kind is Kind.INPUT for kind in kinds):
            return [LOWERED]  # nothing to lower: one plan
        runtime = kinds.count(Kind.INPUT)
        return [LOWERED, PROJECTED, GENERIC] if runtime > 2 else [LOWERED, GENERIC]

    def const_operand(self, tensor, labels: tuple[str, ...]) -> Operand:
        """A constant occurrence as an operand; its dense value is made only if needed."""
        network, sizes, signature = self.network, self.sizes, self.signature

        def make() -> torch.Tensor:
            return self.constants.tensor_value(network, tensor, sizes, signature.dtype, signature.device)

        pattern = slicing = None
        if tensor.kind is Kind.PATTERN:
            pattern = PatternUse(network.spec_of(tensor), *(sizes[leg] for leg in tensor.legs))
        elif tensor.kind is Kind.SLICE:
            slicing = (tensor.slice.start, tensor.slice.step)
        shape = tuple(sizes[leg] for leg in tensor.legs)
        what = network.spec_of(tensor) if tensor.kind.uses_pattern else tensor.slice
        return Operand(labels, make=make, pattern=pattern, slicing=slicing, key=(tensor.kind, what, shape))


def plan(
    network: Network, signature: Signature, lowering: bool | str = True, constants: ConstantCache | None = None
) -> Plan:
    """The op list computing ``network`` for ``signature``; ``lowering`` True chooses each
    term's plan by cost, False never lowers, ``"always"`` takes every lowering that matches."""
    args = {f"a{i}": tuple(shape) for i, shape in enumerate(signature.shapes)}
    ops = OpList(args, torch.empty((), dtype=signature.dtype).element_size())
    planner = _Planner(network, signature, lowering, constants or ConstantCache(), ops)
    sizes = planner.sizes
    results = [_term(term, planner) for term in network.terms]
    result = results[0]
    for other in results[1:]:
        result = _with_bias(ops, result, other) or _with_bias(ops, other, result) or ops.add("add", result, other)
    flat = tuple(sizes[leg] for leg in network.output_legs)
    grouped = tuple(math.prod(sizes[leg] for leg in group) for group in network.output)
    if grouped != flat:
        result = ops.add("reshape", result, shape=grouped)
    if casts_result(signature.dtype, signature.autocast) and any(op.prim in AUTOCAST_PRIMS for op in ops.live(result)):
        # as F.conv2d / F.linear with a bias: the result in autocast's dtype
        result = ops.add("to", result, dtype=str(signature.autocast).removeprefix("torch."))
    return ops.finish(network.name, result)


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


def _with_bias(ops: OpList, conv: str, bias: str) -> str | None:
    """``conv + bias`` as one convolution with a bias, as ``F.conv2d(x, w, b)`` computes
    it, where ``conv`` is a convolution's result and ``bias`` a vector broadcast along its
    channel axis (the ``+ b[co]`` of a layer): one op less, and no expanded operand."""
    op = ops.producer(conv)
    if op is None or op.prim not in ("conv", "conv_transpose") or len(op.inputs) != 2:
        return None
    shape = ops.shape(conv)
    view = ops.producer(bias)
    if view is not None and view.prim == "expand" and tuple(view.param("shape")) == shape:
        view = ops.producer(view.inputs[0])
    if view is None or view.prim != "index" or tuple(view.param("index")) != (None, ()) + (None,) * (len(shape) - 2):
        return None
    vector = view.inputs[0]
    if ops.shape(vector) != (shape[1],):
        return None
    return ops.add(op.prim, *op.inputs, vector, **dict(op.params))


def _term(term: Term, planner: _Planner) -> str:
    """The variable holding one product term: the cheapest candidate plan, merged into
    the network's op list."""
    strategies = planner.strategies(term)
    if len(strategies) == 1 and strategies[0].lower == strategies[0].gram:  # no dense Π to guard: plan in place
        return _term_with(term, planner, planner.ops, strategies[0])
    best = None
    for strategy in strategies:
        ops = planner.ops.child()
        var = _term_with(term, planner, ops, strategy)
        if ops.constant_bytes(var) > MAX_CONSTANT_BYTES:
            continue  # a dense Π too large to hold: not a candidate
        cost = ops.cost(var)
        if best is None or cost < best[0]:
            best = (cost, ops, var)
    if best is None:
        raise TnNotSupportedError(
            f"in '{planner.network.name}': every plan needs more than {MAX_CONSTANT_BYTES >> 20} MiB of dense "
            "pattern constants for these sizes",
            planner.network.span,
            hint="raise tndsl.backend.constants.MAX_CONSTANT_BYTES, or use smaller sizes",
        )
    return planner.ops.merge(best[1], best[2])


def _term_with(term: Term, planner: _Planner, ops: OpList, strategy: Strategy) -> str:
    """One product term planned with ``strategy`` into ``ops``, shaped as the output."""
    sizes = planner.sizes
    merge = _UnionFind()
    for tensor in term.tensors:
        if tensor.kind is Kind.DELTA:
            for leg in tensor.legs[1:]:
                merge.union(tensor.legs[0], leg)
    output = tuple(merge.find(leg) for leg in planner.network.output_legs)
    operands: list[Operand] = []
    for tensor in term.tensors:
        labels = tuple(merge.find(leg) for leg in tensor.legs)
        if tensor.kind.argument:
            operand = planner.argument(tensor, ops)
            operand.labels = labels
            operands.append(operand)
        elif tensor.kind is not Kind.DELTA:
            operands.append(planner.const_operand(tensor, labels))
    present = {label for op in operands for label in op.labels}
    coeff = term.coeff.evaluate(sizes)
    # labels only deltas touched: summed ones scale the term, open ones broadcast
    loose = {merge.find(leg) for t in term.tensors for leg in t.legs} - present - set(output)
    coeff *= math.prod(sizes[label] for label in loose)
    keep = tuple(dict.fromkeys(label for label in output if label in present))
    if not operands:
        var = ops.constant(planner.constants.ones(planner.signature.dtype, planner.signature.device))
    else:
        var, coeff = _contract(operands, keep, planner, ops, strategy, coeff)
    if coeff != 1.0:
        var = ops.add("scale", var, factor=coeff)
    return _shape_output(var, keep, output, sizes, ops)


def _contract(
    operands: list[Operand], keep: tuple[str, ...], planner: _Planner, ops: OpList, strategy: Strategy, coeff: float
) -> tuple[str, float]:
    """Contract operands down to labels ``keep`` (in that order).

    Returns the variable and what is left of ``coeff`` (a final Gram step absorbs it).
    """
    sizes = planner.sizes
    operands = _reduce_all(operands, keep, ops, sizes, strategy.lower)
    if strategy.project:
        operands = _project(operands, keep, sizes, ops)
    if strategy.lower:
        operands = lower(operands, keep, sizes, ops, planner.signature.dtype)
    operands = [_one_hot(op, ops, sizes, planner.signature.dtype) if op.select else op for op in operands]
    if strategy.lower:
        operands = _reduce_all(operands, keep, ops, sizes)
    zero = ops.constant(planner.constants.zero(planner.signature.dtype, planner.signature.device))
    if len(operands) > 1:
        holders = _Holders(operands)
        for i, j in path([op.labels for op in operands], keep, sizes):
            a, b = operands[i], operands[j]
            rest = operands[:i] + operands[i + 1 : j] + operands[j + 1 :]  # the path's steps have i < j
            holders.remove(a, b)
            labels = keep if not rest else tuple(dict.fromkeys(l for l in a.labels + b.labels if l in keep or holders.count(l)))
            step = None
            if strategy.gram and planner.gram_steps:
                step = gram(a, b, labels, sizes, ops, zero, coeff if not rest else 1.0)
                if step is not None and not rest:
                    coeff = 1.0
            operands = rest + [step or _pair(a, b, labels, ops, sizes)]
            holders.add(operands[-1])
    (last,) = operands
    if last.labels != keep:
        last = _single(last, keep, ops)
    return _var(last, ops, sizes), coeff


def _one_hot(op: Operand, ops: OpList, sizes: Mapping[str, int], dtype: torch.dtype) -> Operand:
    """An index no lowering used, as the dense one-hot tensor it stands for."""
    target = op.labels[len(op.labels) - op.select :]
    classes = math.prod(sizes[label] for label in target)
    var = ops.add("one_hot", op.var, classes=classes, dtype=str(dtype).removeprefix("torch."))
    var = ops.add("reshape", var, shape=tuple(sizes[label] for label in op.labels))
    return Operand(op.labels, var=var)


def _var(op: Operand, ops: OpList, sizes: Mapping[str, int]) -> str:
    """The variable of an operand; a constant is registered (and made only if used)."""
    if op.var is not None:
        return op.var
    return ops.constant(lambda: op.value, shape=tuple(sizes[l] for l in op.labels), key=("operand", op.key or id(op)))


def _project(operands: list[Operand], keep: tuple[str, ...], sizes: Mapping[str, int], ops: OpList) -> list[Operand]:
    """Contract pairs of runtime operands over legs no constant (Π) touches, while that
    shrinks the data: the smallest result relative to its inputs first."""
    pattern_legs = {label for op in operands if op.constant for label in op.labels}
    while True:
        best = None
        runtime = [op for op in operands if not op.constant and not op.select]
        for x, a in enumerate(runtime):
            for b in runtime[x + 1 :]:
                shared = set(a.labels) & set(b.labels)
                if not shared or shared & pattern_legs:
                    continue
                rest = [op for op in operands if op is not a and op is not b]
                needed = set(keep).union(*(op.labels for op in rest))
                labels = tuple(dict.fromkeys(l for l in a.labels + b.labels if l in needed))
                size = math.prod(sizes[l] for l in labels)
                largest = max(math.prod(sizes[l] for l in op.labels) for op in (a, b))
                if size < largest and (best is None or size - largest < best[0]):
                    best = (size - largest, a, b, labels)
        if best is None:
            return operands
        _, a, b, labels = best
        operands = [op for op in operands if op is not a and op is not b] + [_pair(a, b, labels, ops, sizes)]


class _Holders:
    """How many operands carry each label (so a step knows which labels stay needed)."""

    def __init__(self, operands: list[Operand]):
        self.counts: dict[str, int] = {}
        for op in operands:
            self.add(op)

    def add(self, *ops: Operand) -> None:
        for op in ops:
            for label in set(op.labels):
                self.counts[label] = self.counts.get(label, 0) + 1

    def remove(self, *ops: Operand) -> None:
        for op in ops:
            for label in set(op.labels):
                self.counts[label] -= 1

    def count(self, label: str) -> int:
        return self.counts.get(label, 0)


def _reduce_all(
    operands: list[Operand], keep: tuple[str, ...], ops: OpList, sizes: Mapping[str, int], spare: bool = False
) -> list[Operand]:
    """:func:`_reduce` applied to every operand."""
    holders = _Holders(operands)
    return [_reduce(op, operands, keep, ops, sizes, holders, spare) for op in operands]


def _reduce(
    op: Operand,
    operands: list[Operand],
    keep: tuple[str, ...],
    ops: OpList,
    sizes: Mapping[str, int],
    holders: _Holders,
    spare: bool = False,
) -> Operand:
    """Sum out legs only this operand has, and take diagonals of repeated legs.

    With ``spare`` (before lowering), a dense Π on an input is left alone (its window view
    is a reshape, and summing that view is cheaper than folding Π into a matrix), and so
    are size-1 legs of runtime tensors (a lowering absorbs them into a reshape).
    """
    if op.select:
        return op  # an index's integers are not summed: it is selected with, or made one-hot
    if spare and op.pattern is not None and op.pattern.dense and any(
        o.var is not None and o.labels.count(op.labels[0]) == 1 for o in operands
    ):
        return op
    others = set(keep) | {label for label in op.labels if holders.count(label) > 1}
    if spare and op.var is not None:
        others |= {label for label in op.labels if sizes[label] == 1 and op.labels.count(label) == 1}
    labels = tuple(dict.fromkeys(l for l in op.labels if l in others))
    if labels == op.labels:
        return op
    return _single(op, labels, ops, sizes)


def _single(op: Operand, labels: tuple[str, ...], ops: OpList, sizes: Mapping[str, int] | None = None) -> Operand:
    """One operand to ``labels``: a permute, a sum then permute, or an einsum for diagonals.

    Size-1 legs are squeezed (a view); a window view is summed one axis at a time, last
    first, which reads it in place instead of materializing it.
    """
    if op.constant:
        equation = einsum_equation([op.labels], labels)
        key = None if op.key is None else (op.key, equation)
        return Operand(labels, make=lambda: torch.einsum(equation, op.value), key=key)
    var = op.var
    current = op.labels
    if len(set(current)) != len(current):
        if len(set(current)) <= MAX_LETTERS:
            return Operand(labels, var=ops.add("einsum", var, equation=einsum_equation([current], labels)))
        var, current = _diagonals(var, current, ops)
    summed = [n for n, label in enumerate(current) if label not in labels]
    ones = [n for n in summed if sizes is not None and sizes[current[n]] == 1]
    if ones:
        var = ops.add("squeeze", var, dims=tuple(ones))
    summed = [n - sum(1 for m in ones if m < n) for n in summed if n not in ones]
    current = tuple(label for label in current if label in labels or sizes is None or sizes[label] != 1)
    if summed and op.window:
        for axis in sorted(summed, reverse=True):
            var = ops.add("sum", var, dims=(axis,))
    elif summed:
        var = ops.add("sum", var, dims=tuple(summed))
    current = tuple(label for label in current if label in labels)
    if current != labels:
        var = ops.add("permute", var, dims=tuple(current.index(label) for label in labels))
    return Operand(labels, var=var)


def _diagonals(var: str, current: tuple[str, ...], ops: OpList) -> tuple[str, tuple[str, ...]]:
    """Diagonals of repeated legs one pair at a time, for steps einsum cannot spell
    (``Tensor.diagonal`` views; each moves the diagonal axis last)."""
    legs = list(current)
    while len(set(legs)) != len(legs):
        label = next(leg for leg in legs if legs.count(leg) > 1)
        i = legs.index(label)
        j = legs.index(label, i + 1)
        var = ops.add("diagonal", var, dim1=i, dim2=j)
        legs = [leg for n, leg in enumerate(legs) if n not in (i, j)] + [label]
    return var, tuple(legs)


def _pair(a: Operand, b: Operand, labels: tuple[str, ...], ops: OpList, sizes: Mapping[str, int]) -> Operand:
    if len(set(a.labels + b.labels)) > MAX_LETTERS:
        return _broadcast_pair(a, b, labels, ops, sizes)
    if a.constant and b.constant:  # folded at plan time
        equation = einsum_equation([a.labels, b.labels], labels)
        key = None if a.key is None or b.key is None else (a.key, b.key, equation)
        return Operand(labels, make=lambda: torch.einsum(equation, a.value, b.value), key=key)
    inputs = {id(op): _var(op, ops, sizes) for op in (a, b)}
    shapes = {id(op): ops.shape(inputs[id(op)]) for op in (a, b)}
    if copy_is_negligible(sum(math.prod(shape) for shape in shapes.values()), ops.itemsize):
        left, right, order, equation, copies = a, b, labels, einsum_equation([a.labels, b.labels], labels), 0
    else:
        left, right, order, equation, (copies, _) = _einsum_layout(a, b, labels, shapes)
    product = _matrix_product(a, b, labels, sizes) if copies else None
    if product is not None:  # priced against the einsum with its copy, in separate lists
        trials = []
        for build in (product, None):
            trial = ops.child(*inputs.values())
            if build is None:
                var = trial.add("einsum", inputs[id(left)], inputs[id(right)], equation=equation)
                var = trial.add("permute", var, dims=tuple(order.index(l) for l in labels)) if order != labels else var
            else:
                var = build(trial, inputs)
            trials.append((trial.cost(var), trial, var))
        _, trial, var = min(trials, key=lambda t: t[0])
        return Operand(labels, var=ops.merge(trial, var))
    var = ops.add("einsum", inputs[id(left)], inputs[id(right)], equation=equation)
    if order != labels:
        var = ops.add("permute", var, dims=tuple(order.index(label) for label in labels))
    return Operand(labels, var=var)


def _matrix_product(
    a: Operand, b: Operand, labels: tuple[str, ...], sizes: Mapping[str, int]
) -> Callable[[OpList, dict[int, str]], str] | None:
    """A pair as one broadcast ``matmul`` without copying the larger operand, where it has
    the summed legs as one block between kept ones (``X[n, c, h, w]·W[c, r]``: torch.einsum
    would copy ``X`` to put ``c`` last; ``Wᵀ @ X[n, c, (h w)]`` reads it in place) and the
    other operand is a matrix of its own kept legs by the summed ones. None otherwise."""
    big, small = (a, b) if math.prod(sizes[l] for l in a.labels) >= math.prod(sizes[l] for l in b.labels) else (b, a)
    shared = [l for l in big.labels if l in small.labels]
    if not shared or any(l in labels for l in shared) or len(set(big.labels + small.labels)) != len(big.labels) + len(small.labels) - len(shared):
        return None
    k = big.labels.index(shared[0])
    m = len(shared)
    if big.labels[k : k + m] != tuple(shared) or k == 0 or k + m == len(big.labels):
        return None
    own = [l for l in small.labels if l not in shared]
    if not own or any(l not in labels for l in own + list(big.labels[:k] + big.labels[k + m :])):
        return None
    if small.labels not in (tuple(own + shared), tuple(shared + own)):
        return None
    lead, trail = big.labels[:k], big.labels[k + m :]
    size = lambda group: math.prod(sizes[l] for l in group)  # noqa: E731

    def reshape(ops: OpList, var: str, shape: tuple[int, ...]) -> str:
        return var if ops.shape(var) == shape else ops.add("reshape", var, shape=shape)

    def build(ops: OpList, inputs: dict[int, str]) -> str:
        x = reshape(ops, inputs[id(big)], tuple(sizes[l] for l in lead) + (size(shared), size(trail)))
        if small.labels[: len(own)] == tuple(own):
            w = reshape(ops, inputs[id(small)], (size(own), size(shared)))
        else:
            w = ops.add("permute", reshape(ops, inputs[id(small)], (size(shared), size(own))), dims=(1, 0))
        result = tuple(lead) + tuple(own) + tuple(trail)
        var = reshape(ops, ops.add("matmul", w, x), tuple(sizes[l] for l in result))
        return var if result == labels else ops.add("permute", var, dims=tuple(result.index(l) for l in labels))

    return build


def _einsum_layout(
    a: Operand, b: Operand, labels: tuple[str, ...], shapes: Mapping[int, tuple[int, ...]]
) -> tuple[Operand, Operand, tuple[str, ...], str, tuple[int, int]]:
    """The operand order, the result order and the equation to ask ``torch.einsum`` for
    (and the resulting :func:`~tndsl.backend.cost.einsum_layout`):
    ``labels``, or the operands' own order (shared kept legs, then the left operand's,
    then the right one's, as they lie in memory) where that spares copying an operand,
    then reading one transposed (:func:`~tndsl.backend.cost.einsum_layout`); the result is
    then permuted to ``labels``, a view. Ties keep ``a, b`` and ``labels``."""
    best = None
    for left, right in ((a, b), (b, a)):
        natural = tuple(
            [l for l in left.labels if l in labels and l in right.labels]
            + [l for l in left.labels if l in labels and l not in right.labels]
            + [l for l in right.labels if l in labels and l not in left.labels]
        )
        for order in (labels, natural) if natural != labels else (labels,):
            equation = einsum_equation([left.labels, right.labels], order)
            layout = einsum_layout([shapes[id(left)], shapes[id(right)]], equation)
            if best is None or layout < best[-1]:
                best = (left, right, order, equation, layout)
            if best[-1] == (0, 0):
                return best  # nothing copied or transposed
    assert best is not None
    return best


def _broadcast_pair(a: Operand, b: Operand, labels: tuple[str, ...], ops: OpList, sizes: Mapping[str, int]) -> Operand:
    """A contraction step with more legs than einsum has letters: align, multiply, sum."""
    a, b = (_distinct(op, ops, sizes) for op in (a, b))
    union = tuple(dict.fromkeys(a.labels + b.labels))
    aligned = [_align(op, union, ops, sizes) for op in (a, b)]
    var = ops.add("mul", *aligned)
    summed = tuple(n for n, label in enumerate(union) if label not in labels)
    if summed:
        var = ops.add("sum", var, dims=summed)
    rest = tuple(label for label in union if label in labels)
    result = Operand(rest, var=var)
    return result if rest == labels else _single(result, labels, ops)


def _distinct(op: Operand, ops: OpList, sizes: Mapping[str, int]) -> Operand:
    """``op`` with each repeated leg replaced by its diagonal."""
    if len(set(op.labels)) == len(op.labels):
        return op
    var, labels = _diagonals(_var(op, ops, sizes), op.labels, ops)
    return Operand(labels, var=var)


def _align(op: Operand, union: tuple[str, ...], ops: OpList, sizes: Mapping[str, int]) -> str:
    var = _var(op, ops, sizes)
    present = [label for label in union if label in op.labels]
    if tuple(present) != op.labels:
        var = ops.add("permute", var, dims=tuple(op.labels.index(label) for label in present))
    return ops.add("index", var, index=tuple(() if label in op.labels else None for label in union))


def _shape_output(var: str, have: tuple[str, ...], output: tuple[str, ...], sizes, ops: OpList) -> str:
    """Broadcast missing output legs and embed repeated ones as diagonals."""
    unique = tuple(dict.fromkeys(output))
    if have != unique:
        if have:
            var = ops.add("index", var, index=tuple(() if label in have else None for label in unique))
        else:
            var = ops.add("reshape", var, shape=(1,) * len(unique))
        var = ops.add("expand", var, shape=tuple(sizes[label] for label in unique))
    if unique != output:
        # a leg repeated in the output: write into the generalized diagonal of a zero tensor
        strides = [0] * len(unique)
        stride = 1
        for position in reversed(range(len(output))):
            strides[unique.index(output[position])] += stride
            stride *= sizes[output[position]]
        var = ops.add(
            "embed_diagonal", var, shape=tuple(sizes[label] for label in output),
            view=tuple(sizes[label] for label in unique), strides=tuple(strides),
        )
    return var
