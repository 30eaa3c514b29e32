"""PyTorch references for ``tndsl check``: each op computed the obvious way with torch.

Each reference takes tensors positionally and parameters as keywords. ``padding``: an
int, a pair (left, right) for every spatial dimension, ``'same'`` or ``'valid'``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["REFERENCES", "DENSE", "Value", "Reference"]

Value = int | str | tuple[int, ...]
Reference = Callable[..., torch.Tensor]

def _pads(padding: Value, kernel: int, dilation: int) -> tuple[int, int]:
    """Left and right padding of one spatial dimension (the Π rules, docs/convolutions.md)."""
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    if isinstance(padding, tuple):
        if len(padding) != 2:
            raise ValueError(f"padding pair must be (left, right), not {padding!r}")
        return int(padding[0]), int(padding[1])
    return int(padding), int(padding)


def _ntuple(value: Value, n: int, what: str) -> tuple[int, ...]:
    if isinstance(value, tuple):
        if len(value) != n:
            raise ValueError(f"{what} needs {n} values, not {value!r}")
        return tuple(int(v) for v in value)
    if isinstance(value, str):
        raise ValueError(f"{what} must be an integer or a tuple, not {value!r}")
    return (int(value),) * n


def _conv_fn(n: int):
    return (F.conv1d, F.conv2d, F.conv3d)[n - 1]


def _conv_transpose_fn(n: int):
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]


def conv(x, w, b=None, *, stride=1, padding: Value = 0, dilation=1, groups=1):
    """``F.conv{N}d``; an asymmetric pair pads with ``F.pad`` first."""
    n = x.dim() - 2
    fn = _conv_fn(n)
    if padding == "same" or padding == "valid" or isinstance(padding, int):
        return fn(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    left, right = _pads(padding, 1, dilation)
    if left == right:
        return fn(x, w, b, stride=stride, padding=left, dilation=dilation, groups=groups)
    return fn(F.pad(x, [left, right] * n), w, b, stride=stride, padding=0, dilation=dilation, groups=groups)


def conv_transpose(x, w, b=None, *, stride=1, padding: Value = 0, output_padding=0, dilation=1, groups=1):
    """``F.conv_transpose{N}d``; other paddings crop the unpadded result (torch has no such option)."""
    n = x.dim() - 2
    fn = _conv_transpose_fn(n)
    if isinstance(padding, int):
        return fn(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    kernel = w.shape[2:]
    full = fn(x, w, None, stride=stride, padding=0, output_padding=0, groups=groups, dilation=dilation)
    index = [slice(None), slice(None)]
    extra = []
    for d in range(n):
        left, right = _pads(padding, kernel[d], dilation)
        size = full.shape[2 + d] - left - right + output_padding
        if size < 1:
            raise ValueError("empty transpose-convolution output")
        index.append(slice(left, left + size))
        extra.append(max(0, left + size - full.shape[2 + d]))
    pad = []
    for e in reversed(extra):
        pad += [0, e]
    result = F.pad(full, pad)[tuple(index)]
    if b is not None:
        result = result + b.view(1, -1, *([1] * n))
    return result


def _one_hot_weight(channels: int, kernel: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Weight ``[channels·K, 1, *kernel]`` picking kernel position ``k`` for channel ``c``
    at output channel ``c·K + k`` (grouped with groups = channels)."""
    total = math.prod(kernel)
    eye = torch.eye(total, dtype=like.dtype, device=like.device).reshape(total, 1, *kernel)
    return eye.repeat(channels, 1, *([1] * len(kernel)))


def unfold(x, *, kernel_size, stride=1, padding: Value = 0, dilation=1):
    """im2col ``[N, C·K1·K2…, O1·O2…]`` in ``F.unfold``'s layout; ``F.unfold`` itself for N = 2."""
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    pads = [_pads(padding, k, dilation) for k in kernel]
    if n == 2 and all(l == r for l, r in pads):
        return F.unfold(x, kernel, dilation=dilation, padding=tuple(l for l, _ in pads), stride=stride)
    pad = [p for left_right in reversed(pads) for p in left_right]
    channels = x.shape[1]
    y = _conv_fn(n)(F.pad(x, pad), _one_hot_weight(channels, kernel, x), stride=stride, dilation=dilation, groups=channels)
    return y.flatten(2)


def conv_transpose_unfold(x, *, kernel_size, stride=1, padding: Value = 0, output_padding=0, dilation=1):
    """The transpose convolution's unfolded input ``[N, C·K1·K2…, I1·I2…]``:
    ``conv_transpose(X, W) = W_mat @ U`` with ``W_mat[co, (c k)] = W[c, co, k]``."""
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    channels = x.shape[1]
    weight = _one_hot_weight(channels, kernel, x).reshape(channels, math.prod(kernel), *kernel)
    y = conv_transpose(
        x, weight, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=channels
    )
    return y.flatten(2)


def conv_input_vjp(v, w, *, input_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """∂⟨V, conv(X, W)⟩/∂X by ``torch.autograd.grad``; X has spatial size ``input_size``."""
    n = v.dim() - 2
    size = _ntuple(input_size, n, "input_size")
    x = torch.zeros(v.shape[0], w.shape[1] * groups, *size, dtype=v.dtype, device=v.device, requires_grad=True)
    y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.shape != v.shape:
        raise ValueError(f"V has shape {tuple(v.shape)} but the convolution output is {tuple(y.shape)}")
    (grad,) = torch.autograd.grad(y, x, v)
    return grad


def conv_weight_vjp(x, v, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """∂⟨V, conv(X, W)⟩/∂W by ``torch.autograd.grad``; W has spatial size ``kernel_size``."""
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    w = torch.zeros(v.shape[1], x.shape[1] // groups, *kernel, dtype=x.dtype, device=x.device, requires_grad=True)
    y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.shape != v.shape:
        raise ValueError(f"V has shape {tuple(v.shape)} but the convolution output is {tuple(y.shape)}")
    (grad,) = torch.autograd.grad(y, w, v)
    return grad


def randomized_weight_vjp(x, v, j, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """The weight VJP from the output positions ``j`` selects (flat over the spatial axes,
    repeats counted), times positions / samples: an unbiased estimate of the full VJP."""
    spatial = tuple(v.shape[2:])
    counts = torch.bincount(j.flatten().long(), minlength=math.prod(spatial)).to(v.dtype).reshape(spatial)
    full = conv_weight_vjp(x, v * counts, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return full * (math.prod(spatial) / j.numel())


def conv_input_jvp(w, t, *, stride=1, padding: Value = 0, dilation=1, groups=1):
    """``torch.func.jvp`` of ``X ↦ conv(X, W)`` at X = T in direction T."""
    fn = lambda x: conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)  # noqa: E731
    return torch.func.jvp(fn, (t,), (t,))[1]


def conv_weight_jvp(x, t, *, stride=1, padding: Value = 0, dilation=1, groups=1):
    """``torch.func.jvp`` of ``W ↦ conv(X, W)`` at W = T in direction T."""
    fn = lambda w: conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)  # noqa: E731
    return torch.func.jvp(fn, (t,), (t,))[1]


def _grouped(u: torch.Tensor, groups: int) -> torch.Tensor:
    """``[N, (g a), L]`` → ``[N, g, a, L]``."""
    return u.reshape(u.shape[0], groups, u.shape[1] // groups, u.shape[2])


def kfc(x, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """KFC / KFAC-expand input factor ``[g, c·K, c·K]``: ``Σ_{n,o} u uᵀ / N`` with u = unfold."""
    u = _grouped(unfold(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation), groups)
    return torch.einsum("ngal,ngbl->gab", u, u) / x.shape[0]


def kfac_reduce(x, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """KFAC-reduce input factor ``[g, c·K, c·K]``: ``Σ_n ū ūᵀ / N`` with ū the column mean of unfold."""
    u = _grouped(unfold(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation), groups)
    mean = u.mean(dim=3)
    return torch.einsum("nga,ngb->gab", mean, mean) / x.shape[0]


def conv_transpose_kfac_reduce(x, *, kernel_size, stride=1, padding: Value = 0, output_padding=0, dilation=1, groups=1):
    """KFAC-reduce input factor of a transpose convolution, from its unfolded input."""
    u = conv_transpose_unfold(
        x, kernel_size=kernel_size, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    mean = _grouped(u, groups).mean(dim=3)
    return torch.einsum("nga,ngb->gab", mean, mean) / x.shape[0]


def ggn_diagonal(x, s, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """diag(Σ_{c,n} J_nᵀ S_{c,n} S_{c,n}ᵀ J_n) for the weight, by per-sample autograd.

    ``S[c, n, co, o…]`` is a backpropagated square-root factor of the loss Hessian w.r.t. Y.
    """
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    w = torch.zeros(s.shape[2], x.shape[1] // groups, *kernel, dtype=x.dtype, device=x.device, requires_grad=True)
    diagonal = torch.zeros_like(w)
    for sample in range(x.shape[0]):
        y = conv(x[sample : sample + 1], w, stride=stride, padding=padding, dilation=dilation, groups=groups)
        for column in range(s.shape[0]):
            (grad,) = torch.autograd.grad(y, w, s[column, sample : sample + 1], retain_graph=True)
            diagonal = diagonal + grad**2
    return diagonal.detach()


def _for_dims(fn: Reference, n: int) -> Reference:
    def reference(*tensors: torch.Tensor, **params: Value) -> torch.Tensor:
        if tensors and tensors[0].dim() != 2 + n:
            raise ValueError(f"a {n}d reference needs {2 + n}-d tensors, got shape {tuple(tensors[0].shape)}")
        return fn(*tensors, **params)

    reference.__doc__ = fn.__doc__
    return reference


_FAMILIES: dict[str, Reference] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "unfold": unfold,
    "conv_transpose_unfold": conv_transpose_unfold,
    "conv_input_vjp": conv_input_vjp,
    "conv_weight_vjp": conv_weight_vjp,
    "randomized_weight_vjp": randomized_weight_vjp,
    "conv_input_jvp": conv_input_jvp,
    "conv_weight_jvp": conv_weight_jvp,
    "kfc": kfc,
    "kfac_reduce": kfac_reduce,
    "conv_transpose_kfac_reduce": conv_transpose_kfac_reduce,
    "ggn_diagonal": ggn_diagonal,
}

#: Reference name (as written in a ``# check:`` line) → PyTorch function.
REFERENCES: dict[str, Reference] = {
    f"{family}{n}d": _for_dims(fn, n) for family, fn in _FAMILIES.items() for n in (1, 2, 3)
}
DENSE = "dense"


