"""Dense values of the constant tensor kinds: Π, a Π summed over its out-leg, slices, deltas.

The planner folds these at plan time (or lowers them to views); the dense reference
materializes them. One place builds them, so both agree.
"""

from __future__ import annotations

import torch

from ..ir import Kind, Network, PatternSpec, Tensor

__all__ = ["dense_pattern", "dense_delta", "dense_slice", "constant_value"]


def dense_pattern(spec: PatternSpec, size_in: int, size_out: int, kernel: int, dtype, device) -> torch.Tensor:
    """The materialized Π of shape ``[I, O, K]``, from the index formula on integer ranges."""
    o = torch.arange(size_out, device=device).view(-1, 1)
    k = torch.arange(kernel, device=device).view(1, -1)
    i = spec.index(o, k, kernel)
    return (torch.arange(size_in, device=device).view(-1, 1, 1) == i).to(dtype)


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
    if tensor.kind is Kind.PATTERN:
        return dense_pattern(network.pattern(tensor.name), *shape, dtype, device)
    if tensor.kind is Kind.PATTERN_SUM:
        spec = network.pattern(tensor.name)
        size_in, kernel = shape
        return dense_pattern(spec, size_in, spec.out_size(size_in, kernel), kernel, dtype, device).sum(1)
    if tensor.kind is Kind.SLICE:
        return dense_slice(tensor.slice.start, tensor.slice.step, *shape, dtype, device)
    if tensor.kind is Kind.DELTA:
        if len(set(shape)) > 1:
            raise ValueError(f"delta with legs of different sizes {shape}")
        return dense_delta(len(shape), shape[0] if shape else 1, dtype, device)
    raise ValueError(f"not a constant tensor kind: {tensor.kind!r}")
