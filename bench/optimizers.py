"""Whole training steps with SGD and SINGD variants: time and peak memory, side by side.

    python -m bench.optimizers [--device cpu|cuda] [--size small|full] [--models resnet18,vgg19]
                               [--variants ...] [--rounds R] [--threads T] [--out DIR]
                               [--docs docs/benchmarks.md] [--factors]

A step is forward, backward and the optimizer step of ResNet-18 or VGG-19 (``bench.models``,
torchvision's layer shapes, 1000 classes) on one fixed batch of synthetic data. Variants:
SGD; SINGD 0.0.5 with KFAC-expand (its default, ``F.unfold`` patches); SINGD with
KFAC-reduce (its built-in tensor-network path: einconv's index patterns); SINGD with
tndsl's factors (``tndsl.integrations.singd.use_tndsl``), expand and reduce. SINGD is set up
as in singd's own profiling script: pre-conditioners updated every step (``T=1``), diagonal
structures, ``normalize_lr_cov=True``, Linear and Conv2d parameters (the rest, batch-norm,
with SGD). Sizes: ``small`` batch 16 of 32×32 inputs (CPU, ``make bench``); ``full`` batch 128
of 256×256 (a GPU). float32, TF32 off.

Time: per model, a child process builds every variant from the same initial weights, runs
two warm-up steps each (tndsl plans there), then ``R`` interleaved rounds whose order
rotates; medians, and × SGD as the median over rounds of the time over SGD's in that round.
On CPU a step's time is the process's CPU time with one torch thread (``--threads``): on a
shared machine wall-clock time mostly measures the other processes, and two threads wait
on each other at every op (a tiny matmul took 24 ms instead of 0.14 ms here under load).
Memory: a child process per (model, variant) builds it, runs two steps and reports the peak
of a third: CUDA allocator peak (``max_memory_allocated``), or on CPU the peak RSS
(``VmHWM``, reset through ``/proc/self/clear_refs``) minus the RSS before the model was
built — both count weights, gradients, optimizer state and the step's buffers.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib
import json
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.models import MODELS
from bench.run import _status_kib, _version, in_child, machine_info, set_precision
from tndsl.integrations.singd import use_tndsl

__all__ = ["PAPER", "SIZES", "VARIANTS", "build", "main", "refresh", "run_model", "section", "table"]

#: Variant → (label, SINGD's kfac_approx or None for SGD, whether tndsl's factors are used).
VARIANTS: dict[str, tuple[str, str | None, bool]] = {
    "sgd": ("SGD", None, False),
    "singd": ("SINGD (expand, unfold)", "expand", False),
    "singd_einconv": ("SINGD (reduce, einconv)", "reduce", False),
    "singd_tndsl_expand": ("SINGD + tndsl (expand)", "expand", True),
    "singd_tndsl_reduce": ("SINGD + tndsl (reduce)", "reduce", True),
}
#: Size → (batch, image side).
SIZES = {"small": (16, 32), "full": (128, 256)}
#: The paper's table (A40, batch 128): (time, memory) × SGD for SINGD and SINGD+TN.
PAPER = {"resnet18": {"singd": (1.67, 1.25), "tn": (1.33, 1.00)}, "vgg19": {"singd": (1.48, 2.28), "tn": (1.16, 1.14)}}
CLASSES = 1000
LR = 0.01


@dataclass
class Trainer:
    """One variant: a model, its optimizers, and whether tndsl's factors are switched on."""

    model: nn.Module
    optimizers: list[torch.optim.Optimizer]
    tndsl: bool

    def step(self, x: Tensor, y: Tensor) -> None:
        with use_tndsl() if self.tndsl else contextlib.nullcontext():
            for optimizer in self.optimizers:
                optimizer.zero_grad()
            nn.functional.cross_entropy(self.model(x), y).backward()
            for optimizer in self.optimizers:
                optimizer.step()


def build(model_name: str, variant: str, device: str, seed: int = 0) -> Trainer:
    """The model (weights from ``seed``) and the optimizers of ``variant``."""
    torch.manual_seed(seed)
    model = MODELS[model_name](CLASSES).to(device)
    _, approx, tndsl = VARIANTS[variant]
    if approx is None:
        return Trainer(model, [torch.optim.SGD(model.parameters(), lr=LR)], False)
    from singd.optim.optimizer import SINGD

    supported = [p for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)) for p in m.parameters()]
    ids = {id(p) for p in supported}
    rest = [p for p in model.parameters() if id(p) not in ids]
    singd = SINGD(
        model, params=supported, lr=LR, T=1, structures=("diagonal", "diagonal"), kfac_approx=approx,
        normalize_lr_cov=True, warn_unsupported=False,
    )
    return Trainer(model, [singd, torch.optim.SGD(rest, lr=LR)] if rest else [singd], tndsl)


def data(size: str, device: str) -> tuple[Tensor, Tensor]:
    """One fixed batch: uniform images and random labels."""
    batch, side = SIZES[size]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, side, side, generator=g)
    return x.to(device), torch.randint(0, CLASSES, (batch,), generator=g).to(device)


def _timed(trainer: Trainer, x: Tensor, y: Tensor, device: str) -> float:
    """Seconds of one step: wall-clock with synchronisation on CUDA; on CPU the process's
    CPU time, which other processes on a shared machine do not inflate (one torch thread)."""
    if device == "cuda":
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.step(x, y)
        torch.cuda.synchronize()
        return time.perf_counter() - start
    start = time.process_time()
    trainer.step(x, y)
    return time.process_time() - start


def _time_model(model_name: str, variants: list[str], device: str, size: str, rounds: int, threads: int) -> dict[str, list[float]]:
    """Seconds per step of each variant over interleaved rounds (in this process)."""
    set_precision()
    torch.set_num_threads(threads)
    x, y = data(size, device)
    trainers = {v: build(model_name, v, device) for v in variants}
    for trainer in trainers.values():
        for _ in range(2):  # tndsl plans here
            trainer.step(x, y)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:
            times[v].append(_timed(trainers[v], x, y, device))
    return times


def _peak_mib(model_name: str, variant: str, device: str, size: str, threads: int) -> float:
    """Peak memory of a step after two (in this process, which must be fresh)."""
    set_precision()
    torch.set_num_threads(threads)
    importlib.import_module("singd.optim.optimizer")  # the library is not the variant's memory
    if device == "cpu":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD: big buffers are mmapped...
        libc.mallopt(-1, 1 << 16)  # M_TRIM_THRESHOLD: ...and the heap is trimmed on free
        gc.collect()
        base = _status_kib("VmRSS")
    x, y = data(size, device)
    trainer = build(model_name, variant, device)
    for _ in range(2):
        trainer.step(x, y)
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        trainer.step(x, y)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    trainer.step(x, y)
    return (_status_kib("VmHWM") - base) / 1024


def run_model(model_name: str, variants: list[str], device: str, size: str, rounds: int, threads: int) -> list[dict[str, Any]]:
    """One row per variant: median step time, × SGD, peak memory and × SGD's."""
    times = in_child(_time_model, model_name, variants, device, size, rounds, threads)
    if isinstance(times, str):
        raise RuntimeError(f"{model_name}: {times}")
    rows = []
    for v in variants:
        row: dict[str, Any] = {"model": model_name, "variant": v, "label": VARIANTS[v][0]}
        row["times_ms"] = [1e3 * t for t in times[v]]
        row["median_ms"] = statistics.median(row["times_ms"])
        row["time_x_sgd"] = statistics.median(t / s for t, s in zip(times[v], times["sgd"])) if "sgd" in times else None
        peak = in_child(_peak_mib, model_name, v, device, size, threads)
        row["peak_mib"] = peak if isinstance(peak, float) else None
        row["error"] = peak if isinstance(peak, str) else None
        rows.append(row)
    sgd = next((r["peak_mib"] for r in rows if r["variant"] == "sgd"), None)
    for row in rows:
        row["memory_x_sgd"] = row["peak_mib"] / sgd if row["peak_mib"] is not None and sgd else None
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table, one row per (model, variant)."""
    lines = [
        "| model | variant | step (ms) | × SGD time | peak memory (MiB) | × SGD memory |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['label']} | {_fmt(row['median_ms'], '.0f')} | {_fmt(row['time_x_sgd'], '.2f')} "
            f"| {_fmt(row['peak_mib'], '.0f')} | {_fmt(row['memory_x_sgd'], '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def paper_line(models: list[str]) -> str:
    """The paper's figures for these models, for the reader to hold the table against."""
    parts = [
        f"{name}: SINGD {PAPER[name]['singd'][0]:.2f}× · {PAPER[name]['singd'][1]:.2f}×, "
        f"SINGD+TN {PAPER[name]['tn'][0]:.2f}× · {PAPER[name]['tn'][1]:.2f}×"
        for name in models
    ]
    return "The paper (A40, batch 128; time · memory × SGD): " + "; ".join(parts) + ".\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Time and memory × SGD per model and variant, the paper's SINGD+TN targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, models = results["rows"], list(dict.fromkeys(r["model"] for r in results["rows"]))
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(variants)
    for ax, key, target, title in ((axes[0], "time_x_sgd", 0, "step time × SGD"), (axes[1], "memory_x_sgd", 1, "peak memory × SGD")):
        for i, v in enumerate(variants):
            values = [next((r[key] for r in rows if r["model"] == m and r["variant"] == v), None) or 0.0 for m in models]
            ax.bar([m + (i - (len(variants) - 1) / 2) * width for m in range(len(models))], values, width, label=VARIANTS[v][0])
        for m, name in enumerate(models):
            ax.hlines(PAPER[name]["tn"][target], m - 0.4, m + 0.4, colors="black", linestyles="dashed",
                      label="paper's SINGD+TN (A40)" if m == 0 else None)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(models)), models)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    m = results["machine"]
    batch, side = SIZES[results["size"]]
    fig.suptitle(f"{m.get('gpu') or m['cpu']}, batch {batch} of {side}×{side}, float32, TF32 off", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def section(results: dict[str, Any], image: str) -> str:
    """The docs section for this device: how it was made, the table, the plot."""
    m = results["machine"]
    batch, side = SIZES[results["size"]]
    threads = f"{m['cpu_threads']} thread{'s' if m['cpu_threads'] != 1 else ''}"
    where = m.get("gpu") or f"{m['cpu']}, {threads}, load average {m['load_average']} at the start"
    return (
        f"### {'GPU' if m['device'] == 'cuda' else 'CPU'}: batch {batch} of {side}×{side}\n\n"
        f"`{m['command']}` — {m['date']}, {where}; torch {m['torch']}, singd {results['singd']}, "
        f"git {m['git']}. {results['rounds']} interleaved rounds after 2 warm-up steps per variant; "
        f"time per step: {'wall-clock' if m['device'] == 'cuda' else 'CPU time of the process'}.\n\n"
        + table(results["rows"]) + "\n" + paper_line(list(dict.fromkeys(r["model"] for r in results["rows"])))
        + f"\n![step time and peak memory × SGD]({image})\n"
    )


def refresh(docs: Path, results: dict[str, Any], plot_path: Path) -> None:
    """Replace this device's section of ``docs`` (between ``<!-- optimizers:DEVICE:start/end -->``)."""
    device = results["machine"]["device"]
    image = f"optimizers-{device}.png"
    shutil.copyfile(plot_path, docs.parent / image)
    start, end = f"<!-- optimizers:{device}:start -->", f"<!-- optimizers:{device}:end -->"
    text = docs.read_text(encoding="utf-8")
    if start not in text:
        raise SystemExit(f"{docs} has no {start} … {end} section")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    docs.write_text(pattern.sub(lambda _: f"{start}\n{section(results, image)}{end}", text), encoding="utf-8")


def factor_times(model_name: str, size: str, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per step of SINGD's input term over the model's convolutions (sum of
    per-layer medians, CPU time, one thread): KFAC-reduce's averaged patches, singd's
    (einconv) against tndsl's; the diagonal of KFAC-expand's ``aᵀa``, from singd's
    processed patches against tndsl's ``Diag2``."""
    from singd.optim import utils

    from tndsl.integrations.singd import expand_gram_diagonal, extract_averaged_patches

    torch.set_num_threads(1)
    model, (x, _) = MODELS[model_name](CLASSES), data(size, "cpu")
    inputs: dict[nn.Conv2d, Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: inputs.setdefault(m, a[0].detach()))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()

    def reduce(extract: Callable[..., Tensor]) -> Callable[[nn.Conv2d, Tensor], Tensor]:
        return lambda m, a: extract(a, m.kernel_size, m.stride, m.padding, m.dilation, m.groups)

    functions: dict[str, Callable[[nn.Conv2d, Tensor], Tensor]] = {
        "reduce, singd (einconv)": reduce(utils._extract_averaged_patches),
        "reduce, tndsl": reduce(extract_averaged_patches),
        "expand diagonal, singd (unfold)": lambda m, a: (utils.process_input(a, m, "expand") ** 2).sum(0),
        "expand diagonal, tndsl": lambda m, a: expand_gram_diagonal(a, m),
    }
    totals = dict.fromkeys(functions, 0.0)
    for layer, a in inputs.items():
        for name, function in functions.items():
            function(layer, a)
            times = []
            for _ in range(rounds):
                start = time.process_time()
                function(layer, a)
                times.append(time.process_time() - start)
            totals[name] += 1e3 * statistics.median(times)
    return totals


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.optimizers", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds per model (default 11)")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default: 1 on CPU, where a shared machine stalls OpenMP barriers)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out-optimizers"))
    parser.add_argument("--docs", type=Path, help="refresh this device's section of this page (docs/benchmarks.md)")
    parser.add_argument("--factors", action="store_true", help="only time SINGD's input terms per model (CPU)")
    args = parser.parse_args(argv)
    models, variants = args.models.split(","), args.variants.split(",")
    unknown = [n for n in models if n not in MODELS] + [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown model(s) or variant(s): {', '.join(unknown)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.factors:
        for name in models:
            totals = in_child(factor_times, name, args.size)
            print(f"{name}, batch {SIZES[args.size][0]} of {SIZES[args.size][1]}²: "
                  + ", ".join(f"{k} {v:.1f} ms" for k, v in totals.items()))
        return 0
    threads = args.threads or (1 if args.device == "cpu" else torch.get_num_threads())
    machine = machine_info(args.device, argv)
    machine["cpu_threads"] = threads
    machine["command"] = "python -m bench.optimizers " + " ".join(argv)
    results: dict[str, Any] = {"machine": machine, "size": args.size, "rounds": args.rounds, "singd": _version("singd"), "rows": []}
    for name in models:
        start = time.perf_counter()
        for row in run_model(name, variants, args.device, args.size, args.rounds, threads):
            results["rows"].append(row)
            print(f"{name:9s} {row['label']:24s} {_fmt(row['median_ms'], '9.1f')} ms {_fmt(row['time_x_sgd'], '6.2f')}× "
                  f"{_fmt(row['peak_mib'], '8.0f')} MiB {_fmt(row['memory_x_sgd'], '5.2f')}× {row['error'] or ''}", flush=True)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    plot(results, args.out / "optimizers.png")
    (args.out / "results.md").write_text("# SINGD end to end\n\n" + section(results, "optimizers.png"))
    if args.docs:
        refresh(args.docs, results, args.out / "optimizers.png")
    print(f"wrote {args.out}/results.json, results.md, optimizers.png" + (f"; refreshed {args.docs}" if args.docs else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
