"""Standalone export: ``tndsl compile -o out.py --shapes ...`` writes planned torch code
that a process unable to import tndsl can import and call on those shapes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tndsl
from tndsl.ir import TnError
from tndsl.tools.cli import main
from tndsl.tools.standalone import Planned, parse_shapes

ROOT = Path(__file__).resolve().parent.parent
CONV = ROOT / "gallery" / "conv.tn"

CALLER = """
import sys
import torch
try:
    import tndsl
except ImportError:
    pass
else:
    raise SystemExit("tndsl must not be importable here")
import conv_standalone as m
g = torch.Generator().manual_seed(0)
x, w, b = torch.randn(2, 3, 9, 7, generator=g), torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)
y = m.Y2(x, w, b)
torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w, b, stride=2, padding=1))
x1, w1, b1 = torch.randn(2, 3, 11, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
torch.testing.assert_close(m.Y1(x1, w1, b1), torch.nn.functional.conv1d(x1, w1, b1, stride=2, padding=1))
try:
    m.Y2(torch.randn(1, 3, 9, 7), w, b)  # not planned: the fallback needs tndsl
except ImportError:
    print("fallback needs tndsl")
print("ok")
"""


def test_parse_shapes():
    assert parse_shapes("Y2:2x3x9x7,4x3x3x2,4") == Planned("Y2", ((2, 3, 9, 7), (4, 3, 3, 2), (4,)), torch.float32)
    assert parse_shapes("Y1:2x3,:float64") == Planned("Y1", ((2, 3), ()), torch.float64)
    for bad in ("Y2", "Y2:2x3:int64", "Y2:2x3:nope", "2:3", "Y2:2x3;import os"):
        with pytest.raises(TnError):
            parse_shapes(bad)


def test_standalone_module_runs_without_tndsl(tmp_path, capsys):
    out = tmp_path / "conv_standalone.py"
    assert main(["compile", str(CONV), "-o", str(out), "--shapes", "Y2:2x3x9x7,4x3x3x2,4",
                 "--shapes", "Y1:2x3x11,4x3x3,4:float64"]) == 0
    text = out.read_text()
    assert "import tndsl" in text and "F.conv2d(" in text and "_tndsl" not in text
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "tndsl.py").write_text("raise ImportError('tndsl is not installed here')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(tmp_path)])
    result = subprocess.run([sys.executable, "-c", CALLER], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fallback", "needs", "tndsl", "ok"]


def test_standalone_module_falls_back_to_tndsl_for_other_shapes(tmp_path):
    out = tmp_path / "conv_fallback.py"
    assert main(["compile", str(CONV), "-o", str(out), "--shapes", "Y2:2x3x9x7,4x3x3x2,4"]) == 0
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)  # noqa: S102 - the module under test
    x, w, b = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 2), torch.randn(4)
    torch.testing.assert_close(namespace["Y2"](x, w, b), tndsl.load(CONV).Y2(x, w, b))


def test_standalone_errors_name_the_definition(tmp_path):
    out = tmp_path / "x.py"
    assert main(["compile", str(CONV), "-o", str(out), "--shapes", "Nope:2x3"]) != 0
    assert main(["compile", str(CONV), "-o", str(out), "--shapes", "Y2:2x3,4"]) != 0
