"""Einsum equations for labelled operands: the one builder planner, path search and dense
reference share."""

from __future__ import annotations

import string
from typing import Callable, Sequence

__all__ = ["einsum_equation", "letter", "MAX_LETTERS", "TooManyLegs"]

_LETTERS = string.ascii_letters
#: How many distinct legs ``torch.einsum`` can name (its letters).
MAX_LETTERS = len(_LETTERS)


class TooManyLegs(ValueError):
    """A step ``torch.einsum`` cannot spell: more distinct legs than it has letters."""


def letter(index: int) -> str:
    """The ``index``-th letter ``torch.einsum`` accepts."""
    if index >= MAX_LETTERS:
        raise TooManyLegs(f"more than {MAX_LETTERS} distinct legs in one contraction step")
    return _LETTERS[index]


def einsum_equation(
    operands: Sequence[Sequence[str]], output: Sequence[str], symbol: Callable[[int], str] = letter
) -> str:
    """``"ab,bc->ac"`` for labelled operands, symbols assigned in order of first use.

    ``symbol`` maps a position to a symbol: :func:`letter` for ``torch.einsum``,
    ``opt_einsum.get_symbol`` where more than 52 legs are allowed.
    """
    symbols: dict[str, str] = {}
    for labels in [*operands, output]:
        for label in labels:
            if label not in symbols:
                symbols[label] = symbol(len(symbols))
    spell = lambda labels: "".join(symbols[label] for label in labels)  # noqa: E731
    return ",".join(spell(labels) for labels in operands) + "->" + spell(output)
