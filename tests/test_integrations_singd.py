"""tndsl.integrations.singd against the real singd package (skipped where it is absent)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

singd_utils = pytest.importorskip("singd.optim.utils")
from singd.optim.optimizer import SINGD  # noqa: E402

from tndsl.integrations.singd import (  # noqa: E402
    expand_gram, expand_gram_diagonal, extract_averaged_patches, extract_patches, use_tndsl,
)

CASES = [  # kernel_size, stride, padding, dilation, groups
    (3, 1, 1, 1, 1),
    ((3, 2), (2, 1), (1, 0), (1, 2), 2),
    (2, 2, 0, 1, 1),
    (3, 1, "same", 2, 2),
    ((1, 3), 1, "valid", 1, 1),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_patches_equal_singds(case):
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for ours, theirs in ((extract_patches, singd_utils._extract_patches), (extract_averaged_patches, singd_utils._extract_averaged_patches)):
        expected = theirs(x, *case)
        got = ours(x, *case)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_expand_gram_equals_singds_processed_input(case, bias):
    kernel, stride, padding, dilation, groups = case
    layer = nn.Conv2d(4, 2, kernel, stride, padding, dilation, groups, bias).double()
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    a = singd_utils.process_input(x, layer, "expand")
    assert torch.allclose(expand_gram(x, layer), a.T @ a, atol=1e-12)
    assert torch.allclose(expand_gram_diagonal(x, layer), (a**2).sum(0), atol=1e-12)


@pytest.mark.parametrize("gram", [True, False])
@pytest.mark.parametrize("approx, structure", [("expand", "dense"), ("reduce", "dense"), ("expand", "diagonal")])
def test_singd_updates_are_equal_with_tndsl(approx, structure, gram, monkeypatch):
    import tndsl.integrations.singd as adapter

    calls = []
    gram_path = expand_gram if structure == "dense" else expand_gram_diagonal
    monkeypatch.setattr(adapter, gram_path.__name__, lambda x, layer: calls.append(layer) or gram_path(x, layer))
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, (3, 2), stride=2, groups=2, bias=False), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 3 * 4, 5),
    ).double()
    twin, initial = copy.deepcopy(model), copy.deepcopy(model)
    data = [(torch.randn(6, 3, 8, 8, dtype=torch.float64), torch.randint(0, 5, (6,))) for _ in range(3)]

    def train(net: nn.Module) -> None:
        optimizer = SINGD(net, lr=0.05, kfac_approx=approx, T=1, structures=(structure, structure))
        for x, y in data:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()

    original, accumulate = singd_utils._extract_patches, SINGD._accumulate_H_terms
    train(model)
    with use_tndsl(gram=gram):
        assert singd_utils._extract_patches is extract_patches
        assert (SINGD._accumulate_H_terms is not accumulate) == gram
        train(twin)
    assert singd_utils._extract_patches is original and SINGD._accumulate_H_terms is accumulate
    assert bool(calls) == (gram and approx == "expand")  # the Gram path ran where it applies
    for p, q, p0 in zip(model.parameters(), twin.parameters(), initial.parameters()):
        assert torch.allclose(p, q, atol=1e-10)
        assert not torch.allclose(p, p0, atol=1e-6)  # the steps did move every parameter
