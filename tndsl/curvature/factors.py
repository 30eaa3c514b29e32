"""Kronecker factors of ``torch.nn`` layers: the input-based factor (KFAC-expand / KFC and
KFAC-reduce) from the ``.tn`` program shipped next to this module, and the output-gradient
factor. Scale conventions: docs/optimizers.md."""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from ..backend.program import Program, compile
from ..ir import PatternSpec, TnError, family

__all__ = ["input_factor", "output_factor", "input_sum", "output_sum", "Approx", "Scale", "SUPPORTED", "GRAM_MIN_POSITIONS"]

Approx = Literal["expand", "reduce"]
Scale = Literal["mean", "sum"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
#: The layer types with factors.
SUPPORTED = (nn.Linear, *_CONV, *_TRANSPOSE)
#: KFAC-expand of a convolution with fewer output positions than this multiplies the patches
#: (from the program's unfolding) instead of calling its ``Expand`` definition: measured on
#: ResNet-18's layers, the planned Gram-first contraction wins from 256 positions on (up to
#: 3× at 64×64) but loses up to 4× on 4×4 and smaller images, where its last contraction
#: with the index-pattern pair dominates and unfolding duplicates little.
GRAM_MIN_POSITIONS = 128


@lru_cache(maxsize=1)
def program() -> Program:
    """The shipped factor program (its parameters are bound per layer, each binding once)."""
    text = resources.files(__package__).joinpath("kfac.tn").read_text(encoding="utf-8")
    return compile(text, "tndsl/curvature/kfac.tn")


def _check(layer: nn.Module, approx: str) -> None:
    if not isinstance(layer, SUPPORTED):
        names = ", ".join(t.__name__ for t in SUPPORTED)
        raise TnError(f"no Kronecker factors for {type(layer).__name__}; supported: {names}")
    if approx not in ("expand", "reduce"):
        raise TnError(f"approx must be 'expand' or 'reduce', not {approx!r}")
    mode = getattr(layer, "padding_mode", "zeros")
    if mode != "zeros":
        raise TnError(f"{type(layer).__name__} with padding_mode={mode!r}: only 'zeros' padding has factors here")


def _params(layer: _ConvNd) -> dict[str, object]:
    """The layer's hyperparameters as the program's parameters (tuples: one per dimension)."""
    padding = layer.padding if isinstance(layer.padding, str) else tuple(layer.padding)
    out: dict[str, object] = {"stride": tuple(layer.stride), "padding": padding, "dilation": tuple(layer.dilation)}
    out["output_padding"] = tuple(layer.output_padding) if isinstance(layer, _TRANSPOSE) else (0,) * len(layer.stride)
    return out


def _positions(layer: _ConvNd, x: Tensor) -> int:
    """How many spatial positions the weight is shared over (the layer's output's)."""
    specs = family(**_params(layer))
    assert isinstance(specs, tuple)
    sizes = x.shape[2:]
    kernel = layer.kernel_size
    if isinstance(layer, _TRANSPOSE):
        return math.prod(s.in_size(n, k) for s, n, k in zip(specs, sizes, kernel))
    return math.prod(PatternSpec.out_size(s, n, k) for s, n, k in zip(specs, sizes, kernel))


def input_sum(
    layer: nn.Module, x: Tensor, approx: Approx = "expand", bias: bool | None = None, *, group_mean: bool = False
) -> Tensor:
    """The unscaled input-based factor per group, ``[groups, D, D]``: for ``expand`` the sum
    over samples and positions of the unfolded input's outer products, for ``reduce`` the
    sum over samples of the outer products of its average over positions; ``D`` counts
    ``in_channels/groups · prod(kernel_size)`` (+ 1, the bias row, with ``bias``).
    ``group_mean`` averages the input over channel groups first, so the unfolded input is
    the patches averaged over groups (singd's and curvlinops' convention): ``[1, D, D]``."""
    _check(layer, approx)
    bias = layer.bias is not None if bias is None else bias
    if isinstance(layer, nn.Linear):
        flat = x.reshape(x.shape[0], -1, x.shape[-1])  # [n, shared, d]
        if approx == "reduce":
            flat = flat.mean(1, keepdim=True)
        if bias:
            flat = torch.cat([flat, flat.new_ones(*flat.shape[:-1], 1)], -1)
        return torch.einsum("nsi,nsj->ij", flat, flat).unsqueeze(0)
    layer = cast(_ConvNd, layer)
    dims = layer.weight.dim() - 2
    prefix = "T" if isinstance(layer, _TRANSPOSE) else ""
    sizes = {"g": layer.groups, **{f"k{d + 1}": k for d, k in enumerate(layer.kernel_size)}}
    if x.dim() != dims + 2:
        raise TnError(f"{type(layer).__name__} takes inputs with {dims + 2} axes (batched), got shape {tuple(x.shape)}")
    groups = layer.groups
    if group_mean and groups > 1:
        x = x.reshape(x.shape[0], groups, -1, *x.shape[2:]).mean(1)
        sizes["g"] = 1
    params = _params(layer)
    if approx == "reduce":
        mean = program()[f"{prefix}Mean{dims}"](x, **sizes, **params)  # [n, g, D]
        if bias:
            mean = torch.cat([mean, mean.new_ones(*mean.shape[:-1], 1)], -1)
        return torch.einsum("ngi,ngj->gij", mean, mean)
    positions = _positions(layer, x)
    if positions < GRAM_MIN_POSITIONS:  # small images: the patches, then one product
        u = program()[f"{prefix or 'U'}{dims}"](x, **sizes, **params)  # [n, (g c k...), (positions)]
        u = u.reshape(u.shape[0], sizes["g"], -1, positions)
        gram = torch.einsum("ngip,ngjp->gij", u, u)
        total = u.sum((0, 3)) if bias else None
    else:
        gram = program()[f"{prefix}Expand{dims}"](x, **sizes, **params)
        total = program()[f"{prefix}Sum{dims}"](x, **sizes, **params) if bias else None  # [g, D]
    if total is None:
        return gram
    count = torch.full((gram.shape[0], 1), float(x.shape[0] * positions), dtype=gram.dtype, device=gram.device)
    top = torch.cat([gram, total.unsqueeze(-1)], -1)
    return torch.cat([top, torch.cat([total, count], -1).unsqueeze(1)], 1)


def output_sum(layer: nn.Module, grad_output: Tensor, approx: Approx = "expand", *, per_group: bool = True) -> Tensor:
    """The unscaled output-gradient factor per group, ``[groups, E, E]`` (``E`` =
    ``out_channels/groups``): for ``expand`` the sum over samples and positions of the
    gradient's outer products, for ``reduce`` that of its sum over positions, per sample.
    ``per_group=False`` gives one block over all output channels, ``[1, out_channels,
    out_channels]`` (singd's and curvlinops' convention)."""
    _check(layer, approx)
    n = grad_output.shape[0]
    if isinstance(layer, nn.Linear):
        flat = grad_output.reshape(n, -1, grad_output.shape[-1]).unsqueeze(1)  # [n, 1, s, e]
    else:
        groups = cast(_ConvNd, layer).groups if per_group else 1
        flat = grad_output.reshape(n, groups, -1, math.prod(grad_output.shape[2:])).transpose(2, 3)  # [n, g, s, e]
    if approx == "reduce":
        flat = flat.sum(2, keepdim=True)
    return torch.einsum("ngsi,ngsj->gij", flat, flat)


def _finish(total: Tensor, n: int, scale: Scale, per_group: bool) -> Tensor:
    if scale not in ("mean", "sum"):
        raise TnError(f"scale must be 'mean' or 'sum', not {scale!r}")
    if scale == "mean":
        total = total / n
    return total if per_group else total.mean(0)


def input_factor(
    layer: nn.Module, x: Tensor, approx: Approx = "expand", bias: bool | None = None, per_group: bool = False, scale: Scale = "mean"
) -> Tensor:
    """The input-based Kronecker factor of ``layer`` for the input batch ``x``.

    ``approx``: ``"expand"`` (KFC) or ``"reduce"``; ``bias``: append the homogeneous
    coordinate (default: whether the layer has a bias); ``per_group``: ``[groups, D, D]``,
    else averaged over groups ``[D, D]``; ``scale``: ``"mean"`` divides by the batch size
    (the paper's Ω, as gallery/kfc.tn and kfac_reduce.tn), ``"sum"`` does not.
    """
    return _finish(input_sum(layer, x, approx, bias), x.shape[0], scale, per_group)


def output_factor(
    layer: nn.Module, grad_output: Tensor, approx: Approx = "expand", per_group: bool = False, scale: Scale = "mean"
) -> Tensor:
    """The output-gradient Kronecker factor of ``layer`` for ``grad_output`` (the gradient
    of the loss w.r.t. the layer's output); arguments as :func:`input_factor`."""
    return _finish(output_sum(layer, grad_output, approx), grad_output.shape[0], scale, per_group)
