"""Planning time: tndsl's first-call planning against opt_einsum's own path search.

    python -m bench.planning [--out DIR]

Chains and 2-d grids of 50–400 matrices (no Π): tndsl's ``Function.plan`` (path, cost
model, candidate plans, op list) against ``opt_einsum.contract_path`` with the strategy
opt_einsum picks for that many operands (``auto``: greedy beyond 16); also random
3-regular networks, a leg shared by many tensors, and the first plan of every gallery
definition (at its check-line shapes). Nine interleaved rounds; the
ratio is the median over rounds of tndsl's time over opt_einsum's in the same round (robust
to a loaded machine); writes ``planning.json`` / ``planning.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import opt_einsum as oe
import torch

import tndsl
from tndsl.tools.check import parse_check_lines

__all__ = ["chain", "grid", "main", "random_regular", "star"]

ROOT = Path(__file__).resolve().parent.parent


def chain(n: int) -> tuple[str, list[tuple[int, ...]]]:
    text = "\n".join(f"input M{k}[i{k}, i{k + 1}]" for k in range(n))
    text += f"\nC[i0, i{n}] = " + " * ".join(f"M{k}[i{k}, i{k + 1}]" for k in range(n))
    return text, [(4, 4)] * n


def grid(side: int) -> tuple[str, list[tuple[int, ...]]]:
    """A closed side × side grid: each tensor shares a bond with its right and lower neighbour."""
    legs: dict[tuple[int, int], list[str]] = {(r, c): [] for r in range(side) for c in range(side)}
    for r in range(side):
        for c in range(side):
            if c + 1 < side:
                legs[(r, c)].append(f"h{r}_{c}")
                legs[(r, c + 1)].append(f"h{r}_{c}")
            if r + 1 < side:
                legs[(r, c)].append(f"v{r}_{c}")
                legs[(r + 1, c)].append(f"v{r}_{c}")
    names = sorted(legs)
    lines = [f"input T{r}_{c}[{', '.join(f'x{j}' for j in range(len(legs[(r, c)])))}]" for r, c in names]
    lines.append("Z[] = " + " * ".join(f"T{r}_{c}[{', '.join(legs[(r, c)])}]" for r, c in names))
    return "\n".join(lines), [(2,) * len(legs[key]) for key in names]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _tndsl_planner(text: str, shapes: list[tuple[int, ...]]):
    function = next(iter(tndsl.compile(text).functions.values()))
    args = [torch.empty(shape) for shape in shapes]
    return lambda: function.plan(*args)


def _opt_einsum_planner(text: str, shapes: list[tuple[int, ...]]):
    network = next(iter(tndsl.compile(text).networks.values()))
    (term,) = network.terms
    symbols: dict[str, str] = {}
    for tensor in term.tensors:
        for leg in tensor.legs:
            symbols.setdefault(leg, oe.get_symbol(len(symbols)))
    out = "".join(symbols[leg] for leg in network.output_legs)
    equation = ",".join("".join(symbols[leg] for leg in tensor.legs) for tensor in term.tensors) + "->" + out
    return lambda: oe.contract_path(equation, *shapes, shapes=True, optimize="auto")


def _compare(text: str, shapes: list[tuple[int, ...]], rounds: int = 9) -> tuple[float, float, float]:
    """Median seconds of each, and the median over interleaved rounds of their ratio."""
    ours, theirs = _tndsl_planner(text, shapes), _opt_einsum_planner(text, shapes)
    pairs = [(_seconds(ours), _seconds(theirs)) for _ in range(rounds)]
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(a / b for a, b in pairs))


def _gallery() -> list[dict]:
    rows = []
    for path in sorted((ROOT / "gallery").glob("*.tn")):
        text = path.read_text()
        program = tndsl.compile(text, str(path))
        for spec in parse_check_lines(text, str(path)):
            function = program[spec.definition]
            shapes = dict(spec.shapes)
            args = [torch.zeros(shapes[name], dtype=torch.long) if s.target else torch.randn(shapes[name])
                    for name, s in zip(function.inputs, function.network.inputs)]
            start = time.perf_counter()
            tndsl.compile(text, str(path))[spec.definition].plan(*args, **dict(spec.keywords))  # a fresh first plan
            rows.append({"network": f"{path.name}:{spec.definition}", "seconds": time.perf_counter() - start})
    return rows


def star(n: int) -> tuple[str, list[tuple[int, ...]]]:
    """``n`` matrices sharing one open leg (a hyperedge), each with a leg of its own."""
    text = "\n".join(f"input A{k}[i, a{k}]" for k in range(n))
    text += "\nY[i] = " + " * ".join(f"A{k}[i, a{k}]" for k in range(n))
    return text, [(3, 2)] * n


def random_regular(n: int, seed: int = 0) -> tuple[str, list[tuple[int, ...]]]:
    rng = random.Random(seed)
    stubs = [k for k in range(n) for _ in range(3)]
    rng.shuffle(stubs)
    legs: dict[int, list[str]] = {k: [] for k in range(n)}
    for e in range(len(stubs) // 2):
        legs[stubs[2 * e]].append(f"e{e}")
        legs[stubs[2 * e + 1]].append(f"e{e}")
    lines = [f"input T{k}[{', '.join(f'x{j}' for j in range(len(legs[k])))}]" for k in range(n)]
    lines.append("R[] = " + " * ".join(f"T{k}[{', '.join(legs[k])}]" for k in range(n)))
    return "\n".join(lines), [(2,) * len(legs[k]) for k in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/out-cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for label, (text, shapes) in [
        *((f"chain of {n}", chain(n)) for n in (50, 100, 200, 400)),
        *((f"grid {s}×{s} ({s * s} tensors)", grid(s)) for s in (7, 10, 14, 20)),
        *((f"random 3-regular, {n} tensors", random_regular(n)) for n in (16, 30)),
        *((f"one leg shared by {n} tensors", star(n)) for n in (100, 400)),
    ]:
        ours, theirs, ratio = _compare(text, shapes)
        rows.append({"network": label, "tndsl_ms": ours * 1e3, "opt_einsum_ms": theirs * 1e3, "ratio": ratio})
        print(f"{label:32s} tndsl {ours * 1e3:8.2f} ms   opt_einsum {theirs * 1e3:8.2f} ms   {ratio:5.2f}×", flush=True)
    gallery = _gallery()
    worst = max(gallery, key=lambda row: row["seconds"])
    print(f"gallery: {len(gallery)} networks, worst first plan {worst['seconds'] * 1e3:.1f} ms ({worst['network']}), "
          f"median {statistics.median(r['seconds'] for r in gallery) * 1e3:.1f} ms")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "planning.json").write_text(json.dumps({"rows": rows, "gallery": gallery}, indent=1))
    lines = ["| network | tndsl plan ms | opt_einsum path ms | × |", "|---|--:|--:|--:|"]
    lines += [f"| {r['network']} | {r['tndsl_ms']:.2f} | {r['opt_einsum_ms']:.2f} | {r['ratio']:.2f}× |" for r in rows]
    lines.append(f"\nGallery: {len(gallery)} definitions; slowest first plan {worst['seconds'] * 1e3:.1f} ms "
                 f"({worst['network']}), median {statistics.median(r['seconds'] for r in gallery) * 1e3:.1f} ms.")
    (out / "planning.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
