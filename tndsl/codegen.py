"""Straight-line torch source: an emitter that never pastes user text into code.

Variables and constants get generated names; einsum equations use generated letters; only
integers, dtype names and these generated names reach the source.
"""

from __future__ import annotations

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


@dataclass
class Emitter:
    """Collects lines of a function body and the constants it closes over."""

    lines: list[str] = field(default_factory=list)
    constants: list[torch.Tensor] = field(default_factory=list)
    counter: int = 0
    known: dict[str, str] = field(default_factory=dict)  # expression -> variable (CSE)

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
        if expression in self.known:
            return self.known[expression]
        name = self.fresh(prefix)
        self.lines.append(f"{name} = {expression}")
        self.known[expression] = name
        return name

    def function(self, name: str, params: Sequence[str], result: str, doc: str) -> str:
        """The whole function source. ``name`` and ``params`` are generated identifiers."""
        body = [f'    """{doc}"""'] + [f"    {line}" for line in self.lines] + [f"    return {result}"]
        return f"def {name}({', '.join(params)}):\n" + "\n".join(body) + "\n"

    def compile(self, name: str, params: Sequence[str], result: str, doc: str) -> tuple[Callable, str]:
        source = self.function(name, params, result, doc)
        namespace = {"torch": torch, "F": F, "C": tuple(self.constants)}
        exec(compile(source, f"<tndsl {name}>", "exec"), namespace)  # noqa: S102 - generated, see module doc
        return namespace[name], source
