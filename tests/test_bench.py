"""The benchmark harness runs end to end on a tiny case (no timing assertions)."""

from __future__ import annotations

import bench.run
from bench.cases import CASES


def test_smoke_runs_every_variant():
    rows = bench.run.smoke()
    variants = {row["variant"] for row in rows}
    assert {"pytorch", "tndsl"} <= variants
    for row in rows:
        assert row["status"] == "ok" or row["status"].startswith("skipped:"), row


def test_every_case_compiles_and_matches_pytorch_on_a_tiny_size():
    for case in CASES.values():
        tiny = bench.cases.tiny(case)
        rows = bench.run.run_case(tiny, "cpu", "small", repeat=1, warmup=0, memory=False)
        tndsl_row = next(row for row in rows if row["variant"] == "tndsl")
        assert tndsl_row["status"] == "ok", (case.name, tndsl_row)


def test_open_world_section_states_the_targets(tmp_path):
    """The open-world rows go into their own section of the page, replaced on the next run,
    with each of issue 10's targets met or missed (no timing here: the rows are made up)."""
    import bench.open_world as ow

    def row(case: str, variant: str, baseline: str, ratio: float, to_best: float | None = None) -> dict:
        return {"case": case, "title": case, "variant": variant, "ms": 1.0, "ratio": ratio, "baseline": baseline,
                "rounds": 5, "to_best": to_best}

    rows = [row("fold", "pytorch", "pytorch", 1.0), row("fold", "tndsl", "pytorch", 1.2, 1.2),
            row("vjp", "full", "full", 1.0), row("vjp", "tndsl", "full", 0.3)]
    info = {"command": "python -m bench.open_world", "date": "today", "cpu": "a CPU", "cpu_threads": 2,
            "load_average": 0.5, "device": "cpu"}
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nkept\n")
    ow.refresh(page, rows, info)
    ow.refresh(page, rows, info)
    text = page.read_text()
    assert text.count("<!-- bench:open-world:cpu:start -->") == 1 and text.startswith("# Benchmarks\n\nkept\n")
    assert "| fold | ≤ 1.1× the faster of PyTorch and no lowering | 1.20× | **missed** |" in text
    assert "| vjp | ≤ 0.4× the full VJP | 0.30× | met |" in text


def test_optimizer_benchmark_steps_every_variant():
    """Each SINGD / SGD variant of bench.optimizers builds and takes a step that moves the
    weights (ResNet-18, batch 2); the table names every variant."""
    import pytest
    import torch

    pytest.importorskip("singd")
    import bench.optimizers as optimizers

    x, y = torch.rand(2, 3, 32, 32), torch.randint(0, optimizers.CLASSES, (2,))
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the benchmark runs on CPU; tiny ops only lose to thread hand-offs
    try:
        for variant in optimizers.VARIANTS:
            trainer = optimizers.build("resnet18", variant, "cpu")
            before = trainer.model.fc.weight.detach().clone()
            trainer.step(x, y)
            assert not torch.equal(before, trainer.model.fc.weight), variant
    finally:
        torch.set_num_threads(threads)
    for variant in optimizers.VARIANTS:
        rows.append({"model": "resnet18", "variant": variant, "label": optimizers.VARIANTS[variant][0], "median_ms": 1.0,
                     "time_x_sgd": 1.0, "peak_mib": None, "memory_x_sgd": None})
    table = optimizers.table(rows)
    assert all(label in table for label, _, _ in optimizers.VARIANTS.values())
