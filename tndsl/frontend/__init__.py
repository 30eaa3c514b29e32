"""Frontend: ``.tn`` text → AST → IR networks (grammar, parser, AST, printer, builder)."""

from .builder import build
from .parser import parse
from .printer import format_program

__all__ = ["parse", "build", "format_program"]
