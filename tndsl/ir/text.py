"""Networks as ``.tn`` text: the IR's printer (``str(network)``).

The pieces every printer needs (labels, axes, numbers, pattern parameters) live here too;
the AST printer of :mod:`tndsl.frontend.printer` is built from them, so a definition prints
the same whichever way it was made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .kinds import Kind

if TYPE_CHECKING:
    from .network import Coeff, Network, Term

__all__ = ["format_network", "format_labels", "format_axis", "format_axes", "format_number", "format_param"]


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


def format_param(value: int | tuple[int, ...] | str) -> str:
    """A pattern parameter value: ``2``, ``(1, 0)`` or ``'same'``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _term(term: Term, output: Sequence[str]) -> tuple[str, bool]:
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
        name = "slice" if tensor.kind is Kind.SLICE else tensor.name
        factors.append(name + format_labels(tensor.legs))
        present.update(tensor.legs)
    for leg in dict.fromkeys(output):
        if leg not in present:  # a broadcast leg: a one-leg delta is a vector of ones
            factors.append(f"delta[{leg}]")
    if not factors:
        factors.append("1")
    text = " * ".join(factors) + "".join(f" / {d}" for d in denominator)
    return text, len(factors) == 1 and not denominator


def format_network(network: Network, name: str | None = None) -> str:
    """The network as one ``.tn`` definition: ``NAME[out] = term + term ...``."""
    output = network.output_legs
    expr = ""
    for term in network.terms:
        if term.coeff.value == 0:
            continue
        text, atom = _term(term, output)
        negative = term.coeff.value < 0
        if not expr:
            expr = ("-" + (text if atom else f"({text})")) if negative else text
        else:
            expr += (" - " if negative else " + ") + text
    if not expr:  # the zero network, broadcast along every output leg
        expr = " * ".join(["0"] + [f"delta[{leg}]" for leg in dict.fromkeys(output)])
    axes = format_axes([(group, len(group) > 1) for group in network.output])
    return f"{name or network.name}{axes} = {expr}"

