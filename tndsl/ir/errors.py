"""Errors: one exception family for users, each message positioned in the source.

Every static error reads ``FILE:LINE:COL: message`` followed by the source line and a
caret under the culprit; call-time errors point at the definition being called.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Sequence



@dataclass(frozen=True)
class Source:
    """The text of a ``.tn`` program and the file name used in messages."""

    text: str
    filename: str = "<string>"

    def lines(self) -> list[str]:
        """The lines as the lexer counts them: split at ``\n`` only (``str.splitlines``
        would also split at ``\f``, ``\v``, ``\r``, U+2028, … inside comments); a final
        newline ends the last line rather than starting an empty one."""
        lines = [line.removesuffix("\r") for line in self.text.split("\n")]
        if len(lines) > 1 and self.text.endswith("\n"):
            lines.pop()
        return lines

    def line(self, number: int) -> str:
        lines = self.lines()
        return lines[number - 1] if 1 <= number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A position in a source: 1-based line and column (end is exclusive)."""

    line: int
    col: int
    end_line: int = 0
    end_col: int = 0
    source: Source | None = field(default=None, compare=False, repr=False)


def _printable(line: str) -> str:
    """A source line for display: tabs and control characters (a terminal's escape
    sequences, ``\f``, U+2028, …) become spaces, one per character, so the caret lines up."""
    return "".join(c if c.isprintable() else " " for c in line)


class TnError(Exception):
    """Base class of every error tndsl reports to a user."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        self.message = message
        self.span = span
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        span = self.span
        if span is None:
            text = self.message
        else:
            name = span.source.filename if span.source else "<string>"
            text = f"{name}:{span.line}:{span.col}: {self.message}"
            if span.source is not None:
                line = _printable(span.source.line(span.line))
                if line.strip():
                    width = 1
                    if span.end_line == span.line and span.end_col > span.col:
                        width = span.end_col - span.col
                    text += f"\n    {line}\n    {' ' * (span.col - 1)}{'^' * width}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __reduce__(self):
        """Pickle by fields (subclasses' constructors take other arguments)."""
        return _rebuild, (type(self), self.message, self.span, self.hint)


def _rebuild(cls: type, message: str, span: Span | None, hint: str | None) -> TnError:
    error: TnError = Exception.__new__(cls)
    TnError.__init__(error, message, span, hint)
    return error


class TnSyntaxError(TnError):
    """The text does not follow the grammar."""


class TnNameError(TnError):
    """An unknown tensor, definition, pattern, label or function name."""


class TnArityError(TnError):
    """A tensor used with the wrong number of labels or arguments."""


class TnSizeError(TnError):
    """A leg size that conflicts with another or cannot be inferred."""


class TnDefinitionError(TnError):
    """Duplicate, cyclic or otherwise malformed definitions and declarations."""


class TnPatternError(TnError):
    """Invalid parameters of an index pattern (Π)."""


class TnCallError(TnError):
    """Wrong arguments when calling a compiled function."""


class TnNotSupportedError(TnError):
    """A construct that parses but is not supported (yet)."""


# -- one constructor per recurring kind of message ------------------------------------------


class UnknownName(TnNameError):
    """``unknown WHAT 'NAME'``, with the closest known name as a hint."""

    def __init__(self, what: str, name: str, span: Span | None, known: Iterable[str] = (), hint: str | None = None):
        close = difflib.get_close_matches(name, list(known), n=1)
        super().__init__(f"unknown {what} '{name}'", span, f"did you mean '{close[0]}'?" if close else hint)


class WrongLegCount(TnArityError):
    """A use of a tensor with a number of labels other than its legs."""

    def __init__(self, what: str, legs: Sequence[str], given: int, span: Span | None, hint: str | None = None):
        super().__init__(f"{what} has {len(legs)} legs [{', '.join(legs)}] but {given} labels were given", span, hint)


class AbsentInput(TnNameError):
    """A derivative or vmap with respect to an input the network does not use."""

    def __init__(self, name: str, network: str, inputs: Sequence[str], span: Span | None, derivative: bool = True):
        zero = "; a derivative with respect to it is always zero" if derivative else ""
        super().__init__(f"'{name}' does not occur in '{network}'{zero}", span, f"'{network}' uses: {', '.join(inputs) or 'no inputs'}")


class DuplicateLabel(TnDefinitionError):
    """A label written twice where each must be distinct (an output, a declaration)."""

    def __init__(self, label: str, where: str, span: Span | None):
        super().__init__(f"label '{label}' appears twice in {where}", span)


class CannotInferSize(TnSizeError):
    """A leg whose size nothing fixes: no argument, pattern, delta or declaration."""

    def __init__(self, label: str, network: str, span: Span | None, reason: str = ""):
        super().__init__(
            f"cannot infer the size of leg '{label}' in '{network}'" + (f" ({reason})" if reason else ""),
            span,
            f"declare it with 'size {label} = N' (or 'size {label}' to pass it as a keyword argument)",
        )


class LimitExceeded(TnNotSupportedError):
    """A program over one of the compiler's limits (``tndsl.Limits``): names the limit,
    its value and how to raise it."""

    def __init__(self, what: str, value: int, limit: str, maximum: int, span: Span | None):
        super().__init__(
            f"{what}: {value} is over the limit {limit}={maximum}",
            span,
            f"raise it with tndsl.compile(..., limits=tndsl.Limits({limit}=N)) "
            f"or the environment variable TNDSL_{limit.upper()}=N",
        )
        self.limit = limit


__all__ = [
    "Source",
    "Span",
    "TnError",
    "TnSyntaxError",
    "TnNameError",
    "TnArityError",
    "TnSizeError",
    "TnDefinitionError",
    "TnPatternError",
    "TnCallError",
    "TnNotSupportedError",
    "UnknownName",
    "WrongLegCount",
    "AbsentInput",
    "DuplicateLabel",
    "CannotInferSize",
    "LimitExceeded",
]
