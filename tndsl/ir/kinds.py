"""Tensor kinds and the typed parameters some kinds carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Kind", "Slice"]


class Kind(str, enum.Enum):
    """What a tensor occurrence is."""

    INPUT = "input"  #: an argument of the compiled function
    PATTERN = "pattern"  #: Π[in, out, kernel] of a declared pattern
    DELTA = "delta"  #: the copy tensor (one leg: a vector of ones)
    SLICE = "slice"  #: S[i, o] = 1 iff i = start + step·o (made by the Π simplifications)
    PATTERN_SUM = "pattern_sum"  #: M[i, k] = Σ_o Π[i, o, k] (made by the Π simplifications)
    INDEX = "index"  #: J[s…, t…] = 1 iff argument[s…] = t (row-major over t…): an integer argument

    @property
    def argument(self) -> bool:
        """Whether a tensor of this kind is an argument of the compiled function."""
        return self in (Kind.INPUT, Kind.INDEX)

    def __str__(self) -> str:
        return self.value

    @property
    def uses_pattern(self) -> bool:
        """Whether a tensor of this kind names one of the network's patterns."""
        return self in (Kind.PATTERN, Kind.PATTERN_SUM)


@dataclass(frozen=True)
class Slice:
    """Parameters of a slice tensor: ``S[i, o] = 1`` iff ``i = start + step·o``."""

    start: int
    step: int
