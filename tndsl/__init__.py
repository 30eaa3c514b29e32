"""tndsl: tensor-network diagrams compiled to PyTorch, rendered, and rewritten.

Write a network as ``.tn`` text, then::

    program = tndsl.compile(text)      # or tndsl.load("conv2d.tn")
    y = program.Y(x, w)                # a definition is a function of its inputs
"""

from .errors import (
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
from .ir import Coeff, InputSpec, Network, Tensor, Term
from .parser import parse
from .patterns import PatternSpec
from .printer import format_program
from .program import Function, Program, compile, load
from . import rewrite, simplify  # noqa: E402,I001 - graph rewrites: tndsl.rewrite.grad(network, "W")

__all__ = [
    "compile",
    "load",
    "parse",
    "format_program",
    "Program",
    "Function",
    "Network",
    "Term",
    "Tensor",
    "Coeff",
    "InputSpec",
    "PatternSpec",
    "TnError",
    "TnSyntaxError",
    "TnNameError",
    "TnArityError",
    "TnSizeError",
    "TnDefinitionError",
    "TnPatternError",
    "TnCallError",
    "TnNotSupportedError",
    "rewrite",
    "simplify",
]

__version__ = "0.1.0"
