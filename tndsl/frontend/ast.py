"""The abstract syntax tree of a ``.tn`` program, with source positions.

Spans never take part in equality, so ``parse(print(parse(text))) == parse(text)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..ir import Span

__all__ = [
    "Label",
    "Axis",
    "InputDecl",
    "SizeDecl",
    "PatternDecl",
    "Param",
    "Definition",
    "Factor",
    "Call",
    "Number",
    "SizeRef",
    "BinOp",
    "Neg",
    "Expr",
    "Statement",
    "Program",
]


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Label:
    name: str
    span: Span | None = _span()


@dataclass(frozen=True)
class Axis:
    """One axis of an output or input declaration: a label, or a group ``(a b)``."""

    labels: tuple[Label, ...]
    grouped: bool = False
    span: Span | None = _span()


@dataclass(frozen=True)
class InputDecl:
    name: str
    axes: tuple[Axis, ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class SizeDecl:
    name: str
    value: int | None
    span: Span | None = _span()


@dataclass(frozen=True)
class Param:
    name: str
    value: int | tuple[int, int] | str
    span: Span | None = _span()


@dataclass(frozen=True)
class PatternDecl:
    name: str
    kind: str
    params: tuple[Param, ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class Factor:
    """A use of a tensor with labels: ``X[n, c, i]``."""

    name: str
    labels: tuple[Label, ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class Call:
    """A derived form ``grad(Y, W)``, optionally with labels ``vjp(Y, W, V)[a, b]``."""

    func: str
    args: tuple[Label, ...]
    labels: tuple[Label, ...] | None
    span: Span | None = _span()


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span | None = _span()


@dataclass(frozen=True)
class SizeRef:
    """``|n|``: the size of leg ``n``."""

    label: Label
    span: Span | None = _span()


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: "Expr"
    right: "Expr"
    span: Span | None = _span()


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span | None = _span()


Expr = Union[Factor, Call, Number, SizeRef, BinOp, Neg]


@dataclass(frozen=True)
class Definition:
    """``NAME[output] = expr``; ``output`` is None for ``G = vjp(Y, W, V)``."""

    name: str
    output: tuple[Axis, ...] | None
    expr: Expr
    span: Span | None = _span()


Statement = Union[InputDecl, SizeDecl, PatternDecl, Definition]


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
