"""Backend: planning, lowering and the op list, Python emission, ``Program`` and ``Function``."""

from .ops import Op, Plan
from .program import Function, Program, compile, load

__all__ = ["Program", "Function", "compile", "load", "Plan", "Op"]
