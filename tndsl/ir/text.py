"""The pieces of ``.tn`` text every printer needs: labels, axes, numbers, pattern parameters.

The IR's printer (``str(network)``, :func:`tndsl.ir.network.format_network`) and the AST
printer of :mod:`tndsl.frontend.printer` are built from them, so a definition prints the
same whichever way it was made.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["format_labels", "format_axis", "format_axes", "format_number", "format_param"]


def format_labels(labels: Sequence[str]) -> str:
    """``[a, b]``: the labels of a use."""
    return "[" + ", ".join(labels) + "]"


def format_axis(labels: Sequence[str], grouped: bool) -> str:
    """One axis of an output or declaration: ``a`` or a group ``(a b)``."""
    return f"({' '.join(labels)})" if grouped else " ".join(labels)


def format_axes(axes: Sequence[tuple[Sequence[str], bool]]) -> str:
    """``[n, (c k)]`` from ``(labels, grouped)`` pairs."""
    return "[" + ", ".join(format_axis(labels, grouped) for labels, grouped in axes) + "]"


def format_number(value: int | float) -> str:
    """A number literal that parses back to the same value (integral floats as ints)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def format_param(value: int | tuple | str) -> str:
    """A pattern parameter value: ``2``, ``(1, 0)``, ``((1, 0), 2)`` or ``'same'``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(format_param(v) for v in value) + ")"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)
