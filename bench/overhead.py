"""Overheads: planning a new shape for every gallery op, and calling a cached tiny op.

    python -m bench.overhead

Planning is timed as the first call of a definition on the shapes of its ``# check:``
line (plan + code generation + one tiny run; best of 3, plan cache cleared each time).
The tiny op is a 1×4×8×8 3×3 convolution on CPU, against ``F.conv2d`` (median of 5
interleaved rounds of 2000 calls, one thread).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import tndsl
from tndsl.tools.check import parse_check_lines

GALLERY = Path(__file__).resolve().parent.parent / "gallery"


def planning_ms() -> dict[str, float]:
    times = {}
    for path in sorted(GALLERY.glob("*.tn")):
        program = tndsl.load(path)
        for spec in parse_check_lines(program.text, str(path)):
            function = program[spec.definition]
            shapes = dict(spec.shapes)
            args = [torch.randn(*shapes[name]) for name in function.inputs]
            best = float("inf")
            for _ in range(3):
                function._cache.clear()
                function._fast.clear()
                start = time.perf_counter()
                function(*args, **dict(spec.keywords))
                best = min(best, time.perf_counter() - start)
            times[f"{path.name}:{spec.definition}"] = best * 1e3
    return times


def tiny_call_ratio() -> tuple[float, float]:
    program = tndsl.compile(
        "input X[n, c, i1, i2]\ninput W[d, c, k1, k2]\npattern P = conv(padding=1)\n"
        "Y[n, d, o1, o2] = X[n, c, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[d, c, k1, k2]\n"
    )
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    program.Y(x, w)

    def rate(call) -> float:
        start = time.perf_counter()
        for _ in range(2000):
            call()
        return (time.perf_counter() - start) / 2000 * 1e6

    torch_us, tndsl_us = [], []
    for _ in range(5):
        torch_us.append(rate(lambda: F.conv2d(x, w, padding=1)))
        tndsl_us.append(rate(lambda: program.Y(x, w)))
    return statistics.median(torch_us), statistics.median(tndsl_us)


def main() -> None:
    torch.set_num_threads(1)
    times = planning_ms()
    worst = max(times, key=times.get)
    print(f"planning a new shape: {len(times)} gallery ops, median {statistics.median(times.values()):.2f} ms, "
          f"worst {times[worst]:.2f} ms ({worst})")
    torch_us, tndsl_us = tiny_call_ratio()
    print(f"cached tiny conv (1x4x8x8, CPU): F.conv2d {torch_us:.1f} us, tndsl {tndsl_us:.1f} us, "
          f"ratio {tndsl_us / torch_us:.2f}")


if __name__ == "__main__":
    main()
