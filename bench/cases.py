"""Benchmark cases as data, and the three variants that compute each of them.

A case is one convolution-related op on one layer's geometry. Every variant computes the
same tensor from the same inputs:

- ``pytorch``: PyTorch's own way (``F.conv*d``, ``torch.nn.grad.conv*d_weight`` /
  ``conv*d_input``, ``F.conv_transpose*d``, ``F.unfold`` + mean + Gram);
- ``tndsl``: ``tndsl.compile(case.program())[case.definition]``, called with the inputs
  by name (compiled once per case; the first call plans and caches);
- ``einconv``: einconv 0.1.0's einsum expression (dense Π, ``simplify=True``), built once
  per case, then one ``torch.einsum`` per call.

Kronecker factors use the normalisation of Dangel (2023), which einconv implements:
KFC / KFAC-expand Ω = 1/N Σ_n ⟦X_n⟧⟦X_n⟧ᵀ; KFAC-reduce Ω̂ = 1/N Σ_n â_n â_nᵀ with
â_n = 1/O Σ_o ⟦X_n⟧[:, o], where ⟦X_n⟧ is the unfolded input [C·K, O] of sample n.
A depthwise case has one factor per channel, ``[C, K, K]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Shape", "Case", "CASES", "VARIANTS", "SkipVariant", "OPS", "tiny"]

OPS = ("forward", "weight_vjp", "input_vjp", "conv_transpose", "kfc", "kfac_reduce")

_DEFINITION = {
    "forward": "Y",
    "weight_vjp": "grad_W",
    "input_vjp": "grad_X",
    "conv_transpose": "Y",
    "kfc": "KFC",
    "kfac_reduce": "KFAC_reduce",
}


class SkipVariant(Exception):
    """A variant that cannot run here (e.g. its package is not installed)."""


@dataclass(frozen=True)
class Shape:
    """Batch size and spatial side length (equal along every spatial dimension)."""

    batch: int
    side: int


@dataclass(frozen=True)
class Case:
    """One op on one layer. ``side`` is the input side (for ``conv_transpose``: Π's output
    side, i.e. the side of the transpose convolution's input); ``c_out`` is unused by the
    Kronecker factors; ``depthwise`` means groups = channels (``forward``, ``kfac_reduce``)."""

    name: str
    title: str
    op: str
    c_in: int
    c_out: int
    kernel: int
    full: Shape
    small: Shape
    stride: int = 1
    padding: int = 0
    dims: int = 2
    depthwise: bool = False

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"{self.name}: unknown op {self.op!r}")
        if self.op in ("kfc", "kfac_reduce") and self.dims != 2:
            raise ValueError(f"{self.name}: Kronecker factors use F.unfold, which is 2-d only")

    @property
    def definition(self) -> str:
        """Name of the tndsl definition that computes the op."""
        return _DEFINITION[self.op]

    def shape(self, size: str) -> Shape:
        """The ``Shape`` for ``size`` ('small' or 'full')."""
        return {"small": self.small, "full": self.full}[size]

    def conv_out(self, side: int) -> int:
        """Output side of the convolution (Π's output leg) for input side ``side``."""
        return (side + 2 * self.padding - self.kernel) // self.stride + 1

    def transpose_out(self, side: int) -> int:
        """Output side of the transpose convolution for input side ``side``."""
        return (side - 1) * self.stride - 2 * self.padding + self.kernel

    def input_shapes(self, size: str) -> dict[str, tuple[int, ...]]:
        """Shapes of the inputs, by the names the tndsl program declares."""
        n, side = self.shape(size).batch, self.shape(size).side
        spatial, kern = (side,) * self.dims, (self.kernel,) * self.dims
        out = (self.conv_out(side),) * self.dims
        if self.op == "forward":
            w_in = 1 if self.depthwise else self.c_in
            return {"X": (n, self.c_in, *spatial), "W": (self.c_out, w_in, *kern)}
        if self.op == "weight_vjp":
            return {"X": (n, self.c_in, *spatial), "V": (n, self.c_out, *out)}
        if self.op == "input_vjp":
            return {"W": (self.c_out, self.c_in, *kern), "V": (n, self.c_out, *out)}
        if self.op == "conv_transpose":
            return {"X": (n, self.c_in, *spatial), "W": (self.c_in, self.c_out, *kern)}
        return {"X": (n, self.c_in, *spatial)}

    def inputs(self, size: str, device: str, seed: int = 0) -> dict[str, Tensor]:
        """Random float32 inputs on ``device`` (deterministic for a given seed)."""
        gen = torch.Generator(device=device).manual_seed(seed)
        return {
            name: torch.randn(shape, generator=gen, device=device)
            for name, shape in self.input_shapes(size).items()
        }

    def program(self) -> str:
        """The ``.tn`` program whose definition ``self.definition`` computes the op."""
        ds = range(1, self.dims + 1)
        i, o, k, l = (", ".join(f"{c}{d}" for d in ds) for c in "iokl")
        pis = " * ".join(f"P[i{d}, o{d}, k{d}]" for d in ds)
        kk = " ".join(f"k{d}" for d in ds)
        ll = " ".join(f"l{d}" for d in ds)
        sizes = "".join(f"size k{d} = {self.kernel}\n" for d in ds)
        head = f"# {self.title}\npattern P = conv(stride={self.stride}, padding={self.padding})\n"
        if self.op == "forward" and self.depthwise:
            body = (
                f"input X[n, c, {i}]\ninput W[c, one, {k}]\n"
                f"Y[n, c, {o}] = X[n, c, {i}] * {pis} * W[c, one, {k}]\n"
            )
        elif self.op == "forward":
            body = (
                f"input X[n, ci, {i}]\ninput W[co, ci, {k}]\n"
                f"Y[n, co, {o}] = X[n, ci, {i}] * {pis} * W[co, ci, {k}]\n"
            )
        elif self.op == "weight_vjp":
            body = (
                f"input X[n, ci, {i}]\ninput V[n, co, {o}]\n{sizes}"
                f"grad_W[co, ci, {k}] = X[n, ci, {i}] * {pis} * V[n, co, {o}]\n"
            )
        elif self.op == "input_vjp":
            body = (
                f"input W[co, ci, {k}]\ninput V[n, co, {o}]\n"
                f"grad_X[n, ci, {i}] = V[n, co, {o}] * {pis} * W[co, ci, {k}]\n"
            )
        elif self.op == "conv_transpose":
            body = (
                f"input X[n, ci, {o}]\ninput W[ci, co, {k}]\n"
                f"Y[n, co, {i}] = X[n, ci, {o}] * {pis} * W[ci, co, {k}]\n"
            )
        elif self.op == "kfc":
            body = (
                f"input X[n, c, {i}]\n{sizes}"
                f"U[n, c, {k}, {o}] = X[n, c, {i}] * {pis}\n"
                f"KFC[(c {kk}), (d {ll})] = U[n, c, {k}, {o}] * U[n, d, {l}, {o}] / |n|\n"
            )
        else:
            scale = " ".join(f"/ |o{d}|" for d in ds)
            if self.depthwise:
                out, second = f"c, ({kk}), ({ll})", f"A[n, c, {l}]"
            else:
                out, second = f"(c {kk}), (d {ll})", f"A[n, d, {l}]"
            body = (
                f"input X[n, c, {i}]\n{sizes}"
                f"A[n, c, {k}] = X[n, c, {i}] * {pis} {scale}\n"
                f"KFAC_reduce[{out}] = A[n, c, {k}] * {second} / |n|\n"
            )
        return head + body


def _pytorch(case: Case, t: dict[str, Tensor]) -> Callable[[], Tensor]:
    """PyTorch's own way to compute the op."""
    d, s, p, k = case.dims, case.stride, case.padding, case.kernel
    if case.op == "forward":
        conv = getattr(F, f"conv{d}d")
        groups = case.c_in if case.depthwise else 1
        return lambda: conv(t["X"], t["W"], stride=s, padding=p, groups=groups)
    if case.op == "weight_vjp":
        grad_w = getattr(torch.nn.grad, f"conv{d}d_weight")
        w_shape = (case.c_out, case.c_in) + (k,) * d
        return lambda: grad_w(t["X"], w_shape, t["V"], stride=s, padding=p)
    if case.op == "input_vjp":
        grad_x = getattr(torch.nn.grad, f"conv{d}d_input")
        side = _input_side(case, t["V"].shape[2])
        x_shape = (t["V"].shape[0], case.c_in) + (side,) * d
        return lambda: grad_x(x_shape, t["W"], t["V"], stride=s, padding=p)
    if case.op == "conv_transpose":
        conv_t = getattr(F, f"conv_transpose{d}d")
        return lambda: conv_t(t["X"], t["W"], stride=s, padding=p)
    x, n = t["X"], t["X"].shape[0]
    if case.op == "kfc":

        def kfc() -> Tensor:
            u = F.unfold(x, k, padding=p, stride=s)  # [N, C·K, O]
            u = u.transpose(0, 1).reshape(u.shape[1], -1)
            return u @ u.T / n

        return kfc

    def kfac_reduce() -> Tensor:
        a = F.unfold(x, k, padding=p, stride=s).mean(-1)  # [N, C·K]
        if case.depthwise:
            a = a.reshape(n, case.c_in, k * k).transpose(0, 1)  # [C, N, K]
            return a.transpose(1, 2) @ a / n
        return a.T @ a / n

    return kfac_reduce


def _input_side(case: Case, out_side: int) -> int:
    """Input side of a (stride-1-exact) convolution with output side ``out_side``."""
    side = (out_side - 1) * case.stride - 2 * case.padding + case.kernel
    if case.conv_out(side) != out_side:
        raise ValueError(f"{case.name}: no input side gives output side {out_side}")
    return side


def _einconv(case: Case, t: dict[str, Tensor]) -> Callable[[], Tensor]:
    """einconv 0.1.0: the simplified dense-Π einsum expression, built once."""
    try:
        from einconv.expressions import (
            convNd_forward,
            convNd_input_vjp,
            convNd_kfac_reduce,
            convNd_kfc,
            convNd_weight_vjp,
        )
    except ImportError as error:
        raise SkipVariant(f"einconv not installed ({error})") from None
    common = {"stride": case.stride, "padding": case.padding, "simplify": True}
    groups = case.c_in if case.depthwise else 1
    if case.op == "forward":
        expr = convNd_forward.einsum_expression(t["X"], t["W"], groups=groups, **common)
    elif case.op == "weight_vjp":
        expr = convNd_weight_vjp.einsum_expression(t["X"], t["V"], case.kernel, **common)
    elif case.op == "input_vjp":
        side = _input_side(case, t["V"].shape[2])
        expr = convNd_input_vjp.einsum_expression(t["W"], t["V"], side, **common)
    elif case.op == "conv_transpose":
        side = case.transpose_out(t["X"].shape[2])
        expr = convNd_input_vjp.einsum_expression(t["W"], t["X"], side, **common)
    elif case.op == "kfc":
        expr = convNd_kfc.einsum_expression(t["X"], case.kernel, **common)
    else:
        expr = convNd_kfac_reduce.einsum_expression(t["X"], case.kernel, groups=groups, **common)
    equation, operands, shape = expr
    return lambda: torch.einsum(equation, *operands).reshape(shape)


def _tndsl(case: Case, t: dict[str, Tensor]) -> Callable[[], Tensor]:
    """tndsl: the case's program, compiled once; inputs passed by name."""
    import tndsl

    function = tndsl.compile(case.program())[case.definition]
    return lambda: function(**t)


VARIANTS: dict[str, Callable[[Case, dict[str, Tensor]], Callable[[], Tensor]]] = {
    "pytorch": _pytorch,
    "tndsl": _tndsl,
    "einconv": _einconv,
}
"""Variant name → setup(case, inputs) returning the timed zero-argument call.
``pytorch`` comes first: it is the reference for ratios and errors."""

_RESNET_L1 = {"c_in": 64, "c_out": 64, "kernel": 3, "padding": 1}
_RESNET_SIZES = {"full": Shape(32, 56), "small": Shape(4, 56)}

CASES: dict[str, Case] = {
    case.name: case
    for case in [
        Case("kfac_reduce_convnext_stem", "KFAC-reduce factor, ConvNeXt-base stem (3→128, k=s=4, 256²)",
             "kfac_reduce", c_in=3, c_out=128, kernel=4, stride=4,
             full=Shape(32, 256), small=Shape(8, 256)),
        Case("kfac_reduce_convnext_dw", "KFAC-reduce factor, ConvNeXt-base depthwise 7×7 (128 ch, p=3, 64²)",
             "kfac_reduce", c_in=128, c_out=128, kernel=7, padding=3, depthwise=True,
             full=Shape(32, 64), small=Shape(2, 32)),
        Case("resnet18_forward", "conv forward, ResNet-18 layer1 (64→64, 3×3, p=1, 56²)",
             "forward", **_RESNET_L1, **_RESNET_SIZES),
        Case("resnet18_weight_vjp", "weight VJP, ResNet-18 layer1 (64→64, 3×3, p=1, 56²)",
             "weight_vjp", **_RESNET_L1, **_RESNET_SIZES),
        Case("resnet18_input_vjp", "input VJP, ResNet-18 layer1 (64→64, 3×3, p=1, 56²)",
             "input_vjp", **_RESNET_L1, **_RESNET_SIZES),
        Case("resnet18_kfc", "KFC / KFAC-expand factor, ResNet-18 layer1 (64 ch, 3×3, p=1, 56²)",
             "kfc", **_RESNET_L1, full=Shape(32, 56), small=Shape(2, 56)),
        Case("resnet18_strided_forward", "conv forward, ResNet-18 layer2 strided (64→128, 3×3, s=2, p=1, 56²)",
             "forward", c_in=64, c_out=128, kernel=3, stride=2, padding=1, **_RESNET_SIZES),
        Case("vgg19_forward", "conv forward, VGG-19 block3 (256→256, 3×3, p=1, 56²)",
             "forward", c_in=256, c_out=256, kernel=3, padding=1,
             full=Shape(32, 56), small=Shape(2, 28)),
        Case("mobilenetv2_dw_forward", "conv forward, MobileNetV2 depthwise (144 ch, 3×3, s=2, p=1, 56²)",
             "forward", c_in=144, c_out=144, kernel=3, stride=2, padding=1, depthwise=True,
             **_RESNET_SIZES),
        Case("conv3d_forward", "conv3d forward (16→32, 3³, p=1, 16³)",
             "forward", c_in=16, c_out=32, kernel=3, padding=1, dims=3,
             full=Shape(32, 16), small=Shape(4, 16)),
        Case("conv_transpose_forward", "transpose conv forward (64→32, 4×4, s=2, p=1, 28²→56²)",
             "conv_transpose", c_in=64, c_out=32, kernel=4, stride=2, padding=1,
             full=Shape(32, 28), small=Shape(4, 28)),
    ]
}


def tiny(case: Case) -> Case:
    """``case`` shrunk to batch 1 and side 8 (both sizes), for the smoke run."""
    return dataclasses.replace(case, full=Shape(1, 8), small=Shape(1, 8))

