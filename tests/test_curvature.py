"""tndsl.curvature: Kronecker factors of torch.nn layers against an unfold reference."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tndsl
from tndsl.curvature import collect, input_factor, output_factor

_F = {1: (F.conv1d, F.conv_transpose1d), 2: (F.conv2d, F.conv_transpose2d), 3: (F.conv3d, F.conv_transpose3d)}


def unfolded(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reference: ``[n, groups, C/groups · K, positions]`` by a one-hot convolution, so that
    the layer's output is this contracted with the weight (padding, stride, … included)."""
    dims = x.dim() - 2
    kernel = layer.kernel_size
    K = math.prod(kernel)
    channels = x.shape[1]
    transpose = isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    eye = torch.eye(K, dtype=x.dtype).reshape(K, 1, *kernel)
    if transpose:
        weight = eye.reshape(1, K, *kernel).repeat(channels, 1, *([1] * dims))
        u = _F[dims][1](x, weight, stride=layer.stride, padding=layer.padding, output_padding=layer.output_padding,
                        dilation=layer.dilation, groups=channels)
    else:
        weight = eye.repeat(channels, 1, *([1] * dims))
        u = _F[dims][0](x, weight, stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=channels)
    n = x.shape[0]
    return u.reshape(n, layer.groups, channels // layer.groups * K, -1)


def reference_input(layer, x, approx, bias):
    u = unfolded(layer, x)  # [n, g, D, P]
    if approx == "reduce":
        u = u.mean(-1, keepdim=True)
    if bias:
        u = torch.cat([u, u.new_ones(u.shape[0], u.shape[1], 1, u.shape[3])], 2)
    return torch.einsum("ngip,ngjp->gij", u, u) / x.shape[0]


def _layers(count: int, seed: int = 12):
    """A seeded sample of layers over types, dimensions and hyperparameters."""
    rng = random.Random(seed)
    made = 0
    while made < count:
        dims = rng.choice((1, 2, 3))
        transpose = rng.random() < 0.5
        groups = rng.choice((1, 2))
        kernel = tuple(rng.choice((1, 2, 3)) for _ in range(dims))
        dilation = tuple(rng.choice((1, 2)) for _ in range(dims))
        stride = tuple(rng.choice((1, 2, 3)) for _ in range(dims))
        cin, cout = 2 * groups, 2 * groups
        bias = rng.random() < 0.5
        if transpose:
            cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
            output_padding = tuple(rng.randrange(max(s, d)) for s, d in zip(stride, dilation))
            padding = tuple(rng.choice((0, 1)) for _ in range(dims))
            layer = cls(cin, cout, kernel, stride, padding, output_padding, groups, bias, dilation)
        else:
            cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
            padding = rng.choice(("same", "valid", tuple(rng.choice((0, 1, 2)) for _ in range(dims))))
            if padding == "same":
                stride = (1,) * dims
            layer = cls(cin, cout, kernel, stride, padding, dilation, groups, bias)
        size = (5, 6, 7)[:dims] if dims < 3 else (5, 6, 5)
        x = torch.randn(3, cin, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(rng.randrange(99)))
        layer = layer.double()
        try:
            layer(x)
        except RuntimeError:  # too small an input for this kernel: torch refuses it too
            continue
        made += 1
        yield layer, x


GRID = list(_layers(24))


@pytest.mark.parametrize("approx, gram_from", [("expand", 0), ("expand", 10**9), ("reduce", 0)], ids=["expand-gram", "expand-patches", "reduce"])
@pytest.mark.parametrize("case", range(len(GRID)))
def test_input_factor_matches_unfold(case, approx, gram_from, monkeypatch):
    """Both KFAC-expand paths (the Gram-first program, the patches' product) on every layer."""
    monkeypatch.setattr(tndsl.curvature.factors, "GRAM_MIN_POSITIONS", gram_from)
    layer, x = GRID[case]
    bias = layer.bias is not None
    expected = reference_input(layer, x, approx, bias)
    got = input_factor(layer, x, approx, per_group=True)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-10), (layer, (got - expected).abs().max())
    assert torch.allclose(input_factor(layer, x, approx), expected.mean(0), atol=1e-10)
    assert torch.allclose(input_factor(layer, x, approx, scale="sum", per_group=True), expected * x.shape[0], atol=1e-9)


@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_linear_factors_with_weight_sharing(approx):
    layer = nn.Linear(4, 3).double()
    x = torch.randn(5, 6, 4, dtype=torch.float64)
    flat = x.mean(1, keepdim=True) if approx == "reduce" else x
    flat = torch.cat([flat, flat.new_ones(*flat.shape[:-1], 1)], -1)
    assert torch.allclose(input_factor(layer, x, approx), torch.einsum("nsi,nsj->ij", flat, flat) / 5)
    g = torch.randn(5, 6, 3, dtype=torch.float64)
    gs = g.sum(1, keepdim=True) if approx == "reduce" else g
    assert torch.allclose(output_factor(layer, g, approx), torch.einsum("nsi,nsj->ij", gs, gs) / 5)


@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_collect_accumulates_over_a_model(approx):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 12 * 12, 5),
    ).double()
    xs = [torch.randn(2, 3, 6, 6, dtype=torch.float64) for _ in range(2)]
    grads: dict[str, list[torch.Tensor]] = {"0": [], "2": [], "5": []}
    inputs: dict[str, list[torch.Tensor]] = {"0": [], "2": [], "5": []}
    hooks = []
    for name in grads:
        module = model.get_submodule(name)
        hooks.append(module.register_forward_hook(lambda m, a, o, name=name: inputs[name].append(a[0].detach())))
        hooks.append(module.register_full_backward_hook(lambda m, gi, go, name=name: grads[name].append(go[0].detach())))
    with collect(model, approx=approx) as factors:
        for x in xs:
            model(x).square().sum().backward()
    for h in hooks:
        h.remove()
    assert set(factors) == {"0", "2", "5"}
    for name in grads:
        layer = model.get_submodule(name)
        x, g = torch.cat(inputs[name]), torch.cat(grads[name])
        assert torch.allclose(factors[name].A, input_factor(layer, x, approx))
        assert torch.allclose(factors[name].G, output_factor(layer, g, approx))


def test_output_factor_per_group_matches_reference():
    layer = nn.Conv1d(4, 6, 3, groups=2).double()
    g = torch.randn(3, 6, 5, dtype=torch.float64)
    per = g.reshape(3, 2, 3, 5)
    expected = torch.einsum("ngip,ngjp->gij", per, per) / 3
    assert torch.allclose(output_factor(layer, g, per_group=True), expected)
    summed = per.sum(-1)
    assert torch.allclose(output_factor(layer, g, "reduce"), torch.einsum("ngi,ngj->ij", summed, summed) / 3 / 2)


def test_unsupported_layers_and_options_are_errors():
    with pytest.raises(tndsl.TnError, match="no Kronecker factors for ReLU"):
        input_factor(nn.ReLU(), torch.randn(2, 3))
    with pytest.raises(tndsl.TnError, match="padding_mode='circular'"):
        input_factor(nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular"), torch.randn(2, 2, 5))
    with pytest.raises(tndsl.TnError, match="approx must be"):
        input_factor(nn.Linear(2, 2), torch.randn(2, 2), approx="diag")  # type: ignore[arg-type]
    with pytest.raises(tndsl.TnError, match="all_reduce=True"):
        with collect(nn.Linear(2, 2), all_reduce=True):
            pass
