"""Refresh ``docs/benchmarks.md`` from a results directory written by ``bench.run``.

    python -m bench.update_docs bench/out-cpu [--docs docs/benchmarks.md]

The device's section (between ``<!-- bench:DEVICE:start -->`` and ``...:end -->``) is
replaced with the latest table, and the plot is copied next to the page as
``bench-DEVICE.png``; the other device's section is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.cases import VARIANTS
from bench.run import run_info, table

__all__ = ["main", "section", "refresh"]

TEMPLATE = """# Benchmarks

tndsl against PyTorch's own way and einconv 0.1.0 (dense Π fed to `torch.einsum`,
`simplify=True`) on the convolution ops of issue 6, float32 with TF32 off.
The cases, their `.tn` programs and the PyTorch / einconv code are in `bench/cases.py`;
`bench/README.md` says how to run them.

- CPU (small sizes, this project's machine): `make bench`, i.e.
  `python -m bench.run --device cpu --size small --out bench/out-cpu`
- GPU (full sizes, batch 32): `bench/gpu.sh`
- Refresh this page: `python -m bench.update_docs bench/out-cpu` (or `bench/out-gpu`)

Times are medians over interleaved rounds; "×" is the median over rounds of the ratio to
PyTorch's time in the same round (lower is better); memory is the extra peak of one call
(CUDA allocator peak, or peak RSS of a child process on CPU).

<!-- bench:cuda:start -->
## GPU

No GPU run recorded yet.
<!-- bench:cuda:end -->

<!-- bench:cpu:start -->
## CPU

No CPU run recorded yet.
<!-- bench:cpu:end -->
"""

_TITLES = {"cpu": "CPU (small sizes)", "cuda": "GPU (full sizes, batch 32)"}


def _cell(row: dict[str, Any] | None, ratio: bool) -> str:
    if row is None:
        return "–"
    if row["median_ms"] is None:
        return "error" if row["status"].startswith("error") else "skipped"
    text = f"{row['median_ms']:.3f}"
    if ratio:
        text += f" ({row['ratio']:.2f}×)"
    return text + (" ⚠ mismatch" if row["status"] == "mismatch" else "")


def _mib(row: dict[str, Any] | None) -> str:
    return "–" if row is None or row["peak_mib"] is None else f"{row['peak_mib']:.1f}"


def summary(results: dict[str, Any]) -> str:
    """One line per case: time (× PyTorch) and extra peak MiB of every variant."""
    by_case: dict[str, dict[str, dict[str, Any]]] = {}
    for row in results["rows"]:
        by_case.setdefault(row["case"], {})[row["variant"]] = row
    names = list(VARIANTS)
    header = (
        "| case | inputs | "
        + " | ".join(f"{v} ms" for v in names)
        + " | "
        + " | ".join(f"{v} MiB" for v in names)
        + " |"
    )
    lines = [header, "|---|---|" + "--:|" * (2 * len(names))]
    for case, rows in by_case.items():
        first = next(iter(rows.values()))
        times = [_cell(rows.get(v), ratio=v != "pytorch") for v in names]
        mems = [_mib(rows.get(v)) for v in names]
        lines.append(f"| {case} | {first['shapes']} | " + " | ".join(times + mems) + " |")
    failures = [
        f"- {row['case']} / {row['variant']}: {row['status']}"
        for row in results["rows"]
        if row["status"] not in ("ok", "mismatch")
    ]
    if failures:
        lines += ["", "Variants that did not run:", "", *failures]
    return "\n".join(lines) + "\n"


def section(results: dict[str, Any], image: str) -> str:
    """The markdown section for one run: plot, how it was made, summary, full table, programs."""
    device = results["machine"]["device"]
    programs = "\n".join(
        f"**{name}** — {case['title']}\n\n```\n{case['program']}```\n" for name, case in results["cases"].items()
    )
    notes = "".join(f"- **Note:** {note}\n" for note in results["notes"])
    return (
        f"## {_TITLES[device]}\n\n"
        f"![time relative to PyTorch per case, log scale]({image})\n\n"
        f"{notes}{run_info(results)}\n"
        f"{summary(results)}\n"
        f"<details><summary>Every row, with the max rel err against PyTorch</summary>\n\n{table(results)}\n</details>\n\n"
        f"<details><summary>The tndsl programs</summary>\n\n{programs}\n</details>\n"
    )


def refresh(results_dir: Path, docs: Path) -> Path:
    """Rewrite ``docs``'s section for the run in ``results_dir``; return the page."""
    results = json.loads((results_dir / "results.json").read_text())
    device = results["machine"]["device"]
    image = f"bench-{device}.png"
    if (results_dir / "ratio.png").exists():
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results_dir / "ratio.png", docs.parent / image)
    page = docs.read_text() if docs.exists() else TEMPLATE
    start, end = f"<!-- bench:{device}:start -->", f"<!-- bench:{device}:end -->"
    block = f"{start}\n{section(results, image)}{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    page = pattern.sub(lambda _: block, page) if pattern.search(page) else page.rstrip() + "\n\n" + block + "\n"
    docs.write_text(page)
    return docs


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.update_docs", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="directory holding results.json (and ratio.png)")
    parser.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    if not (args.results / "results.json").exists():
        parser.error(f"{args.results}/results.json not found")
    print(f"updated {refresh(args.results, args.docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
