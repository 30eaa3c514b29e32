"""collect(all_reduce=True): factors of batch shards, all-reduced over 2 gloo processes,
equal the full batch's factors."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from tndsl.curvature import collect

WORLD = 2


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, groups=1), nn.ReLU(), nn.ConvTranspose2d(4, 2, 2, stride=2), nn.Flatten(), nn.Linear(2 * 8 * 8, 3)
    ).double()


def _batch() -> torch.Tensor:
    return torch.randn(6, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _factors(model: nn.Module, x: torch.Tensor, approx: str, all_reduce: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    with collect(model, approx=approx, all_reduce=all_reduce) as factors:  # type: ignore[arg-type]
        model(x).square().sum().backward()
    return {name: (factors[name].A, factors[name].G) for name in factors}  # type: ignore[misc]


def _worker(rank: int, init: str, out: str) -> None:
    sys.path.insert(0, os.getcwd())
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        shard = _batch().chunk(WORLD)[rank]  # uneven shards would work too: counts are summed
        result = {approx: _factors(_model(), shard, approx, True) for approx in ("expand", "reduce")}
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_sharded_all_reduced_factors_equal_the_full_batch(tmp_path):
    init = f"file://{tmp_path / 'init'}"
    out = str(tmp_path / "factors.pt")
    mp.spawn(_worker, args=(init, out), nprocs=WORLD, join=True)
    sharded = torch.load(out)
    for approx in ("expand", "reduce"):
        full = _factors(_model(), _batch(), approx, False)
        assert set(sharded[approx]) == set(full) == {"0", "2", "4"}
        for name, (A, G) in full.items():
            assert torch.allclose(sharded[approx][name][0], A), (approx, name)
            assert torch.allclose(sharded[approx][name][1], G), (approx, name)
