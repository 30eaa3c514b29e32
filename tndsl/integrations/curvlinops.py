"""curvlinops (``pip install tndsl[curvlinops]``, curvlinops-for-pytorch 3.0.1) with tndsl's
Kronecker factors.

``use_tndsl()`` replaces the two hooks with which ``curvlinops.KFACLinearOperator`` (and
so ``EKFACLinearOperator``) accumulates its Kronecker factors: the input covariance comes
from :func:`tndsl.curvature.input_sum` (for KFAC-expand, the Gram matrix of the unfolded
input, computed without unfolding; for KFAC-reduce, the patches averaged over positions
through the folded index pattern) and the gradient covariance from
:func:`tndsl.curvature.output_sum`, both in curvlinops' conventions (patches averaged over
channel groups, one gradient block over all output channels, its scaling). It also lets
``KFACLinearOperator`` accept ``Conv1d`` and ``Conv3d`` layers, which curvlinops alone
rejects (its operator multiplies any weight shaped ``[out, ...]``; ``EKFACLinearOperator``
keeps its own list). ``undo()`` of the returned handle, or leaving it as a ``with`` block,
restores curvlinops.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from ..curvature.factors import _positions, input_sum, output_sum

__all__ = ["use_tndsl", "input_covariance", "gradient_covariance", "Patched"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def input_covariance(layer: nn.Module, x: Tensor, approx: str, bias: bool) -> Tensor:
    """curvlinops' input covariance of ``layer`` for the batch ``x``, before its division
    by the number of data points: ``[D, D]`` (``D`` + 1 with ``bias``, the joint
    weight-and-bias treatment), divided by the weight-sharing positions for expand."""
    total = input_sum(layer, x, "expand" if approx == "expand" else "reduce", bias, group_mean=True)[0]
    if approx != "expand":
        return total
    positions = _positions(layer, x) if isinstance(layer, _CONV) else x.shape[1:-1].numel()
    return total.div_(positions)


def gradient_covariance(layer: nn.Module, grad_output: Tensor, approx: str) -> Tensor:
    """The sum over the batch of the output gradient's outer products, one block over all
    output channels, ``[out, out]`` (curvlinops' gradient covariance before its scaling)."""
    return output_sum(layer, grad_output, "expand" if approx == "expand" else "reduce", per_group=False)[0]


def _accumulate_input(self: Any, module: nn.Module, inputs: tuple[Tensor, ...], module_name: str) -> None:
    """``KFACLinearOperator._hook_accumulate_input_covariance`` with tndsl's factor."""
    if len(inputs) != 1:
        raise ValueError("Modules with multiple inputs are not supported.")
    params = self._mapping[module_name]
    joint = "weight" in params and "bias" in params and not self._separate_weight_and_bias
    covariance = input_covariance(module, inputs[0].data.detach(), self._kfac_approx, joint).div_(self._N_data)
    self._input_covariances = self._set_or_add_(self._input_covariances, module_name, covariance)


def _accumulate_gradient(self: Any, grad_output: Tensor, module: nn.Module, module_name: str) -> None:
    """``KFACLinearOperator._accumulate_gradient_covariance`` with tndsl's factor; the
    correction for the loss's reduction and Monte-Carlo samples is curvlinops 3.0.1's."""
    g = grad_output.data.detach()
    if self._loss_func.reduction == "sum":
        correction = 1.0 / self._mc_samples
    else:
        terms = g.shape[0] * self._num_per_example_loss_terms
        correction = terms**2 / (self._N_data * self._mc_samples * self._num_per_example_loss_terms)
    covariance = gradient_covariance(module, g, self._kfac_approx).mul_(correction)
    self._gradient_covariances = self._set_or_add_(self._gradient_covariances, module_name, covariance)


_HOOKS = {"_hook_accumulate_input_covariance": _accumulate_input, "_accumulate_gradient_covariance": _accumulate_gradient}


@dataclass
class Patched:
    """The class attributes replaced by :func:`use_tndsl`; ``undo()`` puts them back (an
    attribute that a class did not define itself is deleted again)."""

    originals: list[tuple[type, str, Any]] = field(default_factory=list)

    def undo(self) -> None:
        for cls, name, value in reversed(self.originals):
            if value is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, value)
        self.originals.clear()

    def __enter__(self) -> "Patched":
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


_MISSING = object()


def use_tndsl() -> Patched:
    """Make curvlinops' KFAC use tndsl's factors (see the module docstring); use as a
    call or as a ``with`` block, before the operator computes its factors."""
    kfac = importlib.import_module("curvlinops.kfac").KFACLinearOperator
    ekfac = importlib.import_module("curvlinops.ekfac").EKFACLinearOperator
    patched = Patched()

    def replace(cls: type, name: str, value: Any) -> None:
        patched.originals.append((cls, name, cls.__dict__.get(name, _MISSING)))
        setattr(cls, name, value)

    replace(ekfac, "_SUPPORTED_MODULES", ekfac._SUPPORTED_MODULES)  # EKFAC: curvlinops' own list
    replace(kfac, "_SUPPORTED_MODULES", (nn.Linear, *_CONV))
    for name, hook in _HOOKS.items():
        replace(kfac, name, hook)
    return patched
