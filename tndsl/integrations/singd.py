"""SINGD (``pip install singd``) with tndsl's patch extraction.

``use_tndsl()`` replaces singd's two patch extractors for ``Conv2d`` inputs
(``singd.optim.utils._extract_patches`` for KFAC-expand, ``_extract_averaged_patches``
for KFAC-reduce) with tndsl programs computing the same tensors (patches averaged over
channel groups, as singd defines them); ``undo()`` of the returned handle restores them.
SINGD's Gram path for KFAC-expand (forming ``U Uᵀ`` without the patches) is not reached
by this adapter: singd builds its factor from the patches in a private method.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from torch import Tensor
from torch.nn.modules.utils import _pair

from ..curvature.factors import program

__all__ = ["use_tndsl", "extract_patches", "extract_averaged_patches", "Patched"]


def _keywords(kernel_size: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> dict[str, Any]:
    k1, k2 = _pair(kernel_size)
    pad = padding if isinstance(padding, str) else _pair(padding)
    return {"g": groups, "k1": k1, "k2": k2, "stride": _pair(stride), "padding": pad, "dilation": _pair(dilation),
            "output_padding": (0, 0)}


def extract_patches(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Tensor:
    """singd's ``_extract_patches``: ``[n, O1·O2, C_in/groups·K1·K2]``, averaged over groups."""
    keywords = _keywords(kernel_size, stride, padding, dilation, groups)
    u = program().U2(x, **keywords)  # [n, (g c k1 k2), (o1 o2)]
    n, _, positions = u.shape
    return u.reshape(n, groups, -1, positions).mean(1).transpose(1, 2)


def extract_averaged_patches(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Tensor:
    """singd's ``_extract_averaged_patches``: ``[n, C_in/groups·K1·K2]``, averaged over
    output positions and groups."""
    return program().Mean2(x, **_keywords(kernel_size, stride, padding, dilation, groups)).mean(1)


@dataclass
class Patched:
    """The originals replaced by :func:`use_tndsl`; ``undo()`` puts them back."""

    module: Any
    originals: dict[str, Callable[..., Tensor]]

    def undo(self) -> None:
        for name, function in self.originals.items():
            setattr(self.module, name, function)

    def __enter__(self) -> "Patched":
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def use_tndsl() -> Patched:
    """Make singd extract convolution patches with tndsl (see the module docstring); use
    as a call or as a ``with`` block."""
    utils = importlib.import_module("singd.optim.utils")
    replacements = {"_extract_patches": extract_patches, "_extract_averaged_patches": extract_averaged_patches}
    originals = {name: getattr(utils, name) for name in replacements}
    for name, function in replacements.items():
        setattr(utils, name, function)
    return Patched(utils, originals)
