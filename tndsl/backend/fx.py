"""A plan as a ``torch.fx.GraphModule``: the generated straight-line function, symbolically
traced; its plan-time constants become the module's tensor attributes."""

from __future__ import annotations

from typing import Callable

import torch
import torch.fx

__all__ = ["graph_module"]


def graph_module(function: Callable[..., torch.Tensor], name: str) -> torch.fx.GraphModule:
    """``function`` (a compiled plan, shape-specialised) as a GraphModule of class ``name``."""
    graph_module = torch.fx.symbolic_trace(function)
    graph_module.__class__.__name__ = name
    return graph_module
