"""The compiler's limits: how large a program may grow before it is refused with an error.

Each limit guards a runaway — an expansion into millions of terms, nesting that no one
writes by hand, a literal with thousands of digits — and each is reported as a
:class:`~tndsl.ir.LimitExceeded` error that names the limit, points at the culprit and
says how to raise it:

- ``tndsl.compile(text, limits=tndsl.Limits(max_terms=100_000))`` (also ``load``,
  ``parse``, ``derive_text``), or
- the environment variable ``TNDSL_MAX_TERMS=100000`` (one per field, upper case), read
  whenever no ``limits`` are given — the way to raise a limit for the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from ..ir import LimitExceeded, Span, TnError

__all__ = ["Limits", "resolve", "MAX_SIZE"]

#: The largest size of a leg: torch's sizes are int64.
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """Upper bounds on one program; every field is a positive integer.

    - ``max_terms``: product terms of one definition after distributing products over
      sums and applying the product rule of derived forms;
    - ``max_depth``: nesting of parentheses and unary minus signs in one expression
      (counted as the canonical printer writes them; ``a + b + c`` does not nest);
    - ``max_labels``: distinct labels of one definition, fresh ones from inlining included;
    - ``max_digits``: digits of one number literal.
    """

    max_terms: int = 4096
    max_depth: int = 200
    max_labels: int = 4096
    max_digits: int = 100

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TnError(f"limit {item.name} must be a positive integer, not {value!r}")

    @staticmethod
    def from_env() -> "Limits":
        """The defaults, each replaced by its ``TNDSL_<FIELD>`` environment variable if set."""
        values = {}
        for item in fields(Limits):
            variable = f"TNDSL_{item.name.upper()}"
            text = os.environ.get(variable)
            if text is not None:
                if not text.strip().isdigit():
                    raise TnError(f"environment variable {variable} must be a positive integer, not {text!r}")
                values[item.name] = int(text)
        return Limits(**values)

    def check(self, name: str, value: int, what: str, span: Span | None) -> None:
        """Raise :class:`LimitExceeded` if ``value`` is over the limit ``name``."""
        maximum = getattr(self, name)
        if value > maximum:
            raise LimitExceeded(what, value, name, maximum, span)


def resolve(limits: Limits | None) -> Limits:
    """``limits``, or the defaults with the environment's overrides."""
    return Limits.from_env() if limits is None else limits
