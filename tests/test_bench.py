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
