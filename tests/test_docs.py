"""The docs cannot rot: their code runs, their pictures and links exist, their files match.

- every ```python block of docs/*.md and README.md runs (a page's blocks in order, in one
  namespace, from the repository root);
- every `tndsl ...` line of a ```sh block runs through the CLI and exits 0 (outputs go to
  a temporary directory);
- a block announced by ``<!-- file: PATH -->`` is exactly that file;
- every relative link and picture points at a file of the repository;
- every ``tndsl.x.y`` name in backticks can be imported;
- no reference to a document that is not in the repository (``DESIGN §2``);
- docs/gallery.md is what ``docs/pictures.py`` writes.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import io
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tndsl.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
_BLOCK = re.compile(r"^(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.M | re.S)


def _blocks(page: Path, lang: str) -> list[re.Match[str]]:
    return [m for m in _BLOCK.finditer(page.read_text(encoding="utf-8")) if m["lang"] == lang]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")], ids=_id)
def test_python_blocks_run(page: Path, at_root, capsys) -> None:
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(_blocks(page, "python"), 1):
        code = compile(block["body"], f"{_id(page)} (python block {number})", "exec")
        exec(code, namespace)  # noqa: S102 - the repository's own documentation


def _commands(page: Path) -> list[list[str]]:
    commands = []
    for block in _blocks(page, "sh"):
        for line in block["body"].splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("tndsl "):
                commands.append(shlex.split(line)[1:])
    return commands


@pytest.mark.parametrize("page", [p for p in PAGES if _commands(p)], ids=_id)
def test_shell_commands_run(page: Path, tmp_path, monkeypatch) -> None:
    """``tndsl`` lines of the page's shell blocks, run in a scratch directory that sees the
    repository's gallery and docs (PNG only where the ``dot`` program is installed)."""
    for name in ("gallery", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    for arguments in _commands(page):
        if arguments[0] in ("--version",) or (any(a.endswith(".png") for a in arguments) and not shutil.which("dot")):
            continue
        expanded = [match for a in arguments for match in (sorted(glob.glob(a)) if "*" in a else [a])]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(expanded) == 0, arguments


@pytest.mark.parametrize("page", [p for p in PAGES if any(m["file"] for m in _BLOCK.finditer(p.read_text()))], ids=_id)
def test_quoted_files_match(page: Path) -> None:
    for block in _BLOCK.finditer(page.read_text(encoding="utf-8")):
        if block["file"]:
            assert (ROOT / block["file"]).read_text(encoding="utf-8") == block["body"], block["file"]


_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)")


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_links_and_pictures_exist(page: Path) -> None:
    prose = re.sub(r"`[^`\n]*`", "", _BLOCK.sub("", page.read_text(encoding="utf-8")))
    for target in _LINK.findall(prose):
        assert (page.parent / target).exists(), f"{_id(page)} links to missing {target}"


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_python_names_resolve(page: Path) -> None:
    for name in set(re.findall(r"`(tndsl(?:\.\w+)+)", page.read_text(encoding="utf-8"))):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                value = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                value = getattr(value, attribute)
            break


def test_no_references_to_absent_documents() -> None:
    files = [*PAGES, *(ROOT / "tndsl").rglob("*.py"), *(ROOT / "gallery").glob("*.tn"), ROOT / "Makefile"]
    for path in files:
        if path.name == "design.md":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"DESIGN(?:\.md| ?§)", text), f"{path.relative_to(ROOT)} refers to DESIGN"


def test_gallery_page_is_generated() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        pictures = importlib.import_module("pictures")
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8") == pictures.gallery_page(), (
        "docs/gallery.md is stale: run make docs"
    )
    for path in (ROOT / "gallery").glob("*.tn"):
        caption = pictures.caption(path)
        assert caption and not caption.rstrip().endswith((" the", " and", " uses", " of", ",")), path.name


def test_every_picture_is_an_svg_drawn_by_tndsl() -> None:
    for path in [*(ROOT / "docs" / "img").glob("*.svg"), *(ROOT / "gallery").glob("*.svg")]:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<?xml") and 'class="title"' in text, path.name
    os.stat(ROOT / "docs" / "pictures.py")
