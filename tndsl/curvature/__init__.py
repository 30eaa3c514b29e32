"""Kronecker factors (KFAC-expand / KFC and KFAC-reduce) for ``torch.nn`` layers, computed
by tndsl programs: ``input_factor``, ``output_factor`` and ``collect`` (hooks over a model).
See docs/optimizers.md."""

from __future__ import annotations

from .factors import SUPPORTED, input_factor, input_sum, output_factor, output_sum
from .hooks import Collected, KroneckerFactors, collect

__all__ = ["input_factor", "output_factor", "input_sum", "output_sum", "collect", "Collected", "KroneckerFactors", "SUPPORTED"]
