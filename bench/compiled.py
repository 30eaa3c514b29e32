"""torch.compile'd tndsl against compiled PyTorch on a 2-conv block (not run in CI).

    PYTHONPATH=. python -m bench.compiled [--backend inductor] [--batch 8] [--repeat 20]

Each side is compiled fresh (dynamo reset, a fresh program: tndsl plans inside the
trace); the first call's time includes compilation. Prints one row per side and the ratio.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    inputs = (torch.randn(args.batch, 16, 32, 32, generator=g), torch.randn(32, 16, 3, 2, generator=g),
              torch.randn(32, generator=g), torch.randn(32, 32, 3, 2, generator=g), torch.randn(32, generator=g))
    torch.compile(lambda t: t.sin() + 1, backend=args.backend)(inputs[0])  # inductor's one-time start-up, timed by neither
    rows = {}
    for name, fn in (("pytorch", _block_torch), ("tndsl", _block_tndsl(tndsl.load(CONV)))):
        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True, backend=args.backend)
        rows[name] = _measure(compiled, inputs, args.repeat)
        print(f"{name:8s} first call (compile) {rows[name][0]:7.2f} s   median call {rows[name][1] * 1e3:8.3f} ms")
    torch.testing.assert_close(_block_tndsl(tndsl.load(CONV))(*inputs), _block_torch(*inputs), rtol=1e-4, atol=1e-4)
    print(f"ratio tndsl/pytorch: first {rows['tndsl'][0] / rows['pytorch'][0]:.2f}x, "
          f"median {rows['tndsl'][1] / rows['pytorch'][1]:.2f}x  ({args.backend}, batch {args.batch})")


if __name__ == "__main__":
    main()
