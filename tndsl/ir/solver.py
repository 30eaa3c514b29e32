"""Size inference: one propagation engine for static checks and for call time.

Constraints come from a network: argument axes (a product of split legs equals the axis),
declared sizes, keyword sizes, patterns (the Π size rules) and deltas (all legs equal).
They are propagated to a fixed point. Statically, argument axes are only *known*
(:data:`KNOWN`), so the same rules tell which sizes can never be inferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from .errors import CannotInferSize, Span, TnCallError, TnSizeError
from .kinds import Kind
from .network import Network
from .sizes import ShapeOf

__all__ = ["KNOWN", "solve", "sizes_of", "check_inferable", "ambiguous", "SizeConflict"]


class _Known:
    """A size that will be known at call time (static mode)."""

    def __repr__(self) -> str:
        return "KNOWN"


KNOWN = _Known()
Value = int | _Known


class SizeConflict(Exception):
    """Raised inside the solver; turned into a positioned TnError by :func:`solve`."""


@dataclass
class _State:
    values: dict[str, Value]
    sources: dict[str, str]

    def get(self, label: str) -> Value | None:
        return self.values.get(label)

    def set(self, label: str, value: Value, source: str, empty: bool = False) -> bool:
        """Record ``label = value``; True if it is new; raise on a conflict. Only an
        argument's axis (``empty``) may give size 0 (an empty batch)."""
        old = self.values.get(label)
        if old is None:
            if isinstance(value, int) and value < (0 if empty else 1):
                raise SizeConflict(f"leg '{label}' would have size {value} ({source}); sizes must be at least 1")
            self.values[label] = value
            self.sources[label] = source
            return True
        if isinstance(old, int) and isinstance(value, int) and old != value:
            raise SizeConflict(
                f"size mismatch for leg '{label}': {source} gives {value}, but {self.sources[label]} gives {old}"
            )
        if isinstance(old, _Known) and isinstance(value, int):
            self.values[label] = value
            self.sources[label] = source
            return True
        return False


def _combine(*values: Value) -> bool:
    return all(isinstance(v, int) for v in values)


def sizes_of(values: Mapping[str, Value]) -> dict[str, int]:
    """A call-time solution (argument shapes given) as plain ints: every size is known."""
    sizes = {label: value for label, value in values.items() if isinstance(value, int)}
    if len(sizes) != len(values):
        raise ValueError(f"sizes not known yet: {', '.join(sorted(set(values) - set(sizes)))}")
    return sizes


def solve(
    network: Network,
    shapes: Sequence[Sequence[int]] | None,
    keywords: Mapping[str, int] | None = None,
    strict: bool = False,
    use_keywords: bool = True,
) -> tuple[dict[str, Value], list[str]]:
    """Infer every label's size; return (sizes, labels left unknown).

    ``shapes`` are the argument shapes in ``network.inputs`` order, or None for the static
    check (then keyword sizes and argument axes are :data:`KNOWN`). With ``strict``, a
    strided Π never gives its input size from its output size (several input sizes share
    one output size there). Without ``use_keywords``, keyword sizes count as unknown (to
    tell which keywords a function needs). Conflicts raise :class:`TnCallError` (call
    time) or :class:`TnSizeError` (static) at the network's span.
    """
    try:
        return _solve(network, shapes, keywords, strict, use_keywords)
    except SizeConflict as conflict:
        error = TnCallError if shapes is not None else TnSizeError
        raise error(f"in '{network.name}': {conflict}", network.span) from None


def check_inferable(
    network: Network, span: Span | None = None, spans: Mapping[str, Span | None] | None = None, reason: str = ""
) -> Network:
    """Return ``network`` if every leg size can be inferred at call time; else raise
    :class:`CannotInferSize` for one unknown leg (a Π kernel leg first, the usual culprit)."""
    _, unknown = solve(network, None)
    if not unknown:
        return network
    kernels = {t.legs[2] for term in network.terms for t in term.tensors if t.kind is Kind.PATTERN}
    label = min(unknown, key=lambda leg: leg not in kernels)
    raise CannotInferSize(label, network.name, (spans or {}).get(label) or span or network.span, reason)


def ambiguous(network: Network, labels: Sequence[str]) -> list[str]:
    """The ``labels`` whose sizes only a strided Π's transpose rule gives: a guess."""
    _, exact = solve(network, None, strict=True)
    _, guessed = solve(network, None)
    return [label for label in labels if label in exact and label not in guessed]


def _solve(network, shapes, keywords, strict=False, use_keywords=True):
    state = _State({}, {})
    rules = []
    guesses = [False]  # whether strided transpose rules may run yet
    for label, size in network.sizes:
        if isinstance(size, int):
            state.set(label, size, f"'size {label} = {size}'")
        elif isinstance(size, ShapeOf):
            link = _use_of(network, size)
            if link is not None:
                rules.append(_delta_rule((label, link)))
        elif not use_keywords:
            continue
        elif shapes is None:
            state.set(label, KNOWN, f"keyword size '{size}'")
        elif keywords is not None and size in keywords:
            state.set(label, int(keywords[size]), f"keyword argument {size}={keywords[size]}")
    shape_of = {spec.name: (spec, shapes[i] if shapes is not None else None) for i, spec in enumerate(network.inputs)}
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind.argument:  # an index's target legs follow its axes, sized elsewhere
                spec, shape = shape_of[tensor.name]
                start = 0
                for axis_index, axis in enumerate(spec.axes):
                    legs = tensor.legs[start : start + len(axis)]
                    start += len(axis)
                    dim: Value = KNOWN if shape is None else int(shape[axis_index])
                    rules.append(_axis_rule(tensor.name, axis_index, axis, legs, dim))
            elif tensor.kind is Kind.PATTERN:
                rules.append(_pattern_rule(tensor.name, network.spec_of(tensor), *tensor.legs, guesses=guesses))
            elif tensor.kind is Kind.DELTA and len(tensor.legs) > 1:
                rules.append(_delta_rule(tensor.legs))
    # first every exact rule; only then, for what is still unknown, a strided Π's
    # transpose rule (its smallest input size: the guess a user declares with output_padding)
    has_patterns = any(t.kind is Kind.PATTERN for term in network.terms for t in term.tensors)
    for allowed in (False,) if strict or not has_patterns else (False, True):
        guesses[0] = allowed
        changed = True
        while changed:
            changed = False
            for rule in rules:
                changed |= rule(state)
    unknown = [label for label in network.labels if state.get(label) is None]
    return state.values, unknown


def _axis_rule(name: str, axis_index: int, declared: tuple[str, ...], legs: tuple[str, ...], dim: Value):
    where = f"axis {axis_index} of {name}"
    if len(legs) == 1:
        source = f"{where} (leg {declared[0]})"
        return lambda state: state.set(legs[0], dim, source, empty=True)

    def rule(state: _State) -> bool:
        values = [state.get(leg) for leg in legs]
        missing = [i for i, v in enumerate(values) if v is None]
        ints = [v for v in values if isinstance(v, int)]
        if not missing and isinstance(dim, int) and len(ints) == len(values) and math.prod(ints) != dim:
            sizes = " × ".join(f"{leg}={v}" for leg, v in zip(legs, values))
            raise SizeConflict(f"{where} has size {dim}, but its legs ({' '.join(declared)}) give {sizes}")
        if len(missing) != 1:
            return False
        known = [v for v in values if v is not None]
        known_ints = [v for v in known if isinstance(v, int)]
        leg = legs[missing[0]]
        if isinstance(dim, int) and len(known_ints) == len(known):
            rest = math.prod(known_ints)
            if rest == 0 or dim % rest:
                raise SizeConflict(f"{where} has size {dim}, which the other legs of ({' '.join(declared)}) (product {rest}) do not divide")
            return state.set(leg, dim // rest, f"{where} split as ({' '.join(declared)})", empty=True)
        return state.set(leg, KNOWN, f"{where} split as ({' '.join(declared)})")

    return rule


def _use_of(network: Network, shape: ShapeOf) -> str | None:
    """The label at ``shape.position`` of some use of input ``shape.input`` (an argument)."""
    if shape.input not in {spec.name for spec in network.inputs}:
        return None
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is Kind.INPUT and tensor.name == shape.input:
                return tensor.legs[shape.position]
    return None


def _pattern_rule(name: str, spec, i: str, o: str, k: str, guesses: list[bool]):
    def rule(state: _State) -> bool:
        vi, vo, vk = state.get(i), state.get(o), state.get(k)
        changed = False
        if vi is not None and vk is not None:
            if _combine(vi, vk):
                out = spec.out_size(vi, vk)
                if out < 1:
                    raise SizeConflict(
                        f"pattern {name} has an empty output: input size {i}={vi} with kernel {k}={vk} "
                        f"and {spec.describe()} gives {out} output positions"
                    )
                changed |= state.set(o, out, f"pattern {name} ({i}={vi}, {k}={vk})")
            else:
                changed |= state.set(o, KNOWN, f"pattern {name}")
        elif vo is not None and vk is not None and (spec.stride == 1 or guesses[0]):
            if _combine(vo, vk):
                size = spec.in_size(vo, vk)
                changed |= state.set(i, size, f"pattern {name} transposed ({o}={vo}, {k}={vk})")
            else:
                changed |= state.set(i, KNOWN, f"pattern {name}")
        elif vi is not None and vo is not None and spec.kernel_inferable:
            if _combine(vi, vo):
                kernel = spec.kernel_size(vi, vo)
                if kernel is None:
                    raise SizeConflict(f"no kernel size fits pattern {name} with {i}={vi} and {o}={vo}")
                changed |= state.set(k, kernel, f"pattern {name} ({i}={vi}, {o}={vo})")
            else:
                changed |= state.set(k, KNOWN, f"pattern {name}")
        return changed

    return rule


def _delta_rule(legs: tuple[str, ...]):
    def rule(state: _State) -> bool:
        for leg in legs:
            value = state.get(leg)
            if value is not None:
                changed = False
                for other in legs:
                    changed |= state.set(other, value, f"delta leg {leg}", empty=True)
                return changed
        return False

    return rule

