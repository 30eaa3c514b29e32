"""Drawing networks as tensor-network diagrams (Penrose notation) with graphviz.

Notation: an input tensor is a rounded box with its name; a pattern Π is a square orange
box labelled ``Π`` and its parameters; a delta tensor, a hyperedge (a label on three or more
legs, or on two legs and the output) and a summed or broadcast single leg are black dots; a
label joining exactly two legs is a line labelled with it, a loop when both legs belong to
one tensor (a trace). Open legs end in their label on the bottom row, in output order; the
legs of a grouped output axis merge into one thick leg labelled ``(a b)``. A definition
reads as an equation, ``NAME =`` and its terms side by side, each preceded by its sign and
coefficient (``−2·|n|⁻¹``); several definitions stack top to bottom.

The SVG is post-processed so that tools can find things by class: every tensor node's group
has ``class="tensor"``, ``"pattern"`` (Π) or ``"delta"`` (deltas and hyperedge dots), every
open leg's end ``class="open-leg"``; lines are ``"leg"`` (``"group-leg"`` when thick), the
junction of a group ``"merge"``, the ``NAME =`` text ``"title"``, signs ``"coefficient"``.
The output is a pure function of the networks (byte-identical for one graphviz version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import graphviz

from ..ir import Coeff, Kind, Network, Term, TnNotSupportedError

__all__ = ["FORMATS", "to_dot", "program_to_dot", "render", "render_program"]

FORMATS = ("svg", "png", "dot")

_FONT = "DejaVu Sans"
_INPUT_FILL = "#dbe8f5"
_INPUT_LINE = "#2f5d8a"
_PATTERN_FILL = "#fbd9b0"
_PATTERN_LINE = "#b0601a"
_LABEL_COLOR = "#555555"
_PNG_DPI = "144"
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_CLASS = re.compile(r'class="(?:node|edge) ([a-z]+(?:&#45;[a-z]+)*)"')
_INSTALL_HINT = (
    "rendering to {format} needs the graphviz 'dot' program, which was not found on PATH; "
    "install graphviz (Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz, "
    "conda: conda install graphviz), or use format='dot' for the graphviz source"
)


def to_dot(network: Network) -> str:
    """The graphviz source of one network's diagram; needs no graphviz binary."""
    return program_to_dot([network])


def program_to_dot(networks: Iterable[Network]) -> str:
    """The graphviz source of several networks, one titled block per definition."""
    return _source(tuple(networks), dpi=None)


def render(what: Network | Any, format: str = "svg") -> str | bytes:
    """The diagram of a network, a compiled function or a whole program (every definition):
    SVG text, PNG bytes, or graphviz source for ``format='dot'``."""
    if isinstance(what, Network):
        return render_program([what], format)
    if isinstance(getattr(what, "network", None), Network):  # a compiled Function
        return render_program([what.network], format)
    if isinstance(getattr(what, "networks", None), dict):  # a Program
        return render_program(list(what.networks.values()), format)
    raise TypeError(f"render() takes a network, a function or a program, not {type(what).__name__}")


def render_program(networks: Iterable[Network], format: str = "svg") -> str | bytes:
    """Several networks in one picture, stacked top to bottom, each titled ``NAME =``.

    Raises :class:`TnNotSupportedError` (saying how to install graphviz) when ``format`` needs
    the ``dot`` binary and it is missing; ``format='dot'`` never needs it.
    """
    networks = tuple(networks)
    if format not in FORMATS:
        raise ValueError(f"unknown diagram format {format!r}; expected one of {', '.join(FORMATS)}")
    if format == "dot":
        return _source(networks, dpi=None)
    source = _source(networks, dpi=_PNG_DPI if format == "png" else None)
    try:
        data = graphviz.pipe("dot", format, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        span = networks[0].span if networks else None
        raise TnNotSupportedError(_INSTALL_HINT.format(format=format.upper()), span) from None
    if format == "svg":
        return _CLASS.sub(lambda m: f'class="{m[1].replace("&#45;", "-")}"', data.decode("utf-8"))
    return data


# -- building the graph ------------------------------------------------------------------
#
# Layout: dot ranks top to bottom. Each term gets explicit ranks (longest path, edges pointing
# from earlier to later tensors and down to the open legs), so that every term of a definition
# shares one bottom row of open legs. Before each term runs an invisible column of points, one
# per rank, tied by invisible flat edges to the nodes left and right of it: this keeps terms
# side by side in order and carries the title or the sign and coefficient at its middle rank.
# No clusters: dot ignores flat-edge order across clusters, which scrambled terms and legs.
# The title columns, chained, stack definitions top to bottom and align them on the left.


@dataclass
class _Drawing:
    """One term's nodes, edges and ranks, before they are placed into the graph."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)

    def node(self, name: str, **attrs: str) -> None:
        self.nodes[name] = attrs

    def edge(self, tail: str, head: str, label: str = "", **attrs: str) -> None:
        if label:
            attrs["label"] = f" {label} "
        self.edges.append((tail, head, attrs))


def _source(networks: Sequence[Network], dpi: str | None) -> str:
    graph = graphviz.Digraph("tndsl")
    graph.attr(nodesep="0.3", ranksep="0.4", pad="0.2")
    if dpi is not None:
        graph.attr(dpi=dpi)
    graph.attr("node", fontname=_FONT, fontsize="14")
    graph.attr("edge", dir="none", fontname=_FONT, fontsize="11", fontcolor=_LABEL_COLOR, penwidth="1.4")
    previous: str | None = None
    for index, network in enumerate(networks):
        title, bottom = _definition(graph, network, f"d{index}")
        if previous is not None:
            graph.edge(previous, title, style="invis", minlen="2", weight="10")
        previous = bottom
    return graph.source


def _definition(graph: graphviz.Digraph, network: Network, prefix: str) -> tuple[str, str]:
    """Draw ``NAME =`` and the terms side by side; returns the top and bottom of its spine."""
    drawings = [_term(network, term, f"{prefix}t{t}") for t, term in enumerate(network.terms)]
    grouped = any(len(group) > 1 for group in network.output)
    deepest = max((max(d.ranks.values(), default=-1) for d in drawings), default=-1)
    bottom = max(deepest + 1, 1) + grouped  # room for broadcast dots and group junctions
    for t, drawing in enumerate(drawings):
        _place_open_ends(drawing, network, f"{prefix}t{t}", bottom)
    middle = bottom // 2
    texts = [f"{network.name} ="] + [
        _coefficient_text(term.coeff, first=t == 0) or ("" if term.tensors else "1") for t, term in enumerate(network.terms)
    ]
    columns = [[f"{prefix}c{c}r{rank}" for rank in range(bottom + 1)] for c in range(len(texts))]
    rows: dict[int, list[str]] = {rank: [] for rank in range(bottom + 1)}
    for c, (column, text) in enumerate(zip(columns, texts)):
        for rank, node in enumerate(column):
            if rank == middle and text:
                css = "title" if c == 0 else "coefficient"
                graph.node(node, label=text, shape="plaintext", fontsize="18" if c else "16", **{"class": css})
            else:
                graph.node(node, label="", shape="point", width="0.01", style="invis")
            rows[rank].append(node)
            if c:
                graph.edge(columns[c - 1][rank], node, style="invis")
        for upper, lower in zip(column, column[1:]):
            graph.edge(upper, lower, style="invis", weight="10")
    for t, drawing in enumerate(drawings):
        for name, attrs in drawing.nodes.items():
            graph.node(name, **attrs)
            rows[drawing.ranks[name]].append(name)
        for tail, head, attrs in drawing.edges:
            graph.edge(tail, head, **attrs)
        for name, rank in drawing.ranks.items():
            graph.edge(columns[t + 1][rank], name, style="invis")
            if t + 2 < len(columns):
                graph.edge(name, columns[t + 2][rank], style="invis")
    for rank, names in rows.items():
        with graph.subgraph() as row:
            row.attr(rank="same")
            for name in names:
                row.node(name)
    return columns[0][0], columns[0][-1]


def _term(network: Network, term: Term, prefix: str) -> _Drawing:
    """A term's tensors, dots and lines, ranked; open ends are placed later (shared bottom)."""
    drawing = _Drawing()
    tensors = [f"{prefix}x{i}" for i in range(len(term.tensors))]
    for node, tensor in zip(tensors, term.tensors):
        drawing.node(node, **_tensor_attrs(tensor.kind, tensor.name, network))
    legs: dict[str, list[int]] = {}
    for i, tensor in enumerate(term.tensors):
        for label in tensor.legs:
            legs.setdefault(label, []).append(i)
    for label in network.output_legs:
        legs.setdefault(label, [])
    for k, (label, owners) in enumerate(legs.items()):
        end = _end(network, label, prefix)
        ends = [tensors[i] for i in owners] + ([end[0]] if end else [])
        if len(ends) == 2:
            # An ordinary leg, a trace loop, or an open leg: one line.
            port = {"headport": "n"} if end else {}
            drawing.edge(ends[0], ends[1], label if end is None or end[1] else "", **port, **{"class": "leg"})
            continue
        dot = f"{prefix}h{k}"
        drawing.node(dot, **_dot_attrs())
        for n, node in enumerate(ends[: len(owners)]):
            drawing.edge(node, dot, "" if end or n else label, **{"class": "leg"})
        if end:
            drawing.edge(dot, end[0], label if end[1] else "", headport="n", **{"class": "leg"})
    for node in drawing.nodes:
        incoming = [drawing.ranks[tail] for tail, head, _ in drawing.edges if head == node and tail != head]
        if incoming or node.startswith(f"{prefix}x"):
            drawing.ranks[node] = max(incoming, default=-1) + 1
    return drawing


def _place_open_ends(drawing: _Drawing, network: Network, prefix: str, bottom: int) -> None:
    """Open legs on the bottom row; junctions of grouped legs and broadcast dots above it."""
    for g, group in enumerate(network.output):
        node = f"{prefix}o{g}"
        text = group[0] if len(group) == 1 else f"({' '.join(group)})"
        drawing.node(node, label=text, shape="plaintext", fontsize="13", height="0.25", **{"class": "open-leg"})
        drawing.ranks[node] = bottom
        if len(group) > 1:
            junction = f"{prefix}j{g}"
            drawing.node(junction, label="", shape="point", width="0.07", color="black", **{"class": "merge"})
            drawing.ranks[junction] = bottom - 1
            drawing.edge(junction, node, penwidth="4", headport="n", **{"class": "group-leg"})
    for g in range(1, len(network.output)):
        drawing.edge(f"{prefix}o{g - 1}", f"{prefix}o{g}", style="invis")
    for tail, head, _ in drawing.edges:
        if tail not in drawing.ranks:  # a dot with no tensor: a broadcast leg
            drawing.ranks[tail] = drawing.ranks[head] - 1


def _end(network: Network, label: str, prefix: str) -> tuple[str, bool] | None:
    """Where an open label's line ends, and whether that line needs its own label text."""
    for g, group in enumerate(network.output):
        if label in group:
            return (f"{prefix}j{g}", True) if len(group) > 1 else (f"{prefix}o{g}", False)
    return None


def _coefficient_text(coeff: Coeff, first: bool) -> str:
    """``-2·|n|⁻¹`` style text; later terms get a spaced ``+``/``−`` sign."""
    magnitude = abs(coeff.value)
    parts = [] if magnitude == 1 else [format(magnitude, ".6g")]
    for label, power in coeff.powers:
        parts.append(f"|{label}|" + ("" if power == 1 else str(power).translate(_SUPERSCRIPT)))
    body = "·".join(parts)
    if coeff.value < 0:
        return f"−{body}" if first else f"− {body}".rstrip()
    return body if first else f"+ {body}".rstrip()


def _tensor_attrs(kind: str, name: str, network: Network) -> dict[str, str]:
    if kind is Kind.DELTA:
        return _dot_attrs()
    if kind is Kind.PATTERN:
        spec = dict(network.patterns).get(name)
        params = "" if spec is None else spec.describe()[len("conv(") : -1]
        label = "<Π>" if not params else f'<Π<BR/><FONT POINT-SIZE="9">{_html(params)}</FONT>>'
        return {"label": label, "shape": "box", "style": "filled", "fillcolor": _PATTERN_FILL,
                "color": _PATTERN_LINE, "penwidth": "1.4", "margin": "0.08,0.04", "class": "pattern"}
    return {"label": name, "shape": "box", "style": "rounded,filled", "fillcolor": _INPUT_FILL,
            "color": _INPUT_LINE, "penwidth": "1.4", "margin": "0.12,0.06", "class": "tensor"}


def _dot_attrs() -> dict[str, str]:
    """A black dot: a delta tensor, a hyperedge, or a summed/broadcast single leg."""
    return {"label": "", "shape": "point", "width": "0.11", "color": "black", "class": "delta"}


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
