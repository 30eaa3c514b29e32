"""The IR: networks, tensor kinds, sizes, names, Π's size rules and errors.

Pure Python: importing it imports neither torch, networkx nor graphviz.
"""

from .errors import (
    CannotInferSize,
    Source,
    Span,
    TnArityError,
    TnCallError,
    TnDefinitionError,
    TnError,
    TnNameError,
    TnNotSupportedError,
    TnPatternError,
    TnSizeError,
    TnSyntaxError,
    UnknownName,
    WrongLegCount,
)
from .inline import inline
from .kinds import Kind, Slice
from .names import FreshNames
from .network import Coeff, InputSpec, Network, Tensor, Term, format_network
from .patterns import PATTERN_KINDS, PatternParamError, PatternSpec
from .sizes import Size, SizeTable
from .solver import KNOWN, check_inferable, solve

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
    "PATTERN_KINDS",
    "Size",
    "SizeTable",
    "FreshNames",
    "inline",
    "solve",
    "check_inferable",
    "KNOWN",
    "format_network",
    "Source",
    "Span",
    "TnError",
    "TnSyntaxError",
    "TnNameError",
    "TnArityError",
    "TnSizeError",
    "TnDefinitionError",
    "TnPatternError",
    "TnCallError",
    "TnNotSupportedError",
    "UnknownName",
    "WrongLegCount",
    "CannotInferSize",
]
