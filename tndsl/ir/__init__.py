"""The IR: networks, tensor kinds, sizes, names, Π's size rules and errors.

Pure Python: importing it imports neither torch, networkx nor graphviz.
"""

from . import errors
from .errors import *  # noqa: F403 - the error family, Source and Span
from .inline import inline
from .kinds import Kind, Slice
from .names import FreshNames
from .network import Coeff, InputSpec, Network, Tensor, Term, format_network
from .patterns import PATTERN_KINDS, Family, PatternParamError, PatternSpec, family
from .sizes import ShapeOf, Size, SizeTable
from .solver import KNOWN, ambiguous, check_inferable, sizes_of, solve

__all__ = [
    "Kind",
    "Slice",
    "Tensor",
    "Coeff",
    "Term",
    "InputSpec",
    "Network",
    "PatternSpec",
    "PatternParamError",
    "Family",
    "family",
    "PATTERN_KINDS",
    "Size",
    "SizeTable",
    "ShapeOf",
    "ambiguous",
    "FreshNames",
    "inline",
    "solve",
    "sizes_of",
    "check_inferable",
    "KNOWN",
    "format_network",
    *errors.__all__,
]
