"""torch.compile'd tndsl against compiled PyTorch on a 2-conv block (not run in CI).

    PYTHONPATH=. python -m bench.compiled [--backend inductor] [--batch 8] [--repeat 20] [--rounds 5] [--threads 1]

Each round compiles each side fresh (dynamo reset, a fresh program: tndsl plans while
dynamo traces), in alternating order; the first call's time includes compilation.
Prints each round, then the medians over rounds and their ratios (the machine may be
shared: the median of several rounds is what means something).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import tndsl

CONV = Path(__file__).resolve().parent.parent / "gallery" / "conv.tn"


def _block_torch(x, w1, b1, w2, b2):
    return F.conv2d(torch.relu(F.conv2d(x, w1, b1, 2, 1)), w2, b2, 2, 1)


def _block_tndsl(conv):
    def block(x, w1, b1, w2, b2):
        return conv.Y2(torch.relu(conv.Y2(x, w1, b1)), w2, b2)

    return block


def _measure(fn, args, repeat: int) -> tuple[float, float]:
    start = time.perf_counter()
    fn(*args)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return first, sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    inputs = (torch.randn(args.batch, 16, 32, 32, generator=g), torch.randn(32, 16, 3, 2, generator=g),
              torch.randn(32, generator=g), torch.randn(32, 32, 3, 2, generator=g), torch.randn(32, generator=g))
    torch.compile(lambda t: t.sin() + 1, backend=args.backend)(inputs[0])  # inductor's one-time start-up, timed by neither
    rows: dict[str, list[tuple[float, float]]] = {"pytorch": [], "tndsl": []}
    for round_ in range(args.rounds):
        sides = [("pytorch", lambda: _block_torch), ("tndsl", lambda: _block_tndsl(tndsl.load(CONV)))]
        for name, make in sides if round_ % 2 == 0 else sides[::-1]:
            torch._dynamo.reset()
            compiled = torch.compile(make(), fullgraph=True, backend=args.backend)
            rows[name].append(_measure(compiled, inputs, args.repeat))
            first, median = rows[name][-1]
            print(f"round {round_ + 1} {name:8s} first call (compile) {first:7.2f} s   median call {median * 1e3:8.3f} ms")
    torch.testing.assert_close(_block_tndsl(tndsl.load(CONV))(*inputs), _block_torch(*inputs), rtol=1e-4, atol=1e-4)
    first = {name: statistics.median(r[0] for r in rows[name]) for name in rows}
    steady = {name: statistics.median(r[1] for r in rows[name]) for name in rows}
    for name in rows:
        print(f"median  {name:8s} first call (compile) {first[name]:7.2f} s   median call {steady[name] * 1e3:8.3f} ms")
    print(f"ratio tndsl/pytorch: first {first['tndsl'] / first['pytorch']:.2f}x, "
          f"median {steady['tndsl'] / steady['pytorch']:.2f}x  ({args.backend}, batch {args.batch}, {args.rounds} rounds, {args.threads} threads)")


if __name__ == "__main__":
    main()
