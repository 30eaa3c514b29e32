"""Everything a program declares, by name: inputs, sizes, patterns and definitions."""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Sequence, Union

from ..ir import DuplicateLabel, Family, InputSpec, Span
from . import ast

__all__ = ["Declarations", "DELTA", "ParamValue", "check_unique"]

#: A program parameter's value: an int, a string, or a tuple of ints and pairs.
ParamValue = Union[int, str, tuple]

DELTA = "delta"


@dataclass
class Declarations:
    """Everything declared in a program, by name, in declaration order."""

    inputs: dict[str, InputSpec] = field(default_factory=dict)
    sizes: dict[str, int | None] = field(default_factory=dict)
    params: dict[str, ParamValue] = field(default_factory=dict)  # name -> bound value (default or binding)
    patterns: dict[str, Family] = field(default_factory=dict)
    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    spans: dict[str, Span | None] = field(default_factory=dict)
    vmapped: dict[str, str] = field(default_factory=dict)  # input made by vmap -> the input it batches

    def declares(self, name: str) -> bool:
        """Whether ``name`` is an input, a pattern, a definition or the built-in delta."""
        return name in self.inputs or name in self.patterns or name in self.definitions or name == DELTA

    def declared_size(self, label: str) -> int | str | None:
        """A ``size`` declaration's entry for a size table: the int, or the keyword name."""
        if label not in self.sizes:
            return None
        value = self.sizes[label]
        return label if value is None else value

    def add_vmapped(self, x: str, leg: str) -> str:
        """The input of X mapped over ``leg``, declared right after X (created once)."""
        spec = self.inputs[x]
        axes = ((leg,),) + spec.axes
        base = f"{x}_{leg}"
        candidate, n = base, 1
        while self.declares(candidate):
            existing = self.inputs.get(candidate)
            if existing is not None and existing.axes == axes and self.vmapped.get(candidate) == x:
                return candidate
            n += 1
            candidate = f"{base}_{n}"
        items = list(self.inputs.items())
        index = [name for name, _ in items].index(x)
        items.insert(index + 1, (candidate, InputSpec(candidate, axes, spec.span)))
        self.inputs = dict(items)
        self.vmapped[candidate] = x
        return candidate


def check_unique(labels: Sequence[ast.Label], where: str) -> None:
    """Raise :class:`DuplicateLabel` at the second of two equal labels."""
    seen: set[str] = set()
    for label in labels:
        if label.name in seen:
            raise DuplicateLabel(label.name, where, label.span)
        seen.add(label.name)
