"""tndsl: tensor-network diagrams compiled to PyTorch, rendered, and rewritten.

Write a network as ``.tn`` text, then::

    program = tndsl.compile(text)      # or tndsl.load("conv2d.tn")
    y = program.Y(x, w)                # a definition is a function of its inputs

The IR and the errors import eagerly (pure Python); everything that needs torch, lark or
graphviz is imported on first use, so ``import tndsl.ir`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .ir import (
    Coeff,
    InputSpec,
    Network,
    PatternSpec,
    Tensor,
    Term,
    TnArityError,
    TnCallError,
    TnDefinitionError,
    TnError,
    TnNameError,
    TnNotSupportedError,
    TnPatternError,
    TnSizeError,
    TnSyntaxError,
)

__version__ = "0.1.0"

#: public name → (module, attribute); attribute None means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "compile": ("tndsl.backend.program", "compile"),
    "load": ("tndsl.backend.program", "load"),
    "Program": ("tndsl.backend.program", "Program"),
    "Function": ("tndsl.backend.program", "Function"),
    "Limits": ("tndsl.frontend.limits", "Limits"),
    "parse": ("tndsl.frontend.parser", "parse"),
    "format_program": ("tndsl.frontend.printer", "format_program"),
    "render": ("tndsl.tools.render", "render"),
    "rewrite": ("tndsl.transforms.rewrite", None),
    "simplify": ("tndsl.transforms.simplify", None),
    "curvature": ("tndsl.curvature", None),
}

__all__ = [
    "Coeff",
    "compile",
    "curvature",
    "format_program",
    "Function",
    "InputSpec",
    "Limits",
    "load",
    "Network",
    "parse",
    "PatternSpec",
    "Program",
    "render",
    "rewrite",
    "simplify",
    "Tensor",
    "Term",
    "TnArityError",
    "TnCallError",
    "TnDefinitionError",
    "TnError",
    "TnNameError",
    "TnNotSupportedError",
    "TnPatternError",
    "TnSizeError",
    "TnSyntaxError",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tndsl' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
