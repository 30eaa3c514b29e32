"""Run the benchmark suite and write ``results.json``, ``results.md`` and ``ratio.png``.

    python -m bench.run --device cpu|cuda --size small|full --repeat R --out DIR [--cases a,b]

Per case, every variant is set up and called once (tndsl compiles and plans here), checked
against PyTorch's way, warmed up, then timed in interleaved rounds (the order rotates each
round); the median is reported. Extra peak memory is measured by one more call: on CUDA the
allocator peak above what was allocated before it; on CPU the peak RSS (``VmHWM``,
reset through ``/proc/self/clear_refs``) of a fresh child process per (case, variant)
above its RSS before the call, with glibc's mmap threshold fixed so that freed buffers
return to the OS. (``ru_maxrss`` would not do: after fork + exec it keeps the parent's
peak.) TF32 is off for every variant.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import importlib.metadata
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.cases import CASES, VARIANTS, Case, SkipVariant, tiny

__all__ = ["in_child", "machine_info", "main", "run_case", "run_info", "run_suite", "set_precision", "smoke", "table", "write_results"]

MIN_ROUNDS = 3
"""Rounds run even past the per-case time budget."""
TOLERANCE = 1e-4
"""Largest max|out − ref| / max|ref| still counted as the same result (float32)."""

Row = dict[str, Any]


def set_precision() -> dict[str, Any]:
    """Turn TF32 off for matmuls and convolutions; return the flags now in force."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return {
        "dtype": "float32",
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
    }


def _error(error: BaseException) -> str:
    """One-line description of a variant's failure (a TnError's first line)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"error: {type(error).__name__}: {first}"[:300]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timer(device: str) -> Callable[[Callable[[], Tensor]], float]:
    """A function timing one call in milliseconds."""
    if device == "cuda":

        def time_cuda(fn: Callable[[], Tensor]) -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)

        return time_cuda

    def time_cpu(fn: Callable[[], Tensor]) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3

    return time_cpu


def _rel_err(out: Tensor, ref: Tensor) -> float:
    """max|out − ref| / max|ref|, after reshaping ``out`` to ``ref``'s shape."""
    if out.numel() != ref.numel():
        raise ValueError(f"output has shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    diff = (out.reshape(ref.shape).double() - ref.double()).abs().max()
    return float(diff / ref.double().abs().max().clamp_min(1e-30))


def _cuda_peak_mib(fn: Callable[[], Tensor]) -> float:
    """Allocator peak of one call above what was allocated before it."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _status_kib(field: str) -> int:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_of_one_call(case: Case, size: str, variant: str) -> float:
    """In a fresh process: set up, call once, then measure one more call's RSS peak (MiB)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD: big buffers are mmapped...
    libc.mallopt(-1, 1 << 16)  # M_TRIM_THRESHOLD: ...and the heap is trimmed on free
    set_precision()
    fn = VARIANTS[variant](case, case.inputs(size, "cpu"))
    fn()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    base = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - base) / 1024


def _child(function: Callable[..., Any], args: tuple, conn: Any) -> None:
    try:
        conn.send(function(*args))
    except Exception as error:  # reported in the parent's row
        conn.send(_error(error))


def in_child(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a fresh spawned process (its memory is its own); a failure
    comes back as an ``"error: ..."`` string."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(function, args, send))
    child.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:
        result = "error: the child process died"
    child.join()
    return result


def _cpu_peak_mib(case: Case, size: str, variant: str) -> float | str:
    """Extra peak RSS of one call, measured in a spawned child process."""
    return in_child(_peak_of_one_call, case, size, variant)


def _shapes(case: Case, size: str) -> str:
    return ", ".join(
        f"{name} {'×'.join(map(str, shape))}" for name, shape in case.input_shapes(size).items()
    )


def run_case(
    case: Case,
    device: str,
    size: str,
    repeat: int,
    warmup: int = 2,
    budget_s: float = 10.0,
    memory: bool = True,
) -> list[Row]:
    """Benchmark every variant on one case; one row per variant (``pytorch`` first)."""
    rows = {
        name: {
            "case": case.name, "title": case.title, "size": size, "shapes": _shapes(case, size),
            "variant": name, "status": "ok", "median_ms": None, "min_ms": None, "rounds": 0,
            "ratio": None, "peak_mib": None, "rel_err": None,
        }
        for name in VARIANTS
    }
    inputs = case.inputs(size, device)
    calls: dict[str, Callable[[], Tensor]] = {}
    ref: Tensor | None = None
    for name, setup in VARIANTS.items():
        try:
            fn = setup(case, inputs)
            out = fn()
            _sync(device)
            if name == "pytorch":
                ref = out
            if ref is not None:
                rows[name]["rel_err"] = _rel_err(out, ref)
                if rows[name]["rel_err"] > TOLERANCE:
                    rows[name]["status"] = "mismatch"
            calls[name] = fn
        except SkipVariant as skip:
            rows[name]["status"] = f"skipped: {skip}"
        except Exception as error:  # one variant's failure must not stop the run
            rows[name]["status"] = _error(error)
        out = None
    ref = None

    for _ in range(warmup):
        for fn in calls.values():
            fn()
    timer, names = _timer(device), list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(repeat if names else 0):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(timer(calls[name]))
        if r + 1 >= MIN_ROUNDS and time.perf_counter() - start > budget_s:
            break

    for name in names:
        row = rows[name]
        row.update(median_ms=statistics.median(times[name]), min_ms=min(times[name]), rounds=len(times[name]))
        if memory:
            peak = _cuda_peak_mib(calls[name]) if device == "cuda" else _cpu_peak_mib(case, size, name)
            if isinstance(peak, str):
                row["status"] = peak
            else:
                row["peak_mib"] = max(peak, 0.0)
    if "pytorch" in times:  # paired: the same round's times, robust to drifting load
        for name in names:
            rows[name]["ratio"] = statistics.median(t / p for t, p in zip(times[name], times["pytorch"]))
    return list(rows.values())


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(device: str, argv: list[str]) -> dict[str, Any]:
    """Where and how the run was made."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.run " + " ".join(argv),
        "device": device,
        "cpu": _cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "einconv": _version("einconv"),
        "tndsl": _version("tndsl") or __import__("tndsl").__version__,
        "git": _git_commit(),
    }
    if device == "cuda":
        info.update(
            gpu=torch.cuda.get_device_name(),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def run_suite(
    cases: list[Case], device: str, size: str, repeat: int, budget_s: float, log: Callable[[str], None]
) -> list[Row]:
    """Run ``run_case`` over ``cases``, logging one line per variant."""
    rows: list[Row] = []
    for case in cases:
        start = time.perf_counter()
        case_rows = run_case(case, device, size, repeat, budget_s=budget_s)
        for row in case_rows:
            median = f"{row['median_ms']:.3f} ms" if row["median_ms"] is not None else "-"
            log(f"{case.name:28s} {row['variant']:8s} {median:>13s}  {row['status']}")
        log(f"{'':28s} ({time.perf_counter() - start:.1f} s)")
        rows += case_rows
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def run_info(results: dict[str, Any]) -> str:
    """Markdown bullets: machine, versions, precision, command, method."""
    m, p = results["machine"], results["precision"]
    where = f"{m['gpu']} (CUDA {m['cuda']}, cuDNN {m['cudnn']})" if m["device"] == "cuda" else (
        f"{m['cpu']}, {m['cpu_threads']} threads"
    ) + f"; 1-min load average {m['load_average']} at the start"
    lines = [
        f"- **Machine:** {where}",
        f"- **Versions:** torch {m['torch']}, einconv {m['einconv'] or 'not installed'}, "
        f"tndsl {m['tndsl']} (git {m['git'] or 'unknown'}), Python {m['python']}",
        f"- **Precision:** float32, TF32 off for every variant "
        f"(`allow_tf32` = {p['torch.backends.cuda.matmul.allow_tf32']} for matmuls and "
        f"{p['torch.backends.cudnn.allow_tf32']} for cuDNN, float32 matmul precision "
        f"'{p['float32_matmul_precision']}'; cudnn.benchmark {p['cudnn.benchmark']})",
        f"- **Command:** `{m['command']}` ({m['date']})",
        f"- **Method:** {results['method']}",
    ]
    return "\n".join(lines) + "\n"


def table(results: dict[str, Any]) -> str:
    """Markdown table, one row per (case, variant)."""
    lines = [
        "| case | inputs | variant | median ms | × PyTorch | extra peak MiB | max rel err | note |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for row in results["rows"]:
        note = "" if row["status"] == "ok" else row["status"].replace("|", "\\|")
        lines.append(
            f"| {row['case']} | {row['shapes']} | {row['variant']} | {_fmt(row['median_ms'], '.3f')} "
            f"| {_fmt(row['ratio'], '.2f')} | {_fmt(row['peak_mib'], '.1f')} "
            f"| {_fmt(row['rel_err'], '.1e')} | {note} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> str | None:
    """Ratio to PyTorch's time per case (log scale), one marker per variant; a note if skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError as error:
        return f"no plot: matplotlib not installed ({error})"
    cases = list(dict.fromkeys(row["case"] for row in results["rows"]))
    fig, ax = plt.subplots(figsize=(10, 4.8))
    ax.axhline(1.0, color="grey", linewidth=1)
    for v, (variant, marker) in enumerate(zip(VARIANTS, "o^s")):
        points = [
            (cases.index(row["case"]) + 0.15 * (v - 1), row["ratio"])
            for row in results["rows"]
            if row["variant"] == variant and row["ratio"] is not None
        ]
        if points:
            ax.scatter(*zip(*points), marker=marker, s=45, label=variant, zorder=3)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}×"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}×" if f"{y:.0e}"[0] in "25" else ""))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlim(-0.5, len(cases) - 0.5)
    ax.set_xticks(range(len(cases)), cases, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("time / PyTorch's time (median per round)")
    m = results["machine"]
    ax.set_title(f"{m.get('gpu') or m['cpu']} — torch {m['torch']}, float32, TF32 off", fontsize=10)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write_results(results: dict[str, Any], out: Path) -> None:
    """Write ``results.json``, ``results.md`` and ``ratio.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    note = plot(results, out / "ratio.png")
    if note:
        results["notes"].append(note)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    notes = "".join(f"- **Note:** {n}\n" for n in results["notes"])
    (out / "results.md").write_text("# Benchmark results\n\n" + notes + run_info(results) + "\n" + table(results))


def _method(device: str, repeat: int, budget_s: float) -> str:
    clock = "CUDA events, synchronized" if device == "cuda" else "time.perf_counter"
    memory = (
        "CUDA allocator peak (max_memory_allocated after reset_peak_memory_stats) minus allocated before the call"
        if device == "cuda"
        else "peak RSS (VmHWM) of a spawned child process per (case, variant) minus its RSS before the call"
    )
    return (
        f"median of up to {repeat} interleaved rounds (≥ {MIN_ROUNDS}, {budget_s:g} s budget per case) "
        f"after a first call and 2 warm-up calls, timed with {clock}; × PyTorch is the median over "
        f"rounds of the time divided by PyTorch's time in the same round; extra peak memory: {memory}, "
        f"for one call after a first one; max rel err = max|out − ref| / max|ref| against PyTorch's way "
        f"(> {TOLERANCE:g}: 'mismatch'). einconv's expression (dense Π, simplify=True) is built once per "
        f"case; tndsl compiles once per case and plans on its first call."
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds per case (default 15)")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of timing per case before rounds stop early")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument("--cases", help=f"comma-separated subset of: {', '.join(CASES)}")
    args = parser.parse_args(argv)
    names = args.cases.split(",") if args.cases else list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")

    precision = set_precision()
    results: dict[str, Any] = {
        "machine": machine_info(args.device, argv),
        "precision": precision,
        "method": _method(args.device, args.repeat, args.budget),
        "notes": [],
        "cases": {name: {"title": CASES[name].title, "program": CASES[name].program()} for name in names},
    }
    print(f"{results['machine'].get('gpu') or results['machine']['cpu']}: float32, TF32 off", flush=True)
    results["rows"] = run_suite(
        [CASES[name] for name in names], args.device, args.size, args.repeat, args.budget,
        lambda line: print(line, flush=True),
    )
    write_results(results, args.out)
    print(f"wrote {args.out}/results.json, results.md, ratio.png")
    return 0


def smoke() -> list[Row]:
    """One tiny case (batch 1, 8×8 conv forward), one round, every variant, CPU, no memory."""
    set_precision()
    return run_case(tiny(CASES["resnet18_forward"]), "cpu", "small", repeat=1, warmup=0, memory=False)


if __name__ == "__main__":
    sys.exit(main())
