"""The only two ways text reaches generated Python source: a literal or a checked identifier.

Injection cannot happen by construction:

- :func:`literal` is the one function that turns a string into source text: the ``repr``
  of a ``str``, a complete literal, never spliced into another string or docstring;
- :func:`identifier` checks a name (``str.isidentifier``, ASCII, not a keyword) before it
  is written as a name;
- :class:`Namespace` gives user-derived names distinct identifiers, deterministically:
  a name that is usable as it is keeps it; the others get a prefix (``tn_``) and, on a
  clash, a suffix ``_2``, ``_3``, … Names beginning with ``_`` are kept for the generated
  module's own globals, so a user name never shadows them.
"""

from __future__ import annotations

import keyword
from typing import Iterable

__all__ = ["literal", "identifier", "is_identifier", "Namespace"]


def literal(value: str) -> str:
    """A Python string literal whose value is ``value``."""
    if not isinstance(value, str):
        raise TypeError(f"literal() takes a str, not {type(value).__name__}")
    return repr(value)


def is_identifier(name: object) -> bool:
    """Whether ``name`` can be written as a Python name: ASCII, an identifier, no keyword."""
    return (
        isinstance(name, str)
        and name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
    )


def identifier(name: str) -> str:
    """``name`` itself, after checking it is a valid identifier (else ``ValueError``)."""
    if not is_identifier(name):
        raise ValueError(f"not a valid generated identifier: {name!r}")
    return name


def _public(name: str) -> bool:
    return is_identifier(name) and not name.startswith("_")


class Namespace:
    """Distinct public identifiers for user names, assigned deterministically.

    :meth:`assign` takes all names of one namespace at once: names usable as they are keep
    them (first come, first served), then every other name gets ``prefix`` + the name
    (leading underscores dropped; ``prefix`` + ``x`` if that is still no identifier) and a
    suffix ``_2``, ``_3``, … until it is free.
    """

    def __init__(self, reserved: Iterable[str] = ()):
        self.taken: set[str] = set(reserved)

    def assign(self, names: Iterable[str], prefix: str = "tn_") -> dict[str, str]:
        """``{name: identifier}`` for ``names`` (in order), all distinct and not reserved."""
        names = list(dict.fromkeys(names))
        result: dict[str, str] = {}
        for name in names:
            if _public(name) and name not in self.taken:
                result[name] = name
                self.taken.add(name)
        for name in names:
            if name not in result:
                result[name] = self._fresh(name, prefix)
        return {name: result[name] for name in names}

    def _fresh(self, name: str, prefix: str) -> str:
        base = prefix + name.lstrip("_")
        if not _public(base):
            base = prefix + "x"
        candidate, n = base, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return identifier(candidate)
