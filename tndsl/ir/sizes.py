"""The size table: what a network knows about its labels' sizes before any call.

A label's entry is a fixed size (``int``, from ``size k = 3`` or a simplification that
used concrete sizes) or the name of a keyword argument (``str``, from ``size k``).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Union

__all__ = ["Size", "SizeTable"]

Size = Union[int, str]


class SizeTable:
    """A mutable label → :data:`Size` table with one merge rule: a fixed size beats a
    keyword, and the first fixed size stays (conflicts are the solver's to report)."""

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
        if old is None or (isinstance(size, int) and not isinstance(old, int)):
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
        return tuple(sorted(self._table.items()))

    def keywords(self) -> tuple[str, ...]:
        """Keyword names, in label order, without repeats."""
        return tuple(dict.fromkeys(size for _, size in self.items() if isinstance(size, str)))
