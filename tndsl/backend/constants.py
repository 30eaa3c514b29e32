"""Dense values of the constant tensor kinds: Π, a Π summed over its out-leg, slices, deltas.

The planner folds these at plan time (or lowers them to views); the dense reference
materializes them. One place builds them, so both agree.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import torch

from ..ir import Kind, Network, PatternSpec, Tensor

__all__ = ["dense_pattern", "dense_delta", "dense_slice", "constant_value", "ConstantCache", "MAX_CONSTANT_BYTES"]

#: The most bytes of dense pattern constants one term's plan may hold; a plan needing
#: more is not a candidate (raise it here if a dense plan is really wanted).
MAX_CONSTANT_BYTES = 256 << 20


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
    o = torch.arange(size_out, device=device).view(1, -1)
    i = torch.arange(size_in, device=device).view(-1, 1)
    return (i == start + step * o).to(dtype)  # no data-dependent indexing: traceable, fake-safe


def constant_value(network: Network, tensor: Tensor, sizes, dtype: torch.dtype, device) -> torch.Tensor:
    """The dense value of a non-input tensor occurrence for the given label sizes."""
    shape = [int(sizes[leg]) for leg in tensor.legs]
    if tensor.kind is Kind.PATTERN:
        size_in, size_out, kernel = shape
        return dense_pattern(network.spec_of(tensor), size_in, size_out, kernel, dtype, device)
    if tensor.kind is Kind.PATTERN_SUM:
        spec = network.spec_of(tensor)
        size_in, kernel = shape
        return dense_pattern(spec, size_in, spec.out_size(size_in, kernel), kernel, dtype, device).sum(1)
    if tensor.kind is Kind.SLICE and tensor.slice is not None:
        size_in, size_out = shape
        return dense_slice(tensor.slice.start, tensor.slice.step, size_in, size_out, dtype, device)
    if tensor.kind is Kind.DELTA:
        if len(set(shape)) > 1:
            raise ValueError(f"delta with legs of different sizes {shape}")
        return dense_delta(len(shape), shape[0] if shape else 1, dtype, device)
    raise ValueError(f"not a constant tensor kind: {tensor.kind!r}")


class ConstantCache:
    """A bounded LRU cache of plan-time constants, owned by one compiled function.

    Keys say what a constant is (kind, parameters, shape, dtype, device); at most
    ``max_bytes`` of tensors stay cached, least recently used first out. Freed with its
    function.
    """

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._values: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._values)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: tuple, make) -> torch.Tensor:
        """The cached value for ``key``, made by ``make()`` on a miss."""
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
            return value
        value = make()
        size = value.numel() * value.element_size()
        if size <= self.max_bytes:
            self._values[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._values.popitem(last=False)
                self._bytes -= old.numel() * old.element_size()
        return value

    def tensor_value(self, network: Network, tensor: Tensor, sizes: Mapping[str, int], dtype, device) -> torch.Tensor:
        """A constant tensor occurrence's dense value (Π by its parameters, not its name)."""
        shape = tuple(int(sizes[leg]) for leg in tensor.legs)
        what = network.spec_of(tensor) if tensor.kind.uses_pattern else tensor.slice
        key = (tensor.kind, what, shape, dtype, str(device))
        return self.get(key, lambda: constant_value(network, tensor, sizes, dtype, device))

    def zero(self, dtype, device) -> torch.Tensor:
        """A 0-d zero of ``dtype`` on ``device``."""
        return self.get(("zero", dtype, str(device)), lambda: torch.zeros((), dtype=dtype, device=device))

    def ones(self, dtype, device) -> torch.Tensor:
        """A 0-d one of ``dtype`` on ``device`` (a term with no tensors)."""
        return self.get(("one", dtype, str(device)), lambda: torch.ones((), dtype=dtype, device=device))
