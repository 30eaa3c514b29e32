"""The abstract syntax tree of a ``.tn`` program, with source positions.

Spans never take part in equality, so ``parse(print(parse(text))) == parse(text)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable, Iterator, TypeVar, Union

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
    "ParamDecl",
    "ParamRef",
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
    "PRECEDENCE",
    "children",
    "fold",
    "walk",
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
class ParamRef(Node):
    """A pattern parameter's value given by name: ``conv(stride=stride)`` refers to a
    ``param stride = ...`` declaration."""

    name: str


@dataclass(frozen=True)
class Param(Node):
    """One pattern parameter ``NAME=VALUE``: an int, a string, a tuple of ints and
    pairs (one entry per dimension, or a padding pair), or a declared parameter's name."""

    name: str
    value: int | tuple | str | ParamRef


@dataclass(frozen=True)
class ParamDecl(Node):
    """``param NAME = VALUE``: a program parameter with its default, bound by
    ``tndsl.load(path, NAME=...)`` or by a keyword at call time."""

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


#: Binary operators and their precedence (higher binds tighter; unary minus binds tighter still).
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


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


Statement = Union[InputDecl, IndexDecl, SizeDecl, ParamDecl, PatternDecl, Definition]


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]


# -- walking without recursion: left-deep sums of thousands of terms stay cheap -------------

#: Expression nodes with expression children, and the fields holding them, in order.
_CHILDREN: dict[type, tuple[str, ...]] = {BinOp: ("left", "right"), Neg: ("operand",)}

T = TypeVar("T")


def children(expr: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of ``expr`` (none for atoms)."""
    return tuple(getattr(expr, name) for name in _CHILDREN.get(type(expr), ()))


def fold(expr: Expr, visit: Callable[[Expr, tuple[T, ...]], T]) -> T:
    """``visit(node, results of its children)`` for every node, children first and left
    to right (as a recursive evaluation would), with an explicit stack."""
    results: list[T] = []
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        kids = children(node)
        if expanded or not kids:
            start = len(results) - len(kids)
            args = tuple(results[start:])
            del results[start:]
            results.append(visit(node, args))
        else:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
    (result,) = results
    return result


def walk(node: object) -> Iterator[Node]:
    """Every AST node under ``node`` (itself included), parents before children."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        elif isinstance(item, (Node, Program)):
            if isinstance(item, Node):
                yield item
            stack.extend(reversed([getattr(item, f.name) for f in fields(item) if f.name != "span"]))
