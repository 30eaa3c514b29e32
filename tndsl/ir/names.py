"""Fresh label names: the one generator every layer uses."""

from __future__ import annotations

from typing import Iterable

__all__ = ["FreshNames"]


class FreshNames:
    """Names ``base_1``, ``base_2``, … not used before (valid identifiers, for printing).

    ``base`` is cut at its first underscore, so renaming a fresh name again stays short.
    """

    def __init__(self, used: Iterable[str] = ()):
        self.used = set(used)

    def reserve(self, names: Iterable[str]) -> None:
        self.used.update(names)

    def __call__(self, base: str) -> str:
        base = base.split("_")[0] or "x"
        n = 1
        while f"{base}_{n}" in self.used:
            n += 1
        name = f"{base}_{n}"
        self.used.add(name)
        return name
