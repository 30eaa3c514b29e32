"""Index patterns Π: the tensor that turns convolution into a tensor network.

``Π[i, o, k] = 1`` iff ``i = o·stride + k·dilation − pad_left`` with ``0 ≤ i < I``, else 0.
Size rules (docs/convolutions.md):

- forward: ``O = ⌊(I − output_padding + pad_left + pad_right − dilation·(K−1) − 1) / stride⌋ + 1``;
- transpose: ``I = (O−1)·stride − pad_left − pad_right + dilation·(K−1) + 1 + output_padding``;
- kernel: ``K`` follows from ``I`` and ``O`` only where that is unique, which holds exactly
  when ``stride ≤ dilation`` and the padding does not depend on ``K`` (not ``'same'``).

``'same'`` pads ``dilation·(K−1)`` in total, ``total // 2`` on the left (stride 1 only, as
torch); ``'valid'`` pads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["PatternSpec", "PatternParamError", "PATTERN_KINDS", "Family", "family"]

PATTERN_KINDS = ("conv",)
PARAMS = ("stride", "padding", "dilation", "output_padding")


class PatternParamError(ValueError):
    """Raised by :meth:`PatternSpec.create` with the offending parameter's name."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(message)


Padding = tuple[int, int] | str


@dataclass(frozen=True)
class PatternSpec:
    """Parameters of one convolution index pattern ``conv(...)``."""

    stride: int = 1
    padding: Padding = (0, 0)
    dilation: int = 1
    output_padding: int = 0

    @staticmethod
    def create(**params: object) -> "PatternSpec":
        """Validate user parameters (ints, a pair, ``'same'``/``'valid'``) into a spec."""
        for name in params:
            if name not in PARAMS:
                raise PatternParamError(name, f"unknown parameter {name!r} of conv(); expected one of {', '.join(PARAMS)}")
        stride = _positive(params, "stride")
        dilation = _positive(params, "dilation")
        output_padding = params.get("output_padding", 0)
        if not isinstance(output_padding, int) or isinstance(output_padding, bool) or output_padding < 0:
            raise PatternParamError("output_padding", "output_padding must be a non-negative integer")
        if output_padding >= max(stride, dilation):
            raise PatternParamError(
                "output_padding",
                f"output_padding must be smaller than stride or dilation ({output_padding} >= {max(stride, dilation)}), as in torch",
            )
        padding = params.get("padding", 0)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise PatternParamError("padding", f"padding must be an integer, a pair, 'same' or 'valid', not {padding!r}")
            if padding == "same" and stride != 1:
                raise PatternParamError("padding", "padding='same' needs stride=1 (as in torch)")
            pad: Padding = (0, 0) if padding == "valid" else "same"
        elif isinstance(padding, tuple):
            if len(padding) != 2 or any(not isinstance(p, int) or p < 0 for p in padding):
                raise PatternParamError("padding", "padding pair must be two non-negative integers (left, right)")
            pad = (padding[0], padding[1])
        elif isinstance(padding, int) and not isinstance(padding, bool):
            if padding < 0:
                raise PatternParamError("padding", f"padding must be non-negative, not {padding}")
            pad = (padding, padding)
        else:
            raise PatternParamError("padding", f"padding must be an integer, a pair, 'same' or 'valid', not {padding!r}")
        return PatternSpec(stride, pad, dilation, output_padding)

    # -- size rules -------------------------------------------------------------------
    def pads(self, kernel: int) -> tuple[int, int]:
        """Left and right padding for kernel size ``kernel``."""
        if self.padding == "same":
            total = self.dilation * (kernel - 1)
            return total // 2, total - total // 2
        assert isinstance(self.padding, tuple)
        return self.padding

    def out_size(self, in_size: int, kernel: int) -> int:
        """Output positions: the windows that fit, not counting the ``output_padding``
        positions a transpose convolution adds at the end (which no window reaches)."""
        left, right = self.pads(kernel)
        return (in_size - self.output_padding + left + right - self.dilation * (kernel - 1) - 1) // self.stride + 1

    def in_size(self, out_size: int, kernel: int) -> int:
        left, right = self.pads(kernel)
        return (out_size - 1) * self.stride - left - right + self.dilation * (kernel - 1) + 1 + self.output_padding

    @property
    def kernel_inferable(self) -> bool:
        """Whether ``K`` is determined by ``I`` and ``O`` (see module docstring)."""
        return self.padding != "same" and self.stride <= self.dilation

    def kernel_size(self, in_size: int, out_size: int) -> int | None:
        """The kernel size matching ``in_size`` and ``out_size``; None if none exists."""
        assert self.kernel_inferable
        left, right = self.pads(1)
        # O - 1 = floor((span - d (K - 1)) / s)  <=>  span - s O < d (K - 1) <= span - s (O - 1):
        # an interval of length s / d <= 1, so the largest candidate is the only one (O(1),
        # whatever the sizes).
        span = in_size + left + right - 1
        kernel = (span - self.stride * (out_size - 1)) // self.dilation + 1
        if kernel >= 1 and self.out_size(in_size, kernel) == out_size:
            return kernel
        return None

    def index(self, out: int, kernel_pos: int, kernel: int) -> int:
        """The input position that output ``out`` reads at kernel position ``kernel_pos``
        (may lie in the padding: outside ``[0, I)``)."""
        return out * self.stride + kernel_pos * self.dilation - self.pads(kernel)[0]

    def describe(self) -> str:
        """Canonical ``.tn`` text of the parameters, e.g. ``conv(stride=2, padding=1)``."""
        parts = []
        if self.stride != 1:
            parts.append(f"stride={self.stride}")
        if self.padding == "same":
            parts.append("padding='same'")
        elif isinstance(self.padding, tuple) and self.padding != (0, 0):
            left, right = self.padding
            parts.append(f"padding={left}" if left == right else f"padding=({left}, {right})")
        if self.dilation != 1:
            parts.append(f"dilation={self.dilation}")
        if self.output_padding:
            parts.append(f"output_padding={self.output_padding}")
        return f"conv({', '.join(parts)})"


def _positive(params: dict, name: str) -> int:
    value = params.get(name, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PatternParamError(name, f"{name} must be a positive integer, not {value!r}")
    return value


#: A pattern declaration: one spec, or one per spatial dimension.
Family = Union[PatternSpec, tuple[PatternSpec, ...]]


def family(**params: object) -> Family:
    """Validate a declaration's parameters into one spec or one spec per dimension.

    An int (or ``'same'``/``'valid'``) means every dimension. A tuple of ``stride``,
    ``dilation`` or ``output_padding`` gives one value per dimension, and then a ``padding``
    tuple does too (each entry an int or a ``(left, right)`` pair). Without such a tuple, a
    ``padding`` of two ints is the ``(left, right)`` pair of a one-dimensional pattern; a
    padding tuple of pairs, or of other than two ints, is per dimension.
    """
    lengths = {name: len(value) for name, value in params.items() if isinstance(value, tuple) and name != "padding"}
    padding = params.get("padding")
    per_dim_padding = isinstance(padding, tuple) and (
        bool(lengths) or len(padding) != 2 or any(isinstance(p, tuple) for p in padding)
    )
    if per_dim_padding:
        lengths["padding"] = len(padding)  # type: ignore[arg-type]
    if not lengths:
        return PatternSpec.create(**params)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise PatternParamError(next(iter(lengths)), f"per-dimension parameters need one value per dimension ({shown})")
    (dims,) = set(lengths.values())
    if dims < 1:
        raise PatternParamError(next(iter(lengths)), "a per-dimension parameter needs at least one value")
    def pick(name: str, value: object, d: int) -> object:
        return value[d] if name in lengths and isinstance(value, tuple) else value

    return tuple(PatternSpec.create(**{name: pick(name, value, d) for name, value in params.items()}) for d in range(dims))
