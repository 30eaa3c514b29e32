"""Dense values of the constant tensor kinds: Π, a Π summed over its out-leg, slices, deltas.

The planner folds these at plan time (or lowers them to views); the dense reference
materializes them. One place builds them, so both agree.
"""

from __future__ import annotations

import re

import torch

from .ir import KIND_DELTA, KIND_PATTERN, KIND_PATTERN_SUM, KIND_SLICE, Network, Tensor

__all__ = ["slice_name", "slice_params", "dense_delta", "dense_slice", "constant_value"]

_SLICE = re.compile(r"slice\((-?\d+), (\d+)\)")


def slice_name(start: int, step: int) -> str:
    """The name of the slice tensor ``S[i, o] = 1`` iff ``i = start + step·o``."""
    return f"slice({start}, {step})"


def slice_params(name: str) -> tuple[int, int]:
    match = _SLICE.fullmatch(name)
    if match is None:
        raise ValueError(f"not a slice tensor name: {name!r}")
    return int(match.group(1)), int(match.group(2))


def dense_delta(legs: int, size: int, dtype: torch.dtype, device: torch.device | str = "cpu") -> torch.Tensor:
    """The copy tensor with ``legs`` legs of size ``size``: 1 where all indices agree."""
    result = torch.zeros((size,) * legs, dtype=dtype, device=device)
    if legs == 0:
        return result + 1
    index = torch.arange(size, device=device)
    result[(index,) * legs] = 1
    return result


def dense_slice(start: int, step: int, size_in: int, size_out: int, dtype, device) -> torch.Tensor:
    """``S[i, o] = 1`` iff ``i = start + step·o`` and ``0 ≤ i < size_in``."""
    o = torch.arange(size_out, device=device)
    i = start + step * o
    valid = (i >= 0) & (i < size_in)
    result = torch.zeros(size_in, size_out, dtype=dtype, device=device)
    result[i[valid], o[valid]] = 1
    return result


def constant_value(network: Network, tensor: Tensor, sizes, dtype: torch.dtype, device) -> torch.Tensor:
    """The dense value of a non-input tensor occurrence for the given label sizes."""
    shape = [int(sizes[leg]) for leg in tensor.legs]
    if tensor.kind == KIND_PATTERN:
        return network.pattern(tensor.name).dense(*shape, dtype, device)
    if tensor.kind == KIND_PATTERN_SUM:
        spec = network.pattern(tensor.name)
        size_in, kernel = shape
        return spec.dense(size_in, spec.out_size(size_in, kernel), kernel, dtype, device).sum(1)
    if tensor.kind == KIND_SLICE:
        return dense_slice(*slice_params(tensor.name), *shape, dtype, device)
    if tensor.kind == KIND_DELTA:
        if len(set(shape)) > 1:
            raise ValueError(f"delta with legs of different sizes {shape}")
        return dense_delta(len(shape), shape[0] if shape else 1, dtype, device)
    raise ValueError(f"not a constant tensor kind: {tensor.kind!r}")
