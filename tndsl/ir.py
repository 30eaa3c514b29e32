"""The intermediate representation: networks of tensors joined by labelled indices.

A :class:`Term` is one product network (DESIGN's ``Network``): tensor occurrences whose legs
are labels, times a scalar :class:`Coeff`. A :class:`Network` (DESIGN's ``Sum``) is a sum of
terms with one ordered, possibly grouped output, plus what its sizes depend on: the input
declarations it uses, the patterns (Π) it uses, and declared sizes. Labels are shared across
the terms of one network: a label has one size per network. A label that occurs in the output
is kept; any other label of a term is summed within that term. An output label a term lacks
is broadcast. Everything is immutable: rewrites return new objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import networkx as nx

from .errors import Span
from .patterns import PatternSpec

__all__ = [
    "Tensor",
    "Coeff",
    "Term",
    "InputSpec",
    "Network",
    "KIND_INPUT",
    "KIND_PATTERN",
    "KIND_DELTA",
    "KIND_SLICE",
    "KIND_PATTERN_SUM",
]

KIND_INPUT = "input"
KIND_PATTERN = "pattern"
KIND_DELTA = "delta"
#: ``S[i, o] = 1`` iff ``i = start + step·o``: a strided slice (name ``slice(start, step)``);
#: made by the Π simplifications, not written in ``.tn``.
KIND_SLICE = "slice"
#: ``M[i, k] = Σ_o Π[i, o, k]``: a Π summed over its out-leg (name: the pattern's).
KIND_PATTERN_SUM = "pattern_sum"


@dataclass(frozen=True)
class Tensor:
    """One occurrence of a tensor: an input, a pattern Π ``[in, out, kernel]``, a delta, or
    (from simplifications) a slice or a summed Π."""

    kind: str
    name: str
    legs: tuple[str, ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    def renamed(self, mapping: Mapping[str, str]) -> "Tensor":
        return replace(self, legs=tuple(mapping.get(leg, leg) for leg in self.legs))


@dataclass(frozen=True)
class Coeff:
    """A scalar ``value * prod(|label| ** power)``; powers may be negative (``/ |n|``)."""

    value: float = 1.0
    sizes: tuple[tuple[str, int], ...] = ()

    def __mul__(self, other: "Coeff") -> "Coeff":
        powers = dict(self.sizes)
        for label, power in other.sizes:
            powers[label] = powers.get(label, 0) + power
        return Coeff(self.value * other.value, _sorted_powers(powers))

    def __neg__(self) -> "Coeff":
        return Coeff(-self.value, self.sizes)

    def inverse(self) -> "Coeff":
        return Coeff(1.0 / self.value, tuple((label, -power) for label, power in self.sizes))

    def renamed(self, mapping: Mapping[str, str]) -> "Coeff":
        powers: dict[str, int] = {}
        for label, power in self.sizes:
            new = mapping.get(label, label)
            powers[new] = powers.get(new, 0) + power
        return Coeff(self.value, _sorted_powers(powers))

    def evaluate(self, sizes: Mapping[str, int]) -> float:
        return self.value * math.prod(float(sizes[label]) ** power for label, power in self.sizes)

    @property
    def is_one(self) -> bool:
        return self.value == 1.0 and not self.sizes


def _sorted_powers(powers: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((label, power) for label, power in powers.items() if power != 0))


@dataclass(frozen=True)
class Term:
    """A product network: ``coeff * prod(tensors)``, summed over non-output labels."""

    tensors: tuple[Tensor, ...]
    coeff: Coeff = Coeff()

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels of the term's legs, in order of first appearance."""
        return tuple(dict.fromkeys(leg for tensor in self.tensors for leg in tensor.legs))

    def renamed(self, mapping: Mapping[str, str]) -> "Term":
        return Term(tuple(t.renamed(mapping) for t in self.tensors), self.coeff.renamed(mapping))


@dataclass(frozen=True)
class InputSpec:
    """A declared input: its name and axes, each axis a tuple of (split) leg labels."""

    name: str
    axes: tuple[tuple[str, ...], ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def legs(self) -> tuple[str, ...]:
        return tuple(label for axis in self.axes for label in axis)


@dataclass(frozen=True)
class Network:
    """A named sum of terms with one output (DESIGN's ``Sum``).

    ``output`` is a tuple of groups; each group is a tuple of labels flattened row-major
    into one axis. ``inputs`` are the arguments, in declaration order. ``sizes`` maps a
    label to a fixed size (int) or to the name of a keyword argument (str).
    """

    name: str
    output: tuple[tuple[str, ...], ...]
    terms: tuple[Term, ...]
    inputs: tuple[InputSpec, ...] = ()
    patterns: tuple[tuple[str, PatternSpec], ...] = ()
    sizes: tuple[tuple[str, int | str], ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def output_legs(self) -> tuple[str, ...]:
        return tuple(label for group in self.output for label in group)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label of the network: output first, then the terms' in order."""
        found = dict.fromkeys(self.output_legs)
        for term in self.terms:
            found.update(dict.fromkeys(term.labels))
            found.update(dict.fromkeys(label for label, _ in term.coeff.sizes))
        return tuple(found)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def pattern(self, name: str) -> PatternSpec:
        return dict(self.patterns)[name]

    @property
    def size_table(self) -> dict[str, int | str]:
        return dict(self.sizes)

    def with_terms(self, terms: Iterable[Term]) -> "Network":
        return replace(self, terms=tuple(terms))

    def svg(self) -> str:
        """The network's diagram as SVG text (needs Graphviz's ``dot``)."""
        from .render import render

        return render(self)

    def _repr_svg_(self) -> str | None:
        from .errors import TnNotSupportedError

        try:
            return self.svg()
        except TnNotSupportedError:
            return None

    def graph(self, term: int = 0) -> nx.MultiGraph:
        """The bipartite tensor/index graph of one term (nodes ``("t", i)`` and ``("i", label)``).

        Tensor nodes carry ``kind``, ``name``; index nodes carry ``open`` (an output leg);
        edges carry the ``axis`` position. Used for rendering, isomorphism and hashing.
        """
        graph = nx.MultiGraph()
        open_legs = set(self.output_legs)
        for position, tensor in enumerate(self.terms[term].tensors):
            graph.add_node(("t", position), kind=tensor.kind, name=tensor.name)
            for axis, leg in enumerate(tensor.legs):
                graph.add_node(("i", leg), open=leg in open_legs)
                graph.add_edge(("t", position), ("i", leg), axis=axis)
        for leg in self.output_legs:
            graph.add_node(("i", leg), open=True)
        return graph
