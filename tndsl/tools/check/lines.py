"""The ``# check:`` line of a ``.tn`` file: tokenized and parsed here, never evaluated."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...ir import Source, Span, TnError
from .references import DENSE, REFERENCES, Value

__all__ = ["CheckSpec", "TnCheckError", "parse_check_lines"]


@dataclass(frozen=True)
class CheckSpec:
    """One parsed ``# check:`` line."""

    definition: str
    reference: str
    arguments: tuple[str, ...]
    params: tuple[tuple[str, Value], ...]
    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    keywords: tuple[tuple[str, int], ...]
    span: Span | None = None


class TnCheckError(TnError):
    """A malformed ``# check:`` line."""


_CHECK = re.compile(r"^\s*#\s*check\s*:(.*)$")
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>-?[0-9]+)|(?P<string>'[^']*'|\"[^\"]*\")|(?P<punct>[=(),\[\].:]))")


class _Tokens:
    def __init__(self, text: str, line: int, col: int, source: Source):
        self.items: list[tuple[str, str, int]] = []
        self.line, self.source = line, source
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                start = position + len(text[position:]) - len(text[position:].lstrip())
                raise TnCheckError("unexpected character in check line", self.span(col + start))
            kind = match.lastgroup or "punct"
            start = match.start(kind)
            self.items.append((kind, match.group(kind), col + start))
            position = match.end()
        self.index = 0
        self.end_col = col + len(text)

    def span(self, col: int) -> Span:
        return Span(self.line, col, self.line, col + 1, self.source)

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def next(self, kind: str | None = None, value: str | None = None, what: str = "") -> tuple[str, str, int]:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value is not None and token[1] != value):
            col = token[2] if token else self.end_col
            found = f"'{token[1]}'" if token else "the end of the line"
            raise TnCheckError(f"check line: expected {what or value or kind}, found {found}", self.span(col))
        self.index += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[0] in ("punct", "name") and token[1] == value:
            self.index += 1
            return True
        return False


def _value(tokens: _Tokens) -> Value:
    token = tokens.peek()
    if token is not None and token[0] == "int":
        return int(tokens.next("int")[1])
    if token is not None and token[0] == "string":
        return tokens.next("string")[1][1:-1]
    if tokens.accept("("):
        values = [int(tokens.next("int", what="an integer")[1])]
        while tokens.accept(","):
            values.append(int(tokens.next("int", what="an integer")[1]))
        tokens.next("punct", ")", "')'")
        return tuple(values)
    tokens.next("int", what="an integer, a tuple of integers or a quoted string")
    raise AssertionError  # unreachable


def parse_check_lines(text: str, filename: str = "<string>") -> list[CheckSpec]:
    """All ``# check:`` lines of a program text, parsed (never evaluated)."""
    source = Source(text, filename)
    specs = []
    for number, line in enumerate(source.lines(), start=1):
        match = _CHECK.match(line)
        if not match:
            continue
        tokens = _Tokens(match.group(1), number, match.start(1) + 1, source)
        _, definition, col = tokens.next("name", what="a definition name")
        tokens.next("punct", "=", "'='")
        first = tokens.next("name", what="a reference name")
        reference_name = first[1]
        while tokens.accept("."):  # a user module's dotted path
            reference_name += "." + tokens.next("name", what="a module name")[1]
        if tokens.accept(":"):
            reference_name += ":" + tokens.next("name", what="a function name")[1]
        elif "." in reference_name:
            raise TnCheckError("a reference in a module is written module:function", tokens.span(first[2]))
        reference = ("name", reference_name, first[2])
        if ":" not in reference_name and reference_name != DENSE and reference_name not in REFERENCES:
            raise TnCheckError(
                f"unknown reference '{reference_name}'; expected 'dense', module:function or one of "
                f"{', '.join(sorted(REFERENCES))}",
                tokens.span(first[2]),
            )
        tokens.next("punct", "(", "'('")
        arguments: list[str] = []
        params: dict[str, Value] = {}
        if not tokens.accept(")"):
            while True:
                name = tokens.next("name", what="an input name or a parameter")
                if tokens.accept("="):
                    if name[1] in params:
                        raise TnCheckError(f"parameter '{name[1]}' given twice", tokens.span(name[2]))
                    params[name[1]] = _value(tokens)
                else:
                    if params:
                        raise TnCheckError("positional argument after a parameter", tokens.span(name[2]))
                    arguments.append(name[1])
                if tokens.accept(")"):
                    break
                tokens.next("punct", ",", "',' or ')'")
        shapes: dict[str, tuple[int, ...]] = {}
        keywords: dict[str, int] = {}
        if tokens.accept("with"):
            while True:
                name = tokens.next("name", what="an input shape NAME[...] or a size NAME=INT")
                if tokens.accept("["):
                    dims = [int(tokens.next("int", what="an integer")[1])]
                    while tokens.accept(","):
                        dims.append(int(tokens.next("int", what="an integer")[1]))
                    tokens.next("punct", "]", "']'")
                    if any(d < 1 for d in dims):
                        raise TnCheckError(f"shape of {name[1]} must be positive", tokens.span(name[2]))
                    shapes[name[1]] = tuple(dims)
                else:
                    tokens.next("punct", "=", "'[' or '='")
                    size = int(tokens.next("int", what="an integer")[1])
                    if size < 1:
                        raise TnCheckError(f"size {name[1]} must be positive", tokens.span(name[2]))
                    keywords[name[1]] = size
                if not tokens.accept(","):
                    break
        extra = tokens.peek()
        if extra is not None:
            raise TnCheckError(f"check line: unexpected '{extra[1]}'", tokens.span(extra[2]))
        specs.append(
            CheckSpec(
                definition,
                reference[1],
                tuple(arguments),
                tuple(params.items()),
                tuple(shapes.items()),
                tuple(keywords.items()),
                tokens.span(col),
            )
        )
    return specs


