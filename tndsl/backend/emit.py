"""Straight-line torch source: an emitter that never pastes user text into code.

Variables and constants get generated names; einsum equations use generated letters; only
integers, dtype names and these generated names reach the source.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["Emitter", "einsum_equation"]

_LETTERS = string.ascii_letters


def einsum_equation(operands: Sequence[Sequence[str]], output: Sequence[str]) -> str:
    """An einsum equation for labelled operands, with letters assigned in order of use."""
    letters: dict[str, str] = {}
    for labels in [*operands, output]:
        for label in labels:
            if label not in letters:
                if len(letters) == len(_LETTERS):
                    raise ValueError("more than 52 distinct legs in one contraction step")
                letters[label] = _LETTERS[len(letters)]
    spell = lambda labels: "".join(letters[label] for label in labels)  # noqa: E731
    return ",".join(spell(labels) for labels in operands) + "->" + spell(output)


_RESHAPE = re.compile(r"^([a-z]+[0-9]+)\.reshape\((.*)\)$")
_NAME = re.compile(r"\b[a-z]+[0-9]+\b")


@dataclass
class Emitter:
    """Collects lines of a function body and the constants it closes over."""

    lines: list[str] = field(default_factory=list)
    constants: list[torch.Tensor] = field(default_factory=list)
    counter: int = 0
    known: dict[str, str] = field(default_factory=dict)  # expression -> variable (CSE)
    defined: dict[str, str] = field(default_factory=dict)  # variable -> its pure expression

    def fresh(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: torch.Tensor) -> str:
        """A name for a constant; equal constants share one name (so CSE sees them)."""
        for index, known in enumerate(self.constants):
            if known is value or (
                known.shape == value.shape
                and known.dtype == value.dtype
                and known.device == value.device
                and torch.equal(known, value)
            ):
                return f"C[{index}]"
        self.constants.append(value)
        return f"C[{len(self.constants) - 1}]"

    def assign(self, expression: str, prefix: str = "t") -> str:
        """Bind a pure expression to a fresh variable; an expression seen before is reused."""
        reshape = _RESHAPE.match(expression)
        if reshape and _RESHAPE.match(self.defined.get(reshape.group(1), "")):
            # a reshape of a reshape is one reshape of the original
            base = _RESHAPE.match(self.defined[reshape.group(1)]).group(1)
            expression = f"{base}.reshape({reshape.group(2)})"
        if expression in self.known:
            return self.known[expression]
        name = self.fresh(prefix)
        self.lines.append(f"{name} = {expression}")
        self.known[expression] = name
        self.defined[name] = expression
        return name

    def _live_lines(self, result: str) -> list[str]:
        """The body without pure assignments whose variable is never read (dead code)."""
        used = set(_NAME.findall(result))
        live: list[str] = []
        for line in reversed(self.lines):
            target, _, expression = line.partition(" = ")
            if self.defined.get(target) == expression and target not in used:
                continue
            used.update(_NAME.findall(line))
            live.append(line)
        return live[::-1]

    def function(self, name: str, params: Sequence[str], result: str, doc: str) -> str:
        """The whole function source. ``name`` and ``params`` are generated identifiers."""
        body = [f'    """{doc}"""'] + [f"    {line}" for line in self._live_lines(result)] + [f"    return {result}"]
        return f"def {name}({', '.join(params)}):\n" + "\n".join(body) + "\n"

    def compile(self, name: str, params: Sequence[str], result: str, doc: str) -> tuple[Callable, str]:
        source = self.function(name, params, result, doc)
        namespace = {"torch": torch, "F": F, "C": tuple(self.constants)}
        exec(compile(source, f"<tndsl {name}>", "exec"), namespace)  # noqa: S102 - generated, see module doc
        return namespace[name], source
