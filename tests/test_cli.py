"""The command line: compile (an importable module), check, render, derive; exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tndsl.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = """# mm.tn
# check: C = dense() with A[2, 3], B[3, 4]
# check: lambda = dense() with A[2, 3]
input A[i, j]
input B[j, k]
C[i, k] = A[i, j] * B[j, k]
lambda[i] = A[i, j]
"""


@pytest.fixture
def program(tmp_path) -> Path:
    path = tmp_path / "mm.tn"
    path.write_text(PROGRAM)
    return path


def test_compile_writes_an_importable_module(program, tmp_path, capsys):
    out = tmp_path / "mm_module.py"
    assert main(["compile", str(program), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    code = (
        "import torch, mm_module;"
        "a, b = torch.ones(2, 3), torch.ones(3, 4);"
        "print(mm_module.C(a, b).sum().item(), mm_module.tn_lambda(a).tolist(), mm_module.__all__)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "24.0 [3.0, 3.0] ['C', 'tn_lambda']"


def test_check_prints_a_table_and_sets_the_exit_code(program, tmp_path, capsys):
    assert main(["check", str(program)]) == 0
    out = capsys.readouterr().out
    assert "2/2 passed" in out and "mm.tn" in out
    bad = tmp_path / "bad.tn"
    bad.write_text("# check: C = dense() with A[2, 3]\ninput A[i, j]\nC[i] = A[i, j]\nD[i] = A[i, j]\n")
    assert main(["check", str(bad)]) == 1


def test_render_writes_svg_png_and_dot(program, tmp_path):
    for suffix, magic in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".dot", b"digraph")):
        out = tmp_path / f"mm{suffix}"
        assert main(["render", str(program), "-n", "C", "-o", str(out)]) == 0
        assert out.read_bytes().startswith(magic) or magic in out.read_bytes()[:200]
    assert main(["render", str(program), "-n", "Nope", "-o", str(tmp_path / "x.svg")]) == 1


def test_derive_prints_plain_definitions(tmp_path, capsys):
    path = tmp_path / "d.tn"
    path.write_text("input A[i, j]\ninput V[i]\nY[i] = A[i, j] * A[i, j]\nG = vjp(Y, A, V)\n")
    assert main(["derive", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vjp" not in out and out.startswith("input A[i, j]")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_module_entry_point(program):
    result = subprocess.run(
        [sys.executable, "-m", "tndsl", "check", str(program)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0 and "2/2 passed" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tndsl", "compile", "missing.tn", "-o", "x.py"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "cannot read" in result.stderr
