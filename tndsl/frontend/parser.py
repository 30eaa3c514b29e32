"""Parsing ``.tn`` text into the AST (lark LALR, positions kept, errors positioned).

Nothing here recurses on the depth of the input: the tree is transformed without
recursion, and the limits on literal digits and nesting depth (:mod:`.limits`) are
checked with positions.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from pathlib import Path
from typing import Iterator

import lark
from lark import Lark, Token, v_args
from lark.visitors import Transformer_NonRecursive
from lark.lexer import PatternStr

from . import ast
from ..ir import Source, Span, TnSyntaxError
from .limits import Limits, resolve

__all__ = ["parse", "grammar_text"]

_TERMINAL_NAMES = {
    "NAME": "a name",
    "INT": "an integer",
    "NUMBER": "a number",
    "STRING": "a quoted string",
    "_NL": "end of line",
    "$END": "end of input",
}


def grammar_text() -> str:
    """The grammar, from inside the installed package or, in a checkout, ``grammars/``."""
    packaged = resources.files("tndsl").joinpath("tn.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammars" / "tn.lark").read_text(encoding="utf-8")


class _BracketNewlines:
    """Post-lexer: drop newlines inside () and [] so expressions can span lines."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth:
                continue
            yield token


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        start="program",
        parser="lalr",
        lexer="contextual",
        postlex=_BracketNewlines(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, filename: str = "<string>", limits: Limits | None = None) -> ast.Program:
    """Parse a program; raise :class:`TnSyntaxError` with position on bad input, and
    :class:`~tndsl.ir.LimitExceeded` for a program over ``limits``."""
    source = Source(text, filename)
    limits = resolve(limits)
    parser = _parser()
    try:
        tree = parser.parse(text if text.endswith("\n") else text + "\n")
    except lark.exceptions.UnexpectedInput as error:
        raise _syntax_error(error, source, parser) from None
    try:
        program = _ToAst(source, limits).transform(tree)
    except lark.exceptions.VisitError as error:
        raise error.orig_exc from None
    for statement in program.statements:
        if isinstance(statement, ast.Definition):
            _check_depth(statement.expr, limits)
    return program


def _check_depth(expr: ast.Expr, limits: Limits) -> None:
    """Nesting depth: a unary minus, or an operand the printer parenthesizes, is one level."""
    stack = [(expr, 0)]
    while stack:
        node, depth = stack.pop()
        limits.check("max_depth", depth, "expression nesting depth", node.span)
        if isinstance(node, ast.Neg):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, ast.BinOp):
            level = ast.PRECEDENCE[node.op]
            for operand, strict in ((node.left, False), (node.right, True)):
                inner = ast.PRECEDENCE.get(operand.op, level + 1) if isinstance(operand, ast.BinOp) else level + 1
                nested = inner < level or (strict and inner == level)
                stack.append((operand, depth + nested))


def _describe(terminal: str, parser: Lark) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    for definition in parser.terminals:
        if definition.name == terminal and isinstance(definition.pattern, PatternStr):
            return repr(definition.pattern.value)
    return terminal.lower()


def _syntax_error(error: lark.exceptions.UnexpectedInput, source: Source, parser: Lark) -> TnSyntaxError:
    line = max(1, getattr(error, "line", 1) or 1)
    col = max(1, getattr(error, "column", 1) or 1)
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        char = source.text[error.pos_in_stream] if error.pos_in_stream < len(source.text) else ""
        message = f"unexpected character {char!r}"
    elif isinstance(error, lark.exceptions.UnexpectedToken):
        token = error.token
        if token.type == "$END":
            message = "unexpected end of input"
            lines = source.lines()
            line, col = len(lines), len(lines[-1]) + 1
        elif token.type == "_NL":
            message = "unexpected end of line"
        else:
            message = f"unexpected {str(token)!r}"
        expected = sorted({_describe(name, parser) for name in error.expected if name != "_NL" and not name.startswith("__")})
        if expected:
            message += "; expected " + (", ".join(expected[:-1]) + " or " + expected[-1] if len(expected) > 1 else expected[0])
    else:
        message = "unexpected end of input"
    return TnSyntaxError(message, Span(line, col, line, col + 1, source))


def _to_int(text: str, span: Span | None) -> int:
    """``int(text)``; past Python's own digit limit (raised ``max_digits``) a syntax error."""
    try:
        return int(text)
    except ValueError:
        raise TnSyntaxError(f"integer literal of {len(text)} digits is longer than Python converts", span) from None


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """lark tree → AST, attaching spans; integers and numbers checked against the limits."""

    def __init__(self, source: Source, limits: Limits):
        super().__init__()
        self.source = source
        self.limits = limits

    def _span(self, meta) -> Span | None:
        if getattr(meta, "empty", True):
            return None
        return Span(meta.line, meta.column, meta.end_line, meta.end_column, self.source)

    def _token_span(self, token: Token) -> Span:
        return Span(token.line, token.column, token.end_line or token.line, token.end_column or token.column + 1, self.source)

    def program(self, meta, children):
        return ast.Program(tuple(children))

    def input_decl(self, meta, children):
        name, *axes = children
        return ast.InputDecl(str(name), tuple(axes), span=self._token_span(name))

    def index_decl(self, meta, children):
        name, *axes = children
        return ast.IndexDecl(str(name), tuple(axes[:-1]), axes[-1], span=self._token_span(name))

    def _int(self, token: Token) -> int:
        """An integer literal, its digits checked against ``max_digits`` first."""
        digits = sum(c.isdigit() for c in str(token))
        self.limits.check("max_digits", digits, "digits in an integer literal", self._token_span(token))
        return _to_int(str(token), self._token_span(token))

    def size_decl(self, meta, children):
        name = children[0]
        value = self._int(children[1]) if len(children) > 1 else None
        return ast.SizeDecl(str(name), value, span=self._token_span(name))

    def pattern_decl(self, meta, children):
        name, kind, *params = children
        return ast.PatternDecl(str(name), str(kind), tuple(params), span=self._token_span(kind))

    def param_decl(self, meta, children):
        name, value = children
        return ast.ParamDecl(str(name), value, span=self._token_span(name))

    def name_value(self, meta, children):
        return ast.ParamRef(str(children[0]), span=self._token_span(children[0]))

    def param(self, meta, children):
        name, value = children
        return ast.Param(str(name), value, span=self._span(meta))

    def int_value(self, meta, children):
        return self._int(children[0])

    def tuple_value(self, meta, children):
        return tuple(self._int(child) if isinstance(child, Token) else child for child in children)

    def string_value(self, meta, children):
        return str(children[0])[1:-1]

    def definition(self, meta, children):
        name, *rest = children
        output = rest[0] if len(rest) == 2 else None
        return ast.Definition(str(name), output, rest[-1], span=self._token_span(name))

    def output(self, meta, children):
        return tuple(children)

    def axis(self, meta, children):
        return ast.Axis((children[0],), False, span=children[0].span)

    def group(self, meta, children):
        return ast.Axis(tuple(children), True, span=self._span(meta))

    def label(self, meta, children):
        return ast.Label(str(children[0]), span=self._token_span(children[0]))

    def labels(self, meta, children):
        return tuple(children)

    def factor(self, meta, children):
        name, *labels = children
        dim = int(labels.pop(0)) if labels and isinstance(labels[0], Token) else None
        return ast.Factor(str(name), tuple(labels), dim, span=self._span(meta))

    def call(self, meta, children):
        name, *rest = children
        labels = rest.pop() if rest and isinstance(rest[-1], tuple) else None
        return ast.Call(str(name), tuple(rest), labels, span=self._span(meta))

    def number(self, meta, children):
        text = str(children[0])
        span = self._span(meta)
        digits = sum(c.isdigit() for c in text)
        self.limits.check("max_digits", digits, "digits in a number literal", span)
        value: int | float = _to_int(text, span) if text.isdigit() else float(text)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            shown = text if len(text) <= 20 else f"{text[:8]}…{text[-8:]}"
            raise TnSyntaxError(f"number {shown} is too large (the largest is about 1.8e308)", span=span)
        return ast.Number(value, span=span)

    def size_ref(self, meta, children):
        return ast.SizeRef(children[0], span=self._span(meta))

    def _binop(op):  # noqa: N805 - builds methods
        def method(self, meta, children):
            return ast.BinOp(op, children[0], children[1], span=self._span(meta))

        return method

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")

    def neg(self, meta, children):
        return ast.Neg(children[0], span=self._span(meta))
