"""CUDA correctness: every gallery definition checked on the GPU, plus dtype behaviour.

Run on a CUDA machine from the repository root: ``python3 bench/gpu_check.py``. Prints a
table per dtype and exits 1 on any failure. TF32 is off so float32 is checked at 1e-5.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tndsl  # noqa: E402
from tndsl.tools.check import check_file, format_table  # noqa: E402


def main() -> int:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, TF32 off")
    failed = 0
    for dtype in (torch.float64, torch.float32):
        rows = []
        start = time.perf_counter()
        for path in sorted((ROOT / "gallery").glob("*.tn")):
            rows += check_file(path, dtype=dtype, device="cuda")
        failed += sum(not row.passed for row in rows)
        print(f"\n== {dtype} on cuda ({time.perf_counter() - start:.1f} s)")
        print(format_table(rows))
    program = tndsl.load(ROOT / "gallery" / "conv.tn")
    x = torch.randn(2, 3, 9, 7, device="cuda")
    w = torch.randn(4, 3, 3, 2, device="cuda")
    b = torch.randn(4, device="cuda")
    reference = program.Y2(x.double(), w.double(), b.double())
    for dtype, tol in ((torch.float16, 1e-2), (torch.bfloat16, 5e-2)):
        out = program.Y2(x.to(dtype), w.to(dtype), b.to(dtype))
        error = ((out.double() - reference).abs().max() / reference.abs().max()).item()
        ok = out.dtype == dtype and out.device.type == "cuda" and error < tol
        failed += not ok
        print(f"{dtype}: dtype kept {out.dtype == dtype}, device {out.device}, rel.err {error:.1e}: {'ok' if ok else 'FAIL'}")
    mixed = program.Y2(x, w.double(), b)
    ok = mixed.dtype == torch.float64
    failed += not ok
    print(f"float32 x float64 promotes to {mixed.dtype}: {'ok' if ok else 'FAIL'}")
    print(f"\n{'all passed' if not failed else f'{failed} FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
