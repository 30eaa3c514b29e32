"""Drawing networks as tensor-network diagrams (Penrose notation) with graphviz.

Notation: an input tensor is a rounded box with its name; a pattern Π is a square orange
box labelled ``Π`` and its parameters; a delta tensor, a hyperedge (a label on three or more
legs, or on two legs and the output) and a summed or broadcast single leg are black dots; a
label joining exactly two legs is a line labelled with it, a loop when both legs belong to
one tensor (a trace). Open legs end in their label on the bottom row, in output order; the
legs of a grouped output axis merge into one thick leg labelled ``(a b)``. A sum is drawn
as its terms side by side, each preceded by its sign and coefficient.

The SVG is post-processed so that tools can find things by class: every tensor node's group
has ``class="tensor"``, ``"pattern"`` (Π) or ``"delta"`` (deltas and hyperedge dots), and
every open leg's end ``class="open-leg"``. The output is a pure function of the networks.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import graphviz

from .errors import TnNotSupportedError
from .ir import KIND_DELTA, KIND_PATTERN, Coeff, Network, Term

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
_CLASS = re.compile(r'class="(?:node|edge|cluster) ([a-z-]+)"')
_INSTALL_HINT = (
    "rendering to {format} needs the graphviz 'dot' program, which was not found on PATH; "
    "install graphviz (Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz, "
    "conda: conda install graphviz), or use format='dot' for the graphviz source"
)


def to_dot(network: Network) -> str:
    """The graphviz source of one network's diagram; needs no graphviz binary."""
    return program_to_dot([network])


def program_to_dot(networks: Iterable[Network]) -> str:
    """The graphviz source of several networks, one titled cluster per definition."""
    return _source(tuple(networks), dpi=None)


def render(network: Network, format: str = "svg") -> str | bytes:
    """One network's diagram: SVG text, PNG bytes, or graphviz source for ``format='dot'``."""
    return render_program([network], format)


def render_program(networks: Iterable[Network], format: str = "svg") -> str | bytes:
    """Several networks in one picture, side by side, each titled with its name.

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
        return _CLASS.sub(r'class="\1"', data.decode("utf-8"))
    return data


# -- building the graph ------------------------------------------------------------------


def _source(networks: Sequence[Network], dpi: str | None) -> str:
    graph = graphviz.Graph("tndsl")
    graph.attr(newrank="true", nodesep="0.35", ranksep="0.45", fontname=_FONT, fontsize="14", pad="0.2")
    if dpi is not None:
        graph.attr(dpi=dpi)
    graph.attr("node", fontname=_FONT, fontsize="14")
    graph.attr("edge", fontname=_FONT, fontsize="11", fontcolor=_LABEL_COLOR, penwidth="1.4")
    bottom_row: list[str] = []
    for index, network in enumerate(networks):
        with graph.subgraph(name=f"cluster_d{index}") as cluster:
            cluster.attr(label=network.name, labeljust="l", fontsize="16", style="rounded", color="#bbbbbb",
                         margin="14", **{"class": "definition"})
            for position, term in enumerate(network.terms):
                bottom_row += _term(cluster, network, term, f"d{index}t{position}", position)
    with graph.subgraph() as row:
        row.attr(rank="max")
        for node in bottom_row:
            row.node(node)
    for left, right in zip(bottom_row, bottom_row[1:]):
        graph.edge(left, right, style="invis", weight="10")
    return graph.source


def _term(graph: graphviz.Graph, network: Network, term: Term, prefix: str, position: int) -> list[str]:
    """Add one term's cluster; returns its bottom-row nodes (coefficient, open legs) in order."""
    with graph.subgraph(name=f"cluster_{prefix}") as cluster:
        cluster.attr(label="", color="transparent", margin="6", **{"class": "term"})
        row = _coefficient(cluster, term, prefix, position)
        tensors = [f"{prefix}x{i}" for i in range(len(term.tensors))]
        for node, tensor in zip(tensors, term.tensors):
            _tensor(cluster, node, tensor.kind, tensor.name, network)
        row += _open_legs(cluster, network, prefix)
        legs: dict[str, list[int]] = {}
        for i, tensor in enumerate(term.tensors):
            for label in tensor.legs:
                legs.setdefault(label, []).append(i)
        for label in network.output_legs:
            legs.setdefault(label, [])
        for k, (label, owners) in enumerate(legs.items()):
            end = _end(network, label, prefix)
            ends_here = [tensors[i] for i in owners] + ([end[0]] if end else [])
            if len(ends_here) == 2:
                # An ordinary leg, a trace loop, or an open leg: one line.
                text = label if end is None or end[1] else ""
                cluster.edge(ends_here[0], ends_here[1], label=_pad(text), **{"class": "leg"})
                continue
            dot = f"{prefix}h{k}"
            _dot(cluster, dot, "" if end else label)
            for node in ends_here[: len(owners)]:
                cluster.edge(node, dot, **{"class": "leg"})
            if end:
                cluster.edge(dot, end[0], label=_pad(label if end[1] else ""), **{"class": "leg"})
    return row


def _coefficient(graph: graphviz.Graph, term: Term, prefix: str, position: int) -> list[str]:
    """The sign and coefficient in front of a term, as a bottom-row text node (if any)."""
    text = _coefficient_text(term.coeff, first=position == 0)
    if not text and term.tensors:
        return []
    node = f"{prefix}c"
    graph.node(node, label=text or "1", shape="plaintext", fontsize="18", **{"class": "coefficient"})
    return [node]


def _coefficient_text(coeff: Coeff, first: bool) -> str:
    """``-2·|n|⁻¹`` style text; later terms get a spaced ``+``/``−`` sign."""
    magnitude = abs(coeff.value)
    parts = [] if magnitude == 1 else [format(magnitude, ".6g")]
    for label, power in coeff.sizes:
        parts.append(f"|{label}|" + ("" if power == 1 else str(power).translate(_SUPERSCRIPT)))
    body = "·".join(parts)
    if coeff.value < 0:
        return f"−{body}" if first else f"−  {body}".rstrip()
    return body if first else f"+  {body}".rstrip()


def _tensor(graph: graphviz.Graph, node: str, kind: str, name: str, network: Network) -> None:
    if kind == KIND_DELTA:
        _dot(graph, node, "", css="delta")
    elif kind == KIND_PATTERN:
        params = _pattern_params(network, name)
        label = "<Π>" if not params else f'<Π<BR/><FONT POINT-SIZE="9">{_html(params)}</FONT>>'
        graph.node(node, label=label, shape="box", style="filled", fillcolor=_PATTERN_FILL, color=_PATTERN_LINE,
                   penwidth="1.4", margin="0.08,0.04", **{"class": "pattern"})
    else:
        graph.node(node, label=name, shape="box", style="rounded,filled", fillcolor=_INPUT_FILL, color=_INPUT_LINE,
                   penwidth="1.4", margin="0.12,0.06", **{"class": "tensor"})


def _pattern_params(network: Network, name: str) -> str:
    """``stride=2, padding=1`` for a Π, or ``""`` with default parameters (or none known)."""
    spec = dict(network.patterns).get(name)
    return "" if spec is None else spec.describe()[len("conv(") : -1]


def _dot(graph: graphviz.Graph, node: str, label: str, css: str = "delta") -> None:
    graph.node(node, label="", xlabel=label, shape="point", width="0.11", color="black", fontsize="11",
               fontcolor=_LABEL_COLOR, **{"class": css})


def _open_legs(graph: graphviz.Graph, network: Network, prefix: str) -> list[str]:
    """One bottom-row node per output axis; a grouped axis also gets a junction where legs merge."""
    nodes = []
    for g, group in enumerate(network.output):
        node = f"{prefix}o{g}"
        text = group[0] if len(group) == 1 else f"({' '.join(group)})"
        graph.node(node, label=text, shape="plaintext", fontsize="13", height="0.25", **{"class": "open-leg"})
        if len(group) > 1:
            junction = f"{prefix}j{g}"
            graph.node(junction, label="", shape="point", width="0.07", color="black", **{"class": "merge"})
            graph.edge(junction, node, penwidth="4", **{"class": "group-leg"})
        nodes.append(node)
    return nodes


def _end(network: Network, label: str, prefix: str) -> tuple[str, bool] | None:
    """Where an open label's line ends, and whether that line needs its own label text."""
    for g, group in enumerate(network.output):
        if label in group:
            return (f"{prefix}j{g}", True) if len(group) > 1 else (f"{prefix}o{g}", False)
    return None


def _pad(text: str) -> str:
    """Edge labels with a little room so they do not touch their line."""
    return f" {text} " if text else ""


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
