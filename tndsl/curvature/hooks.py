"""Collecting Kronecker factors over a model's forward and backward passes, optionally
all-reduced over a ``torch.distributed`` group (factors are sums over the batch)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import Tensor, nn

from ..ir import TnError
from .factors import SUPPORTED, Approx, Scale, input_sum, output_sum

__all__ = ["collect", "Collected", "KroneckerFactors"]


@dataclass
class KroneckerFactors:
    """One layer's factors: ``A`` (input-based) and ``G`` (output-gradient), each
    ``[D, D]`` (or ``[groups, D, D]`` with ``per_group``); None until seen."""

    A: Tensor | None = None
    G: Tensor | None = None


@dataclass
class _Sums:
    input: Tensor | None = None
    output: Tensor | None = None
    n_input: int = 0
    n_output: int = 0


@dataclass
class Collected:
    """The factors of every supported layer, by module name; filled when ``collect`` exits."""

    factors: dict[str, KroneckerFactors] = field(default_factory=dict)
    sums: dict[str, _Sums] = field(default_factory=dict)

    def __getitem__(self, name: str) -> KroneckerFactors:
        return self.factors[name]

    def __contains__(self, name: object) -> bool:
        return name in self.factors

    def __iter__(self) -> Iterator[str]:
        return iter(self.factors)

    def __len__(self) -> int:
        return len(self.factors)


def _add(total: Tensor | None, value: Tensor) -> Tensor:
    return value if total is None else total + value


@contextmanager
def collect(
    model: nn.Module,
    approx: Approx = "expand",
    bias: bool | None = None,
    per_group: bool = False,
    scale: Scale = "mean",
    all_reduce: bool = False,
) -> Iterator[Collected]:
    """Accumulate the Kronecker factors of every supported layer in ``model`` over the
    forward and backward passes run inside the block::

        with tndsl.curvature.collect(model, approx="reduce") as factors:
            loss_fn(model(x), y).backward()
        A, G = factors["0"].A, factors["0"].G

    Sums and sample counts accumulate over the passes; on exit each factor is the sum
    divided by the samples seen (``scale="mean"``; ``"sum"`` keeps the sum). With
    ``all_reduce`` and an initialized ``torch.distributed``, sums and counts are summed
    over the processes first (then divided: gloo has no average), so every process gets
    the full batch's factors. Arguments otherwise as :func:`input_factor`.
    """
    if scale not in ("mean", "sum") or approx not in ("expand", "reduce"):
        raise TnError(f"collect: approx must be 'expand' or 'reduce' and scale 'mean' or 'sum', not {approx!r}, {scale!r}")
    if all_reduce and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise TnError("collect(all_reduce=True) needs an initialized torch.distributed process group")
    result = Collected()
    handles = []
    for name, module in model.named_modules():
        if not isinstance(module, SUPPORTED):
            continue
        sums = result.sums[name] = _Sums()

        def forward(module: nn.Module, args: tuple, output: Tensor, sums: _Sums = sums) -> None:
            (x,) = args[:1]
            with torch.no_grad():
                sums.input = _add(sums.input, input_sum(module, x.detach(), approx, bias))
            sums.n_input += x.shape[0]

        def backward(module: nn.Module, grad_input: tuple, grad_output: tuple, sums: _Sums = sums) -> None:
            g = grad_output[0]
            if g is None:
                return
            with torch.no_grad():
                sums.output = _add(sums.output, output_sum(module, g.detach(), approx))
            sums.n_output += g.shape[0]

        handles.append(module.register_forward_hook(forward))
        handles.append(module.register_full_backward_hook(backward))
    try:
        yield result
    finally:
        for handle in handles:
            handle.remove()
    if all_reduce:
        _all_reduce(result)
    for name, sums in result.sums.items():
        result.factors[name] = KroneckerFactors(
            _scaled(sums.input, sums.n_input, scale, per_group), _scaled(sums.output, sums.n_output, scale, per_group)
        )


def _scaled(total: Tensor | None, n: int, scale: Scale, per_group: bool) -> Tensor | None:
    if total is None or n == 0:
        return None
    if scale == "mean":
        total = total / n
    return total if per_group else total.mean(0)


def _all_reduce(result: Collected) -> None:
    """Sum every factor and count over the process group (in a fixed order: by name)."""
    dist = torch.distributed
    for name in sorted(result.sums):
        sums = result.sums[name]
        for attr in ("input", "output"):
            value = getattr(sums, attr)
            if value is None:
                raise TnError(f"collect(all_reduce=True): layer '{name}' saw no {attr} on this process")
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        counts = torch.tensor([sums.n_input, sums.n_output], dtype=torch.int64)
        dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        sums.n_input, sums.n_output = int(counts[0]), int(counts[1])
