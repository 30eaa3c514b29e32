"""Networks beyond the gallery, side by side: PyTorch's way, tndsl, tndsl without lowering.

    python -m bench.open_world [--device cpu|cuda] [--budget S] [--threads N] [--out DIR] [--docs PAGE]

Cases: a Tucker- and a CP-factorized convolution, the GGN Gram matrix of a conv layer,
fold (col2im), pixel shuffle, and a randomized weight VJP at 25 % of the output
positions (against the full weight VJP). Every variant computes the same tensor from the
same inputs; times are medians of interleaved rounds (the order runs through every
permutation, so each variant follows each other one equally often), float32, TF32 off
(set identically for every variant by :func:`bench.run.set_precision`). Writes
``open_world.json`` and ``open_world.md`` into ``--out``, prints the table, and with
``--docs`` rewrites that page's section between ``<!-- bench:open-world:DEVICE:start -->``
and ``...:end -->`` with the table and issue 10's targets, met or missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

import tndsl
from bench.run import _rel_err, _sync, _timer, machine_info, set_precision

__all__ = ["CASES", "main", "run"]


@dataclass(frozen=True)
class Case:
    """A network, the arguments of its definition, and PyTorch's way of computing it."""

    name: str
    title: str
    program: str
    definition: str
    inputs: Callable[[str], tuple[Tensor, ...]]
    pytorch: Callable[..., Tensor]
    keywords: tuple[tuple[str, int], ...] = ()
    baseline: str = "pytorch"  # the variant the other times are divided by


def _randn(device: str, *shape: int) -> Tensor:
    return torch.randn(*shape, device=device)


TUCKER = """
input X[n, c, i, j]
input U[c, r]
input G[r, s, k, l]
input V[s, d]
pattern P = conv(padding=1)
Y[n, d, o, p] = X[n, c, i, j] * U[c, r] * P[i, o, k] * P[j, p, l] * G[r, s, k, l] * V[s, d]
"""

CP = """
input X[n, c, i, j]
input A[c, r]
input Bk[r, k]
input Bl[r, l]
input D[r, d]
pattern P = conv(padding=1)
Y[n, d, o, p] = X[n, c, i, j] * A[c, r] * P[i, o, k] * Bk[r, k] * P[j, p, l] * Bl[r, l] * D[r, d]
"""

GGN = """
input X[n, c, i, j]
input S[m, n, d, o, p]
pattern P = conv(padding=1)
size k = 3
size l = 3
J[m, d, c, k, l] = X[n, c, i, j] * P[i, o, k] * P[j, p, l] * S[m, n, d, o, p]
G[(d c k l), (e f q r)] = J[m, d, c, k, l] * J[m, e, f, q, r]
"""

FOLD = """
input Z[n, c, k1, k2, o1, o2]
pattern P = conv(stride=2, padding=1)
size i1
size i2
Y[n, c, i1, i2] = Z[n, c, k1, k2, o1, o2] * P[i1, o1, k1] * P[i2, o2, k2]
"""

SHUFFLE = """
input X[n, (c k1 k2), h, w]
size k1 = 2
size k2 = 2
pattern P = conv(stride=2)
Y[n, c, H, W] = X[n, c, k1, k2, h, w] * P[H, h, k1] * P[W, w, k2]
"""

RANDOMIZED = """
input X[n, c, i1, i2]
input V[n, d, o1, o2]
index J[s -> (o1 o2)]
pattern P = conv(padding=1)
size k1 = 3
size k2 = 3
Full[d, c, k1, k2] = X[n, c, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * V[n, d, o1, o2]
Sampled[d, c, k1, k2] = (X[n, c, i1, i2] * P[i1, q1, k1] * P[i2, q2, k2] * J[s, q1, q2]
                         * V[n, d, o1, o2] * J[s, o1, o2] * |o1| * |o2| / |s|)
"""


def _tucker(x: Tensor, u: Tensor, g: Tensor, v: Tensor) -> Tensor:
    y = F.conv2d(x, u.t()[:, :, None, None])
    y = F.conv2d(y, g.transpose(0, 1), padding=1)
    return F.conv2d(y, v.t()[:, :, None, None])


def _cp(x: Tensor, a: Tensor, bk: Tensor, bl: Tensor, d: Tensor) -> Tensor:
    rank = a.shape[1]
    y = F.conv2d(x, a.t()[:, :, None, None])
    y = F.conv2d(y, bk[:, None, :, None], padding=(1, 0), groups=rank)
    y = F.conv2d(y, bl[:, None, None, :], padding=(0, 1), groups=rank)
    return F.conv2d(y, d.t()[:, :, None, None])


def _ggn(x: Tensor, s: Tensor) -> Tensor:
    """Per loss column, the weight Jacobian-vector product (a weight VJP); then J Jᵀ."""
    m, _, d = s.shape[:3]
    c = x.shape[1]
    j = torch.stack([torch.nn.grad.conv2d_weight(x, (d, c, 3, 3), s[k], padding=1) for k in range(m)])
    flat = j.reshape(m, -1)
    return flat.t() @ flat


def _fold(z: Tensor) -> Tensor:
    n, c, k1, k2, o1, o2 = z.shape
    return F.fold(z.reshape(n, c * k1 * k2, o1 * o2), (2 * o1, 2 * o2), (k1, k2), padding=1, stride=2)


def _randomized_full(x: Tensor, v: Tensor, j: Tensor) -> Tensor:
    return torch.nn.grad.conv2d_weight(x, (v.shape[1], x.shape[1], 3, 3), v, padding=1)


CASES: dict[str, Case] = {
    case.name: case
    for case in [
        Case("tucker_conv", "Tucker-factorized conv (X 8×32×32×32, rank 8)", TUCKER, "Y",
             lambda dev: (_randn(dev, 8, 32, 32, 32), _randn(dev, 32, 8), _randn(dev, 8, 8, 3, 3), _randn(dev, 8, 32)), _tucker),
        Case("cp_conv", "CP-factorized conv (X 8×32×32×32, rank 8)", CP, "Y",
             lambda dev: (_randn(dev, 8, 32, 32, 32), _randn(dev, 32, 8), _randn(dev, 8, 3), _randn(dev, 8, 3), _randn(dev, 8, 32)), _cp),
        Case("ggn_gram", "GGN Gram of a conv layer (X 4×8×16×16, 5 loss columns, 16 out)", GGN, "G",
             lambda dev: (_randn(dev, 4, 8, 16, 16), _randn(dev, 5, 4, 16, 16, 16)), _ggn),
        Case("fold", "fold / col2im (Z 8×16×3×3×16×16 → 32²)", FOLD, "Y",
             lambda dev: (_randn(dev, 8, 16, 3, 3, 16, 16),), _fold, (("i1", 32), ("i2", 32))),
        Case("pixel_shuffle", "pixel shuffle ×2 (X 8×64×32×32)", SHUFFLE, "Y",
             lambda dev: (_randn(dev, 8, 64, 32, 32),), lambda x: F.pixel_shuffle(x, 2)),
        Case("randomized_weight_vjp", "randomized weight VJP, 25 % of positions (X 8×64×56×56 → 64), vs the full VJP",
             RANDOMIZED, "Sampled",
             lambda dev: (_randn(dev, 8, 64, 56, 56), _randn(dev, 8, 64, 56, 56),
                          torch.randperm(56 * 56, device=dev)[: 56 * 56 // 4]),
             _randomized_full, baseline="full"),
    ]
}


def _variants(case: Case, device: str) -> dict[str, Callable[..., Tensor]]:
    keywords = dict(case.keywords)
    by_cost = tndsl.compile(case.program)
    plain = tndsl.compile(case.program, lowering=False)
    variants: dict[str, Callable[..., Tensor]] = {
        "pytorch": case.pytorch,
        "tndsl": lambda *a: by_cost[case.definition](*a, **keywords),
        "tndsl-no-lowering": lambda *a: plain[case.definition](*a, **keywords),
    }
    if case.baseline == "full":  # the full VJP, the same way the sampled one is computed
        variants = {"full": lambda *a: by_cost["Full"](*a[:2]), "tndsl": variants["tndsl"]}
    return variants


def run(device: str = "cpu", budget: float = 8.0, names: list[str] | None = None) -> list[dict]:
    """Time every case; one row per (case, variant)."""
    set_precision()
    timer = _timer(device)
    rows = []
    for case in (CASES[name] for name in names or list(CASES)):
        torch.manual_seed(0)
        args = case.inputs(device)
        variants = _variants(case, device)
        reference = None
        for name, fn in variants.items():
            out = fn(*args)  # first call: tndsl plans here
            if case.baseline == "pytorch":
                reference = out if reference is None else reference
                error = _rel_err(out, reference)
                if error > 1e-3:
                    raise AssertionError(f"{case.name}/{name}: max rel err {error:.1e}")
            for _ in range(2):
                fn(*args)
        _sync(device)
        times: dict[str, list[float]] = {name: [] for name in variants}
        ratios: dict[str, list[float]] = {name: [] for name in variants}
        to_best: list[float] = []  # tndsl over the faster of the other variants, per round
        orders = list(itertools.permutations(variants))  # what ran just before a call can slow it (thread pools)
        spent, rounds = 0.0, 0
        while rounds < 6 or (spent < budget and rounds < 30):
            round_times = {}
            for name in orders[rounds % len(orders)]:
                round_times[name] = timer(lambda: variants[name](*args))
            for name, value in round_times.items():
                times[name].append(value)
                ratios[name].append(value / round_times[case.baseline])
            to_best.append(round_times["tndsl"] / min(v for k, v in round_times.items() if k != "tndsl"))
            spent += sum(round_times.values()) / 1e3
            rounds += 1
        for name in variants:
            rows.append({
                "case": case.name, "title": case.title, "variant": name,
                "ms": statistics.median(times[name]), "ratio": statistics.median(ratios[name]),
                "baseline": case.baseline, "rounds": rounds,
                "to_best": statistics.median(to_best) if name == "tndsl" else None,
            })
            print(f"{case.name:24s} {name:18s} {rows[-1]['ms']:9.3f} ms  {rows[-1]['ratio']:.2f}×", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| case | variant | median ms | × baseline |", "|---|---|--:|--:|"]
    for row in rows:
        base = "PyTorch" if row["baseline"] == "pytorch" else "full VJP"
        lines.append(f"| {row['title']} | {row['variant']} | {row['ms']:.3f} | {row['ratio']:.2f}× {base} |")
    return "\n".join(lines)


def targets(rows: list[dict]) -> str:
    """Issue 10's targets against ``rows``: tndsl ≤ 1.1× the faster of PyTorch's way and
    tndsl without lowering on each case with a PyTorch baseline; the randomized VJP at 25 %
    ≤ 0.4× the full VJP (medians over rounds of the per-round ratio)."""
    lines = ["| case | target | measured | |", "|---|---|--:|---|"]
    for row in rows:
        if row["variant"] != "tndsl":
            continue
        if row["baseline"] == "pytorch":
            goal, value, limit = "≤ 1.1× the faster of PyTorch and no lowering", row["to_best"], 1.1
        else:
            goal, value, limit = "≤ 0.4× the full VJP", row["ratio"], 0.4
        lines.append(f"| {row['title']} | {goal} | {value:.2f}× | {'met' if value <= limit else '**missed**'} |")
    return "\n".join(lines)


def section(rows: list[dict], info: dict) -> str:
    """The docs section for one run: how it was made, the table, the targets."""
    where = info.get("gpu") or f"{info['cpu']}, {info['cpu_threads']} threads"
    return (
        f"`{info['command']}` on {info['date']} ({where}, load average {info['load_average']} at the start; "
        "float32, TF32 off; medians of interleaved rounds whose order runs through every permutation). "
        "\"tndsl\" chooses each term's plan by cost; \"tndsl-no-lowering\" is `lowering=False`; "
        "\"× baseline\" is the median over rounds of the ratio to the baseline in the same round.\n\n"
        f"{table(rows)}\n\nIssue 10's targets (the ratio is the median over rounds of tndsl's time over the "
        f"faster of the other variants, or over the full VJP, in the same round):\n\n{targets(rows)}\n"
    )


def refresh(docs: Path, rows: list[dict], info: dict) -> None:
    """Replace the device's open-world section of ``docs`` (appended if it has none)."""
    start, end = f"<!-- bench:open-world:{info['device']}:start -->", f"<!-- bench:open-world:{info['device']}:end -->"
    block = f"{start}\n{section(rows, info)}{end}"
    page = docs.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    page = pattern.sub(lambda _: block, page) if pattern.search(page) else page.rstrip() + "\n\n" + block + "\n"
    docs.write_text(page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget", type=float, default=8.0, help="seconds of timing per case")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--out", default="bench/out-cpu")
    parser.add_argument("--docs", type=Path, help="a page whose open-world section to rewrite (docs/benchmarks.md)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    words = sys.argv[1:] if argv is None else argv
    info = {**machine_info(args.device, []), "command": " ".join(["python -m bench.open_world", *words])}
    rows = run(args.device, args.budget, [c for c in args.cases.split(",") if c] or None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_world.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1, default=str))
    (out / "open_world.md").write_text(table(rows) + "\n")
    print(table(rows))
    print(targets(rows))
    if args.docs:
        refresh(args.docs, rows, info)
        print(f"updated {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
