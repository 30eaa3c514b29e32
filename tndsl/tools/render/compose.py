"""Pictures from pieces: each piece is laid out by ``dot`` on its own, then placed.

A term, a title, a coefficient or a plan panel is a :class:`Block`: a small graph that
``dot`` lays out alone (one process for all blocks of a picture). The blocks are then
moved into place — terms side by side on a shared baseline, long sums wrapped onto more
lines, definitions stacked — and the picture is written as one graph whose nodes and
lines carry their final positions (``layout=nop2``), which graphviz only draws. Laying
out pieces separately keeps the time linear in the number of terms: one ``dot`` run over
a 30-term sum took minutes, thirty small ones take about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from . import engine
from .dot import Graph, Value

__all__ = ["Block", "Canvas", "STYLE", "lay_out"]

FONT = "DejaVu Sans"
#: Attributes every block and the final picture share (node sizes must match in both).
STYLE: dict[str, dict[str, Value]] = {
    "graph": {"nodesep": 0.3, "ranksep": 0.4},
    "node": {"fontname": FONT, "fontsize": 14},
    "edge": {"dir": "none", "fontname": FONT, "fontsize": 11, "fontcolor": "#555555", "penwidth": 1.4},
}
_LAYOUT_ONLY = ("headport", "tailport", "weight", "minlen", "constraint")


@dataclass
class Block:
    """A graph laid out on its own; ``layout`` holds graphviz's JSON once :func:`lay_out` ran."""

    name: str
    graph: Graph
    layout: dict[str, Any] = field(default_factory=dict)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Lower-left x, y and upper-right x, y, in points (y grows upwards)."""
        llx, lly, urx, ury = (float(v) for v in self.layout["bb"].split(","))
        return llx, lly, urx, ury

    @property
    def width(self) -> float:
        llx, _, urx, _ = self.box
        return urx - llx

    @property
    def height(self) -> float:
        _, lly, _, ury = self.box
        return ury - lly


def lay_out(blocks: Sequence[Block]) -> None:
    """Lay out every block (one graphviz run for all of them)."""
    sources = []
    for block in blocks:
        graph = block.graph
        graph.attrs = {**STYLE["graph"], **graph.attrs}
        graph.node_defaults = {**STYLE["node"], **graph.node_defaults}
        graph.edge_defaults = {**STYLE["edge"], **graph.edge_defaults}
        for number, (_, _, attrs) in enumerate(graph.edges):
            attrs.setdefault("id", f"{block.name}e{number}")
        sources.append(graph.source(block.name))
    for block, layout in zip(blocks, engine.layout(sources)):
        block.layout = layout


@dataclass
class Canvas:
    """Blocks placed at offsets; becomes one graph with every position fixed."""

    placed: list[tuple[Block, float, float]] = field(default_factory=list)

    def place(self, block: Block, left: float, bottom: float) -> None:
        """Put ``block`` with its lower-left corner at (``left``, ``bottom``)."""
        llx, lly, _, _ = block.box
        self.placed.append((block, left - llx, bottom - lly))

    def graph(self, attrs: dict[str, Value]) -> Graph:
        out = Graph(attrs={"layout": "nop2", **attrs}, node_defaults=dict(STYLE["node"]), edge_defaults=dict(STYLE["edge"]))
        for block, dx, dy in self.placed:
            node_defaults = _own(block.graph.node_defaults, STYLE["node"])
            edge_defaults = _own(block.graph.edge_defaults, STYLE["edge"])
            positions = {o["name"]: o for o in block.layout.get("objects", []) if "pos" in o}
            for name, attrs_ in block.graph.nodes.items():
                laid = positions[name]
                node: dict[str, Value] = {**node_defaults, **attrs_, "pos": _shift(laid["pos"], dx, dy) + "!"}
                if "xlp" in laid:
                    node["xlp"] = _shift(laid["xlp"], dx, dy)
                out.node(name, **node)
            edges = {e.get("id"): e for e in block.layout.get("edges", [])}
            for tail, head, attrs_ in block.graph.edges:
                if attrs_.get("style") == "invis":
                    continue
                laid = edges[attrs_["id"]]
                edge = {k: v for k, v in {**edge_defaults, **attrs_}.items() if k not in _LAYOUT_ONLY}
                for key in ("pos", "lp", "xlp", "head_lp", "tail_lp"):
                    if key in laid:
                        edge[key] = _shift(laid[key], dx, dy)
                out.edge(tail, head, **edge)
        return out


def _own(defaults: dict[str, Value], shared: dict[str, Value]) -> dict[str, Value]:
    """A block's default attributes that differ from the picture's."""
    return {key: value for key, value in defaults.items() if shared.get(key) != value}


def _shift(value: str, dx: float, dy: float) -> str:
    """A graphviz point list (``x,y``, ``e,x,y``, space-separated) moved by (dx, dy)."""
    points = []
    for token in value.split():
        parts = token.split(",")
        prefix, (x, y) = parts[:-2], parts[-2:]
        points.append(",".join([*prefix, _number(float(x) + dx), _number(float(y) + dy)]))
    return " ".join(points)


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
