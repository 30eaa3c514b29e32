"""SINGD (``pip install singd``) with tndsl's patch extraction.

``use_tndsl()`` replaces singd's two patch extractors for ``Conv2d`` inputs
(``singd.optim.utils._extract_patches`` for KFAC-expand, ``_extract_averaged_patches``
for KFAC-reduce) with tndsl programs computing the same tensors (patches averaged over
channel groups, as singd defines them); ``undo()`` of the returned handle restores them.
With ``gram=True`` (the default) it also replaces ``SINGD._accumulate_H_terms`` for
``Conv2d`` layers under KFAC-expand: the input term ``Kᵀ (a aᵀ) K`` is then formed from
the Gram matrix ``a aᵀ`` that tndsl computes without the patches (``from_inner2``) instead
of from the patches ``a`` (``from_inner``), or, for singd's diagonal structure, from the
Gram matrix's diagonal alone (computed from the squared input and the index pattern summed
over positions); every other layer keeps singd's own method.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from ..curvature.factors import _positions, input_sum, program

__all__ = ["use_tndsl", "extract_patches", "extract_averaged_patches", "expand_gram", "expand_gram_diagonal", "Patched"]


def _keywords(kernel_size: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> dict[str, Any]:
    k1, k2 = _pair(kernel_size)
    pad = padding if isinstance(padding, str) else _pair(padding)
    return {"g": groups, "k1": k1, "k2": k2, "stride": _pair(stride), "padding": pad, "dilation": _pair(dilation),
            "output_padding": (0, 0)}


def _group_mean(x: Tensor, groups: int) -> Tensor:
    """The input averaged over its channel groups (patches are linear in the input, so
    this gives singd's patches averaged over groups, at 1/groups of the work)."""
    return x.reshape(x.shape[0], groups, -1, *x.shape[2:]).mean(1) if groups > 1 else x


def extract_patches(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Tensor:
    """singd's ``_extract_patches``: ``[n, O1·O2, C_in/groups·K1·K2]``, averaged over groups."""
    u = program().U2(_group_mean(x, groups), **_keywords(kernel_size, stride, padding, dilation, 1))  # [n, (c k1 k2), (o1 o2)]
    return u.transpose(1, 2)


def extract_averaged_patches(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Tensor:
    """singd's ``_extract_averaged_patches``: ``[n, C_in/groups·K1·K2]``, averaged over
    output positions and groups."""
    return program().Mean2(_group_mean(x, groups), **_keywords(kernel_size, stride, padding, dilation, 1))[:, 0]


def expand_gram(x: Tensor, layer: nn.Conv2d) -> Tensor:
    """``aᵀ a`` for singd's processed KFAC-expand input ``a`` of a ``Conv2d`` (patches
    averaged over groups, a ones column with a bias, divided by √(batch · positions)),
    without forming ``a``: patches are linear in the input, so the group average is taken
    on the input first."""
    total = input_sum(layer, x, "expand", layer.bias is not None, group_mean=True)[0]
    return total / (x.shape[0] * _positions(layer, x))


def expand_gram_diagonal(x: Tensor, layer: nn.Conv2d) -> Tensor:
    """The diagonal of :func:`expand_gram`, from the squared input and the index pattern
    summed over output positions (no patches, no ``D × D`` matrix)."""
    keywords = _keywords(layer.kernel_size, layer.stride, layer.padding, layer.dilation, 1)
    diagonal = program().Diag2(_group_mean(x, layer.groups), **keywords)[0]
    count = x.shape[0] * _positions(layer, x)
    if layer.bias is not None:
        diagonal = torch.cat([diagonal, diagonal.new_full((1,), float(count))])
    return diagonal / count


def _gram_accumulator(original: Callable[..., None]) -> Callable[..., None]:
    """``SINGD._accumulate_H_terms`` with the KFAC-expand ``Conv2d`` input term from
    :func:`expand_gram`; the rest as singd 0.0.5 does it."""
    utils = importlib.import_module("singd.optim.utils")
    diagonal = importlib.import_module("singd.structures.diagonal").DiagonalMatrix
    dist = torch.distributed

    def accumulate(self: Any, module: nn.Module, inputs: tuple[Tensor, ...], grad_output: Tensor) -> None:
        if not isinstance(module, nn.Conv2d) or self._get_param_group_entry(module, "kfac_approx") != "expand":
            return original(self, module, inputs, grad_output)
        loss_average = self._get_param_group_entry(module, "loss_average")
        name = self.module_names[module]
        (dtype_K, dtype_C), _ = self._get_preconditioner_dtypes_and_device(module)
        a = inputs[0].data.to(dtype_K)
        g = utils.process_grad_output(grad_output.data.to(dtype_C), module, loss_average, "expand")
        K, C = self.Ks[name], self.Cs[name]
        if isinstance(K, diagonal):  # diag(Kᵀ aᵀa K) needs only diag(aᵀa): from_inner's squared row sums
            H_K = K.from_inner(X=expand_gram_diagonal(a, module).sqrt().unsqueeze(1))
        else:
            H_K = K.from_inner2(expand_gram(a, module))
        previous = self._get_grad_scale(self.steps - 1)
        if previous != 1.0:
            g = g / math.sqrt(previous)
        H_C = C.from_inner(X=g.T)
        if dist.is_available() and dist.is_initialized():
            op = dist.ReduceOp.AVG if loss_average else dist.ReduceOp.SUM
            H_K.all_reduce(op=op)
            H_C.all_reduce(op=op)
        self.H_Ks[name] = self.H_Ks[name].add_(H_K) if name in self.H_Ks else H_K
        self.H_Cs[name] = self.H_Cs[name].add_(H_C) if name in self.H_Cs else H_C

    return accumulate


@dataclass
class Patched:
    """The originals replaced by :func:`use_tndsl`; ``undo()`` puts them back."""

    module: Any
    originals: dict[str, Callable[..., Tensor]]
    optimizer: Any = None
    accumulate: Callable[..., None] | None = None

    def undo(self) -> None:
        for name, function in self.originals.items():
            setattr(self.module, name, function)
        if self.optimizer is not None:
            self.optimizer._accumulate_H_terms = self.accumulate

    def __enter__(self) -> "Patched":
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def use_tndsl(gram: bool = True) -> Patched:
    """Make singd use tndsl (see the module docstring); use as a call or as a ``with``
    block."""
    utils = importlib.import_module("singd.optim.utils")
    replacements = {"_extract_patches": extract_patches, "_extract_averaged_patches": extract_averaged_patches}
    originals = {name: getattr(utils, name) for name in replacements}
    for name, function in replacements.items():
        setattr(utils, name, function)
    patched = Patched(utils, originals)
    if gram:
        optimizer = importlib.import_module("singd.optim.optimizer").SINGD
        patched.optimizer, patched.accumulate = optimizer, optimizer._accumulate_H_terms
        optimizer._accumulate_H_terms = _gram_accumulator(optimizer._accumulate_H_terms)
    return patched
