"""The size table: what a network knows about its labels' sizes before any call.

A label's entry is a fixed size (``int``, from ``size k = 3`` or a simplification that
used concrete sizes), the name of a keyword argument (``str``, from ``size k``), or
:class:`ShapeOf` — the size of a leg of one of the network's inputs (a derivative's legs
are the removed input's legs, whatever a strided pattern would guess).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Union

__all__ = ["Size", "SizeTable", "ShapeOf"]


@dataclass(frozen=True)
class ShapeOf:
    """The size of the leg at flat position ``position`` of input ``input``'s declaration."""

    input: str
    position: int

    def __lt__(self, other: object) -> bool:  # sortable next to ints and strs in tables
        return (self.input, self.position) < (other.input, other.position) if isinstance(other, ShapeOf) else False


Size = Union[int, str, ShapeOf]

_RANK = {int: 0, str: 1, ShapeOf: 2}  # which entry wins when two sources name one label


class SizeTable:
    """A mutable label → :data:`Size` table with one merge rule: a fixed size beats a
    keyword (a declaration the user wrote), which beats an input's leg; the first of a
    kind stays (conflicts are the solver's to report)."""

    def __init__(self, *tables: Iterable[tuple[str, Size]] | Mapping[str, Size]):
        self._table: dict[str, Size] = {}
        for table in tables:
            self.merge(table)

    def merge(self, table: Iterable[tuple[str, Size]] | Mapping[str, Size]) -> "SizeTable":
        pairs = table.items() if isinstance(table, Mapping) else table
        for label, size in pairs:
            self.add(label, size)
        return self

    def add(self, label: str, size: Size | None) -> None:
        if size is None:
            return
        old = self._table.get(label)
        if old is None or _RANK[type(size)] < _RANK[type(old)]:
            self._table[label] = size

    def set(self, label: str, size: Size | None) -> None:
        """Replace (or with None, remove) ``label`` 's entry."""
        if size is None:
            self._table.pop(label, None)
        else:
            self._table[label] = size

    def copy(self, source: str, target: str) -> None:
        """Give ``target`` the entry of ``source`` (a renamed label keeps its size)."""
        self.add(target, self._table.get(source))

    def get(self, label: str) -> Size | None:
        return self._table.get(label)

    def __contains__(self, label: object) -> bool:
        return label in self._table

    def items(self) -> tuple[tuple[str, Size], ...]:
        """The entries as sorted pairs (the form a :class:`~tndsl.ir.Network` stores)."""
        return tuple(sorted(self._table.items(), key=lambda item: item[0]))

    def keywords(self) -> tuple[str, ...]:
        """Keyword names, in label order, without repeats."""
        return tuple(dict.fromkeys(size for _, size in self.items() if isinstance(size, str)))
