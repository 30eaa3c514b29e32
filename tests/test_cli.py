"""The command line: compile (an importable module), check, render, derive; exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tndsl
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


def test_render_writes_svg_png_and_dot(program, tmp_path, capsys):
    formats = [(".svg", b"<?xml"), (".dot", b"digraph")] + ([(".png", b"\x89PNG")] if shutil.which("dot") else [])
    for suffix, magic in formats:
        out = tmp_path / f"mm{suffix}"
        assert main(["render", str(program), "-n", "C", "-o", str(out)]) == 0
        assert out.read_bytes().startswith(magic) or magic in out.read_bytes()[:200]
    assert main(["render", str(program), "-n", "Nope", "-o", str(tmp_path / "x.svg")]) == 1
    if not shutil.which("dot"):  # no Graphviz: PNG is refused with both ways out
        assert main(["render", str(program), "-o", str(tmp_path / "mm.png")]) == 1
        err = capsys.readouterr().err
        assert "PNG output needs the graphviz 'dot' program" in err and "draw SVG instead" in err


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


def test_version_and_help_with_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"tndsl {tndsl.__version__}"
    for command in ("compile", "check", "render", "derive"):
        with pytest.raises(SystemExit):
            main([command, "-h"])
        out = capsys.readouterr().out
        assert f"examples:\n  tndsl {command} gallery/" in out, command


def test_many_files_in_one_run(tmp_path, capsys):
    files = [str(ROOT / "gallery" / name) for name in ("conv.tn", "gram.tn", "trace.tn")]
    assert main(["compile", *files, "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.py")) == ["conv.py", "gram.py", "trace.py"]
    assert main(["render", *files, "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == ["conv.svg", "gram.svg", "trace.svg"]
    assert main(["render", *files, "--format", "dot", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "gram.dot").read_text().startswith('digraph "tndsl"')
    assert main(["check", *files]) == 0
    assert "gram.tn" in capsys.readouterr().out


def test_one_bad_file_does_not_stop_the_others(tmp_path, capsys):
    bad = tmp_path / "bad.tn"
    bad.write_text("input A[i]\nB[i] = A[j]\n")
    good = ROOT / "gallery" / "gram.tn"
    assert main(["compile", str(bad), str(good), "-o", str(tmp_path)]) == 1
    assert (tmp_path / "gram.py").exists() and not (tmp_path / "bad.py").exists()
    assert "bad.tn:2:" in capsys.readouterr().err


def test_output_paths_that_do_not_exist(program, tmp_path, capsys):
    assert main(["compile", str(program), "-o", str(tmp_path / "missing" / "mm.py")]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert main(["render", str(program), str(program), "-o", str(tmp_path / "missing")]) == 1
    assert "-o must be an existing directory" in capsys.readouterr().err
    assert main(["render", str(program), "-o", str(tmp_path / "missing") + "/"]) == 1
    assert "output directory" in capsys.readouterr().err


def test_render_plan_from_check_lines_and_from_shapes(tmp_path, capsys):
    conv = str(ROOT / "gallery" / "conv.tn")
    out = tmp_path / "y2.svg"
    assert main(["render", conv, "-n", "Y2", "--plan", "-o", str(out)]) == 0
    assert "① conv → F.conv2d" in out.read_text() and "plan of Y2 for X2[2, 3, 9, 7]" in out.read_text()
    shapes = "X2[8, 3, 32, 32] W2[16, 3, 3, 3], b[16] X1[1,1,1]"  # extra names are for other definitions
    assert main(["render", conv, "-n", "Y2", "--plan", "--shapes", shapes, "-o", str(out)]) == 0
    assert "plan of Y2 for X2[8, 3, 32, 32] W2[16, 3, 3, 3] b[16]" in out.read_text()
    bare = tmp_path / "bare.tn"
    bare.write_text("input A[i, j]\nB[j, i] = A[i, j]\n")
    assert main(["render", str(bare), "-n", "B", "--plan", "-o", str(out)]) == 1
    assert "no '# check:' line gives the shapes of B; give them with --shapes" in capsys.readouterr().err
    assert main(["render", str(bare), "--plan", "--shapes", "A[2, 3]", "-o", str(out)]) == 0
    assert "permute" in out.read_text()


@pytest.mark.parametrize("argv", [
    ["render", "x.tn", "-o", "x.svg", "--shapes", "X[2, a]"],
    ["render", "x.tn", "-o", "x.svg", "--max-terms", "1"],
    ["render", "x.tn", "-o", "x.svg", "--format", "gif"],
    ["check"],
])
def test_more_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_hints_reach_the_check_table(tmp_path, capsys):
    path = tmp_path / "hint.tn"
    path.write_text("# check: Y = dense() with X[2, 5]\ninput X[n, i]\npattern P = conv(stride=2)\nY[n, o] = X[n, i] * P[i, o, k]\n")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cannot infer the size of leg 'k'" in out
    assert "    hint: declare it with 'size k = N'" in out


def test_check_refuses_huge_shapes(tmp_path, capsys):
    path = tmp_path / "huge.tn"
    path.write_text("# check: B = dense() with A[100000000000]\ninput A[i]\nB[i] = A[i]\n")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "the shapes ask for 100,000,000,000 elements; a check allocates at most 10,000,000" in out
    assert "hint: use smaller shapes" in out


def test_files_that_are_not_utf8_give_a_positioned_error(tmp_path, capsys):
    path = tmp_path / "latin1.tn"
    path.write_bytes("input A[i]\n# café\nB[i] = A[i]\n".encode("latin-1"))
    for command in (["compile", str(path), "-o", str(tmp_path / "x.py")], ["check", str(path)],
                    ["render", str(path), "-o", str(tmp_path / "x.svg")], ["derive", str(path)]):
        assert main(command) == 1, command  # an exception other than TnError would escape main
        captured = capsys.readouterr()
        output = captured.out + captured.err
        assert "latin1.tn:2:6: the file is not UTF-8 text: byte 0xe9" in output, command
        assert "hint: save the file as UTF-8" in output, command
    with pytest.raises(tndsl.TnSyntaxError, match="save the file as UTF-8"):
        tndsl.load(path)
