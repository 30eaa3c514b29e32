"""The intermediate representation: networks of tensors joined by labelled indices.

Vocabulary (docs/design.md): a :class:`Term` is one product of tensor occurrences times a
scalar :class:`Coeff` (docs/design.md: "term"); a :class:`Network` is what a definition means:
a sum of terms with one ordered, possibly grouped output (docs/design.md: "network"), plus what its
sizes depend on — the input declarations it uses, its patterns (Π) and its size table.
Labels are shared across the terms of one network (one size per label); a label in the
output is kept, any other label of a term is summed within that term, and an output label
a term lacks is broadcast. Everything is immutable: rewrites return new objects.

``str(network)`` is the network as one ``.tn`` definition (:mod:`tndsl.ir.text`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

from .errors import Span
from .kinds import Kind, Slice
from .patterns import Family, PatternSpec
from .sizes import Size, SizeTable
from .text import format_axes, format_labels, format_number

__all__ = ["Kind", "Slice", "Tensor", "Coeff", "Term", "InputSpec", "Network"]


@dataclass(frozen=True)
class Tensor:
    """One occurrence of a tensor: its kind, name, legs and typed parameters.

    ``name`` is the input's or pattern's name (``delta`` for deltas, ``slice`` for slices);
    ``slice`` holds a slice's start and step, ``dim`` which dimension of a per-dimension
    pattern a Π is.
    """

    kind: Kind
    name: str
    legs: tuple[str, ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    slice: Slice | None = field(default=None, kw_only=True)
    dim: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))  # also accepts the kind's name
        object.__setattr__(self, "legs", tuple(self.legs))
        if (self.kind is Kind.SLICE) != (self.slice is not None):
            raise ValueError("a slice tensor, and only a slice tensor, carries slice parameters")

    def renamed(self, mapping: Mapping[str, str]) -> "Tensor":
        return replace(self, legs=tuple(mapping.get(leg, leg) for leg in self.legs))


@dataclass(frozen=True)
class Coeff:
    """A scalar ``value · Π |label| ** power``; powers may be negative (``/ |n|``)."""

    value: float = 1.0
    powers: tuple[tuple[str, int], ...] = ()

    def __mul__(self, other: "Coeff") -> "Coeff":
        powers = dict(self.powers)
        for label, power in other.powers:
            powers[label] = powers.get(label, 0) + power
        return Coeff(self.value * other.value, _sorted_powers(powers))

    def __neg__(self) -> "Coeff":
        return Coeff(-self.value, self.powers)

    def inverse(self) -> "Coeff":
        return Coeff(1.0 / self.value, tuple((label, -power) for label, power in self.powers))

    def renamed(self, mapping: Mapping[str, str]) -> "Coeff":
        powers: dict[str, int] = {}
        for label, power in self.powers:
            new = mapping.get(label, label)
            powers[new] = powers.get(new, 0) + power
        return Coeff(self.value, _sorted_powers(powers))

    def without(self, labels: Iterable[str]) -> "Coeff":
        """The coefficient with the powers of ``labels`` dropped (labels of size 1)."""
        drop = set(labels)
        return Coeff(self.value, tuple((label, p) for label, p in self.powers if label not in drop))

    def substitute(self, label: str, size: int) -> "Coeff":
        """The coefficient with ``|label|`` replaced by the number ``size``."""
        power = dict(self.powers).get(label, 0)
        return Coeff(self.value * float(size) ** power, tuple(p for p in self.powers if p[0] != label))

    def mentions(self, label: str) -> bool:
        return any(name == label for name, _ in self.powers)

    def evaluate(self, sizes: Mapping[str, int]) -> float:
        """The number for these sizes; dividing by an empty leg's size gives ``inf`` (so an
        average over an empty batch is ``nan``, as ``torch.mean`` gives)."""
        return self.value * math.prod(_power(float(sizes[label]), power) for label, power in self.powers)

    @property
    def is_one(self) -> bool:
        return self.value == 1.0 and not self.powers


def _power(size: float, power: int) -> float:
    return math.inf if size == 0 and power < 0 else size**power


def _sorted_powers(powers: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((label, power) for label, power in powers.items() if power != 0))


@dataclass(frozen=True)
class Term:
    """A product: ``coeff · Π tensors``, summed over its labels that are not output legs."""

    tensors: tuple[Tensor, ...]
    coeff: Coeff = Coeff()

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels of the term's legs, in order of first appearance."""
        return tuple(dict.fromkeys(leg for tensor in self.tensors for leg in tensor.legs))

    def renamed(self, mapping: Mapping[str, str]) -> "Term":
        return Term(tuple(t.renamed(mapping) for t in self.tensors), self.coeff.renamed(mapping))

    def replaced(self, index: int, new: Sequence[Tensor]) -> "Term":
        """The term with tensor ``index`` replaced by ``new`` (any number of tensors)."""
        return Term(self.tensors[:index] + tuple(new) + self.tensors[index + 1 :], self.coeff)


@dataclass(frozen=True)
class InputSpec:
    """A declared input: its name and axes, each axis a tuple of (split) leg labels.

    An index input (``index J[s -> t]``) also has ``target`` legs: its argument holds
    integers, and as a tensor it is the one-hot selection ``J[s, t] = 1 iff arg[s] = t``.
    """

    name: str
    axes: tuple[tuple[str, ...], ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    target: tuple[str, ...] = field(default=(), kw_only=True)

    @property
    def legs(self) -> tuple[str, ...]:
        """The legs of the argument's axes (an index input's uses add the target legs)."""
        return tuple(label for axis in self.axes for label in axis)

    @property
    def kind(self) -> Kind:
        return Kind.INDEX if self.target else Kind.INPUT


@dataclass(frozen=True)
class Network:
    """A named sum of terms with one output (a definition's meaning).

    ``output`` is a tuple of groups; each group is a tuple of labels flattened row-major
    into one axis. ``inputs`` are the arguments, in declaration order. ``sizes`` is the
    size table as sorted pairs: a label's fixed size (int) or keyword name (str).
    """

    name: str
    output: tuple[tuple[str, ...], ...]
    terms: tuple[Term, ...]
    inputs: tuple[InputSpec, ...] = ()
    patterns: tuple[tuple[str, Family], ...] = ()
    sizes: tuple[tuple[str, Size], ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return format_network(self)

    @property
    def output_legs(self) -> tuple[str, ...]:
        return tuple(label for group in self.output for label in group)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label of the network: output first, then the terms' in order."""
        found = dict.fromkeys(self.output_legs)
        for term in self.terms:
            found.update(dict.fromkeys(term.labels))
            found.update(dict.fromkeys(label for label, _ in term.coeff.powers))
        return tuple(found)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def pattern(self, name: str, dim: int | None = None) -> PatternSpec:
        """The spec of pattern ``name`` (dimension ``dim`` of a per-dimension one)."""
        found = dict(self.patterns)[name]
        return found[dim or 0] if isinstance(found, tuple) else found

    def spec_of(self, tensor: Tensor) -> PatternSpec:
        """The spec of a Π or summed-Π occurrence."""
        return self.pattern(tensor.name, tensor.dim)

    @property
    def size_table(self) -> SizeTable:
        return SizeTable(self.sizes)

    def with_sizes(self, table: SizeTable) -> "Network":
        return replace(self, sizes=table.items())

    def uses(self, kind: Kind, name: str) -> bool:
        """Whether some term holds a tensor of this kind and name."""
        return any(t.kind is kind and t.name == name for term in self.terms for t in term.tensors)

    def pruned(
        self,
        inputs: Iterable[InputSpec] | None = None,
        patterns: Iterable[tuple[str, Family]] | None = None,
        order: Sequence[str] | None = None,
    ) -> "Network":
        """The network with only the declarations its terms use — the one such walk.

        ``inputs`` and ``patterns`` are the candidates (default: the network's own); the
        first candidate of each name wins. Inputs keep their candidate order, or follow
        ``order`` (names; unknown names last) when given. A pattern counts as used by a
        Π and by a summed Π alike.
        """
        used_inputs = {t.name for term in self.terms for t in term.tensors if t.kind.argument}
        used_patterns = {t.name for term in self.terms for t in term.tensors if t.kind.uses_pattern}
        specs: dict[str, InputSpec] = {}
        for spec in self.inputs if inputs is None else inputs:
            if spec.name in used_inputs:
                specs.setdefault(spec.name, spec)
        kept = list(specs.values())
        if order is not None:
            rank = {name: i for i, name in enumerate(order)}
            kept.sort(key=lambda s: rank.get(s.name, len(rank)))
        found: dict[str, Family] = {}
        for name, pattern in self.patterns if patterns is None else patterns:
            if name in used_patterns:
                found.setdefault(name, pattern)
        return replace(self, inputs=tuple(kept), patterns=tuple(found.items()))


# -- the printer: str(network) ------------------------------------------------------------


def _term_text(term: Term, output: Sequence[str]) -> tuple[str, bool]:
    """A term's product text (magnitude only) and whether it is a single atom."""
    factors: list[str] = []
    magnitude = abs(term.coeff.value)
    if magnitude != 1.0:
        factors.append(format_number(magnitude))
    denominator: list[str] = []
    for label, power in term.coeff.powers:
        (factors if power > 0 else denominator).extend([f"|{label}|"] * abs(power))
    present: set[str] = set()
    for tensor in term.tensors:
        name = "slice" if tensor.kind is Kind.SLICE else tensor.name  # (slices are never printed back)
        factors.append(name + ("" if tensor.dim is None else f".{tensor.dim}") + format_labels(tensor.legs))
        present.update(tensor.legs)
    for leg in dict.fromkeys(output):
        if leg not in present:  # a broadcast leg: a one-leg delta is a vector of ones
            factors.append(f"delta[{leg}]")
    if not factors:
        factors.append("1")
    text = " * ".join(factors) + "".join(f" / {d}" for d in denominator)
    return text, len(factors) == 1 and not denominator


def _names(term: Term) -> set[str]:
    """What a term contributes to a definition's meaning besides its value: its inputs
    (arguments of the function) and its labels (sizes)."""
    found = {f"input {t.name}" for t in term.tensors if t.kind is Kind.INPUT}
    return found | set(term.labels) | {label for label, _ in term.coeff.powers}


def _printed_terms(network: Network) -> list[Term]:
    """Every nonzero term, and each zero term that alone uses an input or a label, so that
    the printed definition keeps the network's arguments and sizes (``0 * C[a]``, not
    ``0 * delta[a]``, whose size nothing fixes)."""
    keep = [term.coeff.value != 0 for term in network.terms]
    covered = set().union(*(_names(t) for t, k in zip(network.terms, keep) if k))
    for index, term in enumerate(network.terms):
        if not keep[index] and (not _names(term) <= covered or not any(keep)):
            keep[index] = True
            covered |= _names(term)
    return [term for term, k in zip(network.terms, keep) if k]


def format_network(network: Network, name: str | None = None) -> str:
    """The network as one ``.tn`` definition: ``NAME[out] = term + term ...``."""
    output = network.output_legs
    expr = ""
    for term in _printed_terms(network):
        text, atom = _term_text(term, output)
        negative = term.coeff.value < 0
        if not expr:
            expr = ("-" + (text if atom else f"({text})")) if negative else text
        else:
            expr += (" - " if negative else " + ") + text
    if not expr:  # no terms at all: zero, broadcast along every output leg
        expr = " * ".join(["0"] + [f"delta[{leg}]" for leg in dict.fromkeys(output)])
    axes = format_axes([(group, len(group) > 1) for group in network.output])
    return f"{name or network.name}{axes} = {expr}"

