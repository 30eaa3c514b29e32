"""The abstract syntax tree of a ``.tn`` program, with source positions.

Spans never take part in equality, so ``parse(print(parse(text))) == parse(text)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..ir import Span

__all__ = [
    "Node",
    "Label",
    "Axis",
    "InputDecl",
    "IndexDecl",
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


@dataclass(frozen=True)
class Node:
    """Base of every AST node: its source span, keyword-only, never part of equality."""

    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Label(Node):
    name: str


@dataclass(frozen=True)
class Axis(Node):
    """One axis of an output or input declaration: a label, or a group ``(a b)``."""

    labels: tuple[Label, ...]
    grouped: bool = False


@dataclass(frozen=True)
class InputDecl(Node):
    """``input NAME[axes]``: an argument and how its axes split into legs."""

    name: str
    axes: tuple[Axis, ...]


@dataclass(frozen=True)
class IndexDecl(Node):
    """``index NAME[axes -> target]``: an integer argument selecting entries of ``target``."""

    name: str
    axes: tuple[Axis, ...]
    target: Axis


@dataclass(frozen=True)
class SizeDecl(Node):
    """``size NAME = INT`` (a fixed size) or ``size NAME`` (a keyword argument)."""

    name: str
    value: int | None


@dataclass(frozen=True)
class Param(Node):
    """One pattern parameter ``NAME=VALUE``: an int, a string, or a tuple of ints and
    pairs (one entry per dimension, or a padding pair)."""

    name: str
    value: int | tuple | str


@dataclass(frozen=True)
class PatternDecl(Node):
    """``pattern NAME = KIND(params)``: an index pattern Π."""

    name: str
    kind: str
    params: tuple[Param, ...]


@dataclass(frozen=True)
class Factor(Node):
    """A use of a tensor with labels: ``X[n, c, i]``; ``P.1[i, o, k]`` picks dimension 1
    of a per-dimension pattern."""

    name: str
    labels: tuple[Label, ...]
    dim: int | None = None


@dataclass(frozen=True)
class Call(Node):
    """A derived form ``grad(Y, W)``, optionally with labels ``vjp(Y, W, V)[a, b]``; an
    argument is a name or, nested, another call (``grad(grad(L, W), W)``)."""

    func: str
    args: tuple["Label | Expr", ...]
    labels: tuple[Label, ...] | None


@dataclass(frozen=True)
class Number(Node):
    value: int | float


@dataclass(frozen=True)
class SizeRef(Node):
    """``|n|``: the size of leg ``n``."""

    label: Label


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # one of + - * /
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Neg(Node):
    operand: "Expr"


Expr = Union[Factor, Call, Number, SizeRef, BinOp, Neg]


@dataclass(frozen=True)
class Definition(Node):
    """``NAME[output] = expr``; ``output`` is None for ``G = vjp(Y, W, V)``."""

    name: str
    output: tuple[Axis, ...] | None
    expr: Expr


Statement = Union[InputDecl, IndexDecl, SizeDecl, PatternDecl, Definition]


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
