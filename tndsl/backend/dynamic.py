"""Plans whose batch sizes stay symbolic (``torch.compile(dynamic=True)``).

A plan is made for concrete sizes. Under dynamic shapes, some argument axes may keep a
symbolic size in the generated code, so that one compiled graph serves every size; the
rule (docs/torch.md, "Dynamic shapes"):

- **Free axes.** An argument axis is a candidate when it is one whole leg (not split
  by a grouped declaration) and every label that uses of the argument put there touches
  only arguments: no pattern, slice, delta or folded constant, no ``size`` declaration,
  no index target. Axes that share a label form one group, one symbol. Constants, Π
  lowerings and path shapes never see such a size, except through costs.
- **Same plan nearby.** The plan made at the call's sizes (the *hint*) must be the same
  op list as the plan made with each group's size one larger — the same primitives,
  inputs and constants, and every parameter that differs a monomial ``c · Π size^p`` of
  the groups' sizes (integer ``c`` and ``p >= 0`` for integers), found from the two plans
  and checked exactly (floats to 1e-12). Consecutive sizes share no divisor and no
  equality with another size, so a plan that depends on one of those, or on a size
  being 1, differs and is specialised. Only shapes (``reshape``, ``expand``) and scale
  factors (``scale``, ``gram``'s ``alpha``) may vary.

Where both hold, the generated code reads those sizes from its arguments
(``a0.shape[0]``) and is correct for every size of the group; it is the plan chosen by
cost at the hint, which may be suboptimal for far larger or smaller sizes. Elsewhere
the sizes are specialised (dynamo guards them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

from ..ir import Kind, Network
from .ops import Op, Plan
from .pysource import identifier

__all__ = ["Axis", "Sym", "free_groups", "parametric", "VARYING"]

Axis = tuple[int, int]  # (argument position, axis)

#: Primitives whose parameters may depend on a symbolic size, and which parameters.
VARYING = {"reshape": ("shape",), "expand": ("shape",), "scale": ("factor",), "gram": ("alpha",)}


@dataclass(frozen=True)
class Sym:
    """A parameter that is ``coeff · Π size(axis)^power`` of symbolic argument axes,
    printed as Python over the generated argument names (``3 * a0.shape[0]``)."""

    coeff: int | float
    powers: tuple[tuple[Axis, int], ...]

    def code(self) -> str:
        def size(axis: Axis) -> str:
            return f"{identifier(f'a{int(axis[0])}')}.shape[{int(axis[1])}]"

        up = [size(a) + (f" ** {int(p)}" if p > 1 else "") for a, p in self.powers if p > 0]
        down = [size(a) + (f" ** {int(-p)}" if p < -1 else "") for a, p in self.powers if p < 0]
        if isinstance(self.coeff, int):
            text = " * ".join([str(int(self.coeff))] * (self.coeff != 1 or not up) + up)
        else:
            text = " * ".join([repr(float(self.coeff))] + up)
        return f"({text}" + (f" / ({' * '.join(down)})" if down else "") + ")"


def free_groups(network: Network) -> list[tuple[Axis, ...]]:
    """The groups of argument axes whose sizes may stay symbolic (see the module doc),
    each as its axes in argument order."""
    specs = {spec.name: (position, spec) for position, spec in enumerate(network.inputs)}
    bound = {label for label, _ in network.size_table.items()}
    axes_of: dict[str, set[Axis]] = {}  # label -> the whole-leg argument axes it sits on
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is not Kind.INPUT:
                bound.update(tensor.legs)
                continue
            position, spec = specs[tensor.name]
            legs = iter(tensor.legs)
            for axis, labels in enumerate(spec.axes):
                used = [next(legs) for _ in labels]
                if len(labels) == 1:
                    axes_of.setdefault(used[0], set()).add((position, axis))
                else:
                    bound.update(used)
    bound.update(label for spec in network.inputs for label in spec.target)
    # union the axes that share a label; a group with one bound label is bound
    parent: dict[Axis, Axis] = {}

    def find(axis: Axis) -> Axis:
        while parent.setdefault(axis, axis) != axis:
            axis = parent[axis]
        return axis

    for axes in axes_of.values():
        first, *rest = sorted(axes)
        for other in rest:
            parent[find(other)] = find(first)
    groups: dict[Axis, set[Axis]] = {}
    for axes in axes_of.values():
        for member in axes:
            groups.setdefault(find(member), set()).add(member)
    blocked = {find(member) for label, axes in axes_of.items() if label in bound for member in axes}
    return sorted(tuple(sorted(axes)) for root, axes in groups.items() if root not in blocked)


def parametric(base: Plan, probes: list[tuple[Axis, int, Plan]], floats: bool) -> Plan | None:
    """``base`` with each parameter that varies between it and the probes written as a
    :class:`Sym`, or None where the plans differ otherwise (see the module doc).

    ``probes``: for each group, its representative axis, its size in ``base`` and the plan
    made with that size one larger. ``floats``: whether float parameters may vary (the
    computation is floating or complex).
    """
    if any(not _same_frame(base, plan) for _, _, plan in probes):
        return None
    ops = []
    for k, op in enumerate(base.ops):
        params = []
        for name, value in op.params:
            others = [dict(plan.ops[k].params)[name] for _, _, plan in probes]
            if all(_equal(value, other) for other in others):
                params.append((name, value))
                continue
            if name not in VARYING.get(op.prim, ()):
                return None
            fitted = _fit(value, others, [(axis, size) for axis, size, _ in probes], floats)
            if fitted is None:
                return None
            params.append((name, fitted))
        ops.append(Op(op.prim, op.inputs, op.out, tuple(params)))
    return Plan(base.name, base.args, tuple(ops), base.result, base.constants)


def _same_frame(a: Plan, b: Plan) -> bool:
    """The same ops (primitive, inputs, output, parameter names), result and constants."""
    if (a.args, a.result, len(a.ops), len(a.constants)) != (b.args, b.result, len(b.ops), len(b.constants)):
        return False
    for x, y in zip(a.ops, b.ops):
        if (x.prim, x.inputs, x.out, [n for n, _ in x.params]) != (y.prim, y.inputs, y.out, [n for n, _ in y.params]):
            return False
    return all(
        x.shape == y.shape and x.dtype == y.dtype and x.device == y.device and bool((x == y).all())
        for x, y in zip(a.constants, b.constants)
    )


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _fit(value: Any, others: list[Any], sizes: list[tuple[Axis, int]], floats: bool) -> Any:
    """``value`` (at the hint) as a monomial of the groups' sizes, leaf by leaf through
    tuples; ``others[g]`` is the same parameter with group ``g`` one larger."""
    if all(_equal(value, other) for other in others):
        return value
    if isinstance(value, tuple):
        if any(not isinstance(o, tuple) or len(o) != len(value) for o in others):
            return None
        items = [_fit(v, [o[i] for o in others], sizes, floats) for i, v in enumerate(value)]
        return None if any(item is None for item in items) else tuple(items)
    kinds = {type(value), *map(type, others)}
    if kinds == {int}:
        return _monomial(value, others, sizes, exact=True)
    if kinds <= {int, float} and floats:
        return _monomial(float(value), [float(o) for o in others], sizes, exact=False)
    return None


def _monomial(value: float, others: list[float], sizes: list[tuple[Axis, int]], exact: bool) -> Any:
    powers = []
    for other, (axis, size) in zip(others, sizes):
        power = _power(value, other, size)
        if power is None or (exact and power < 0):
            return None
        if power:
            powers.append((axis, power))
    if not powers:
        return None  # differs, yet no size explains it
    scale = math.prod(size**p for (axis, size), p in _matched(powers, sizes))
    if exact:
        if value % scale:
            return None
        coeff: int | float = int(value) // int(scale)
    else:
        coeff = value / scale
    sym = Sym(coeff, tuple(powers))
    for g, other in enumerate(others):  # check each probe exactly (floats closely)
        bumped = [(axis, size + (g == k)) for k, (axis, size) in enumerate(sizes)]
        predicted = coeff * math.prod(size**p for (axis, size), p in _matched(powers, bumped))
        if exact and predicted != other or not exact and not math.isclose(predicted, other, rel_tol=1e-12):
            return None
    return sym


def _matched(powers: list[tuple[Axis, int]], sizes: list[tuple[Axis, int]]) -> Iterator[tuple[tuple[Axis, int], int]]:
    by_axis = dict(sizes)
    for axis, power in powers:
        yield (axis, by_axis[axis]), power


def _power(value: float, other: float, size: int) -> int | None:
    """The integer ``p`` (|p| <= 3) with ``other = value · ((size + 1) / size)^p``."""
    if value == other:
        return 0
    if value == 0 or other == 0 or (value < 0) != (other < 0):
        return None
    power = round(math.log(other / value) / math.log((size + 1) / size))
    return power if power and abs(power) <= 3 else None
