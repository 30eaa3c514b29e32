"""dtypes as torch treats them: mixed float arguments, and the autocast state a plan depends on."""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["AUTOCAST_PRIMS", "AUTOCAST_DEVICES", "autocast_dtype", "autocast_key", "casts_result", "mixed_floats"]

#: Device types whose autocast state is part of a plan's cache key.
AUTOCAST_DEVICES = ("cpu", "cuda")

#: Primitives that run in autocast's lower-precision dtype (convolutions and matrix
#: products, which autocast lists): a plan using one gives that dtype, as ``F.conv2d`` and
#: ``F.linear`` with a bias do. Plain einsums keep the dtype torch gives them.
AUTOCAST_PRIMS = frozenset({"conv", "conv_weight", "conv_transpose", "matmul", "gram", "gram_chunked"})

#: The dtypes autocast casts (it leaves float64 and complex alone).
_ELIGIBLE = (torch.float32, torch.float16, torch.bfloat16)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype in effect for ``device``'s type, or None where autocast is off."""
    kind = torch.device(device).type
    if not torch.amp.is_autocast_available(kind) or not torch.is_autocast_enabled(kind):
        return None
    return torch.get_autocast_dtype(kind)


def autocast_key() -> tuple:
    """The autocast state of every device type a plan can run on (part of cache keys)."""
    return tuple(torch.get_autocast_dtype(d) if torch.is_autocast_enabled(d) else None for d in AUTOCAST_DEVICES)


def casts_result(dtype: torch.dtype, autocast: torch.dtype | None) -> bool:
    """Whether a plan computing in ``dtype`` under ``autocast`` ends in autocast's dtype."""
    return autocast is not None and dtype in _ELIGIBLE and dtype != autocast


def mixed_floats(
    named: Sequence[tuple[str, torch.dtype]], autocast: torch.dtype | None
) -> tuple[tuple[str, torch.dtype], tuple[str, torch.dtype]] | None:
    """The first two arguments whose floating (or complex) dtypes differ, as torch's
    convolutions and matrix products refuse them; None when they agree. Under autocast,
    the dtypes autocast casts may mix (as they may in torch)."""
    first: tuple[str, torch.dtype] | None = None
    for name, dtype in named:
        if not (dtype.is_floating_point or dtype.is_complex):
            continue
        if first is None:
            first = (name, dtype)
        elif dtype != first[1] and not (autocast is not None and dtype in _ELIGIBLE and first[1] in _ELIGIBLE):
            return first, (name, dtype)
    return None
