"""Make the generated parts of the docs (``make docs``): every picture the docs show —
the gallery's diagrams, the plan drawings, the tutorial's pictures, the before/after
pairs of docs/rewrites.md — and docs/gallery.md from the gallery files' headers.

Run from the repository root: ``python docs/pictures.py``. The output is committed; the
pictures come from the renderer only (``tndsl.tools.render``), never drawn by hand, and
tests/test_docs.py checks that docs/gallery.md is what :func:`gallery_page` writes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tndsl
from tndsl.ir import Network, sizes_of, solve
from tndsl.tools.render import render, render_program
from tndsl.tools.render.plan import check_line_shapes
from tndsl.transforms import simplify

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"


def _write(path: Path, svg: str | bytes) -> None:
    path.write_text(svg if isinstance(svg, str) else svg.decode("utf-8"), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def _sizes(program: tndsl.Program, name: str) -> dict[str, int]:
    """Every label's size for the shapes of ``name``'s check line."""
    shapes = check_line_shapes(program)[name]
    network = program[name].network
    keywords = {k: v for k, v in shapes.items() if isinstance(v, int)}
    values, _ = solve(network, [shapes[spec.name] for spec in network.inputs], keywords)
    return sizes_of(values)


def _renamed(network: Network, name: str) -> Network:
    return dataclasses.replace(network, name=name)


#: Gallery files whose page entry also shows the plan drawing (docs/img/NAME_plan.svg).
PLANS = {"conv": "Y2", "kfc": "Omega2", "kfac_reduce": "Omega2"}


def caption(path: Path) -> str:
    """A gallery file's header as one paragraph: its title, then What, Where, PyTorch."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or line.startswith("# check:"):
            break
        lines.append(line[1:].strip())
    paragraphs, current = [], []
    for line in lines + [""]:
        if line and not (current and line.split(":")[0] in ("What", "Where", "PyTorch")):
            current.append(line)
        else:
            if current:
                paragraphs.append(" ".join(current))
            current = [line] if line else []
    title, *fields = paragraphs
    title = title.split(" — ", 1)[1] if " — " in title else title
    parts = [title[0].upper() + title[1:]]
    for field in fields:
        key, _, text = field.partition(":")
        parts.append(f"*{key}:* {text.strip()}" if key in ("What", "Where", "PyTorch") else field)
    return "\n\n".join(parts)


def gallery_page() -> str:
    """The text of docs/gallery.md."""
    out = [
        "# Gallery",
        "",
        "Every program in [`gallery/`](../gallery/) with its diagram, captioned by its own header.",
        "`make demo` compiles, checks (`tndsl check`) and draws them all; `make docs` redraws the",
        "committed pictures and this page (`docs/pictures.py`). For conv, KFC and KFAC-reduce the",
        "plan drawing follows the diagram: the steps tndsl runs for the shapes of the file's",
        "`# check:` line, the torch op of each and its cost (see [diagrams.md](diagrams.md#plans)).",
    ]
    for path in sorted((ROOT / "gallery").glob("*.tn")):
        out += ["", f"## {path.name}", "", caption(path), "", f"![{path.stem}](../gallery/{path.stem}.svg)"]
        if path.stem in PLANS:
            out += ["", f"The plan of {PLANS[path.stem]} (`tndsl render gallery/{path.name} -n {PLANS[path.stem]} --plan`):",
                    "", f"![{path.stem} plan](img/{path.stem}_plan.svg)"]
    return "\n".join(out) + "\n"


def gallery() -> None:
    for path in sorted((ROOT / "gallery").glob("*.tn")):
        _write(path.with_suffix(".svg"), render(tndsl.load(path)))


def plans() -> None:
    for file, name in PLANS.items():
        program = tndsl.load(ROOT / "gallery" / f"{file}.tn")
        _write(IMG / f"{file}_plan.svg", render(program[name], plan=check_line_shapes(program)[name]))


def tutorial() -> None:
    program = tndsl.load(ROOT / "docs" / "tutorial" / "dwsep.tn")
    _write(IMG / "dwsep.svg", render_program([program.networks[n] for n in ("H", "Y", "GD")]))
    shapes = {"X": (8, 4, 32, 32), "D": (4, 1, 3, 3), "Q": (6, 4)}
    _write(IMG / "dwsep_plan.svg", render(program.Y, plan=shapes))


def rewrites() -> None:
    program = tndsl.load(ROOT / "docs" / "examples" / "rewrites.tn")
    networks = program.networks
    for name, pair in (("grad", ("Y", "J")), ("vjp", ("Y", "G")), ("jvp", ("Y", "JV")), ("vmap", ("Ys", "Yb"))):
        _write(IMG / f"rewrite_{name}.svg", render_program([networks[n] for n in pair]))
    patchify = tndsl.load(ROOT / "gallery" / "patchify.tn")
    downsample = tndsl.load(ROOT / "gallery" / "downsample.tn")
    pairs = (
        ("dense_pattern", patchify, "Y1", simplify.dense_pattern),
        ("downsample_pattern", downsample, "Y1", simplify.downsample_pattern),
        ("summed_pattern", program, "Zsum", simplify.summed_pattern),
    )
    for name, source, definition, rewrite in pairs:
        before = source[definition].network
        after = rewrite(before, _sizes(source, definition))
        assert after != before, name
        _write(IMG / f"simplify_{name}.svg", render_program([before, _renamed(after, f"{definition}′")]))


if __name__ == "__main__":
    IMG.mkdir(exist_ok=True)
    gallery()
    plans()
    tutorial()
    rewrites()
    (ROOT / "docs" / "gallery.md").write_text(gallery_page(), encoding="utf-8")
    print("wrote docs/gallery.md")
