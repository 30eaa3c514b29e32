"""What a plan depends on besides the network: the call's shapes, dtypes, device and sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

__all__ = ["Signature", "promote"]


def promote(tensors: Sequence[torch.Tensor]) -> tuple[torch.dtype, torch.device]:
    """The computation's dtype and device: torch's promotion of the arguments' dtypes,
    except that integer and bool arguments compute in int64 — what ``torch.sum`` gives for
    them, and a dtype every contraction supports (``bmm`` has no bool kernel)."""
    if not tensors:
        return torch.get_default_dtype(), torch.device("cpu")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.int64
    return dtype, tensors[0].device


@dataclass(frozen=True)
class Signature:
    """Shapes, dtypes and device of the arguments, the promoted dtype, and every label's size."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[torch.dtype, ...]
    device: torch.device
    dtype: torch.dtype
    sizes: tuple[tuple[str, int], ...]
    autocast: torch.dtype | None = None  # torch.autocast's dtype for the device, when on

    @staticmethod
    def of(tensors: Sequence[torch.Tensor], sizes: Mapping[str, int], autocast: torch.dtype | None = None) -> "Signature":
        dtype, device = promote(tensors)
        shapes = tuple(tuple(t.shape) for t in tensors)
        return Signature(shapes, tuple(t.dtype for t in tensors), device, dtype, tuple(sorted(sizes.items())), autocast)
