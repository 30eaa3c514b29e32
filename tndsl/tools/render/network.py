"""One term of a network as a graph of its own: tensors, dots, lines and open legs.

Ranks run top to bottom by longest path (each line points from the earlier tensor of the
term to the later one, and down to the open legs), so every term of a definition shares
one bottom row of open legs when given the same ``bottom`` rank. Where a leg meets a
pattern Π, a small letter says its role: ``i`` input, ``o`` output, ``k`` kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ...ir import Coeff, Kind, Network, Tensor, Term
from .dot import Graph, Value

__all__ = ["COLORS", "term_graph", "term_depth", "coefficient_text", "text_graph"]

COLORS = {
    "input_fill": "#dbe8f5",
    "input_line": "#2f5d8a",
    "pattern_fill": "#fbd9b0",
    "pattern_line": "#b0601a",
    "port": "#8a4a10",
    "label": "#555555",
}
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
#: The role of each leg of a constant tensor, by kind: the port names drawn on the box.
_PORTS = {Kind.PATTERN: ("i", "o", "k"), Kind.PATTERN_SUM: ("i", "k"), Kind.SLICE: ("i", "o")}


@dataclass
class _Term:
    """The nodes and lines of one term before they become a graph (ranks still to compute)."""

    nodes: dict[str, dict[str, Value]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, Value]]] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)

    def edge(self, tail: str, head: str, label: str = "", **attrs: Value) -> None:
        if label:
            attrs["label"] = f" {label} "
        self.edges.append((tail, head, attrs))


def term_depth(network: Network, term: Term) -> int:
    """The deepest rank of a term's tensors and dots (its open legs go below it)."""
    drawing = _draw(network, term, "depth")
    return max(drawing.ranks.values(), default=-1)


def term_graph(network: Network, term: Term, prefix: str, bottom: int,
               badges: Mapping[tuple[Kind, str], str] | None = None, sideways: bool = False) -> Graph:
    """The graph of one term; open legs on rank ``bottom``. ``badges``: (kind, name) of a
    tensor → a note written in its box (the plan steps that read it). ``sideways``: ranks
    run left to right (for long chains, which would otherwise be a tall tower)."""
    drawing = _draw(network, term, prefix)
    _place_open_ends(drawing, network, prefix, bottom)
    for index, tensor in enumerate(term.tensors):
        node = f"{prefix}x{index}"
        drawing.nodes[node] = _tensor_attrs(network, tensor, (badges or {}).get((tensor.kind, tensor.name), ""))
    graph = Graph(attrs={"rankdir": "LR"} if sideways else {})
    for tail, head, attrs in drawing.edges:
        if sideways and attrs.get("headport") == "n":
            attrs["headport"] = "w"
    for name, attrs in drawing.nodes.items():
        graph.node(name, **attrs)
    for tail, head, attrs in drawing.edges:
        graph.edge(tail, head, **attrs)
    rows: dict[int, list[str]] = {}
    for name, rank in drawing.ranks.items():
        rows.setdefault(rank, []).append(name)
    graph.ranks = [rows[rank] for rank in sorted(rows)]
    return graph


def _draw(network: Network, term: Term, prefix: str) -> _Term:
    """A term's tensors, dots and lines, ranked; open ends are placed later (shared bottom)."""
    drawing = _Term()
    tensors = [f"{prefix}x{i}" for i in range(len(term.tensors))]
    for node in tensors:
        drawing.nodes[node] = {}
    legs: dict[str, list[tuple[int, int]]] = {}  # label -> (tensor index, leg position)
    for i, tensor in enumerate(term.tensors):
        for position, label in enumerate(tensor.legs):
            legs.setdefault(label, []).append((i, position))
    for label in network.output_legs:
        legs.setdefault(label, [])
    kinds = [tensor.kind for tensor in term.tensors]
    for k, (label, owners) in enumerate(legs.items()):
        end = _end(network, label, prefix)
        ends: list[tuple[str, Kind | None, int]] = [(tensors[i], kinds[i], position) for i, position in owners]
        if end is not None:
            ends.append((end[0], None, -1))
        if len(ends) == 2:  # an ordinary leg, a trace loop, or an open leg: one line
            (tail, tail_kind, tail_leg), (head, head_kind, head_leg) = ends
            attrs: dict[str, Value] = {"class": "leg", **_role(tail_kind, tail_leg, "tail")}
            if end is not None:
                attrs["headport"] = "n"
            else:
                attrs.update(_role(head_kind, head_leg, "head"))
            drawing.edge(tail, head, label if end is None or end[1] else "", **attrs)
            continue
        dot = f"{prefix}h{k}"
        drawing.nodes[dot] = _dot_attrs()
        for n, (node, kind, position) in enumerate(ends[: len(owners)]):
            attrs = {"class": "leg", **_role(kind, position, "tail")}
            drawing.edge(node, dot, "" if end or n else label, **attrs)
        if end is not None:
            drawing.edge(dot, end[0], label if end[1] else "", headport="n", **{"class": "leg"})
    for node in drawing.nodes:
        incoming = [drawing.ranks[tail] for tail, head, _ in drawing.edges if head == node and tail != head]
        if incoming or node in tensors:
            drawing.ranks[node] = max(incoming, default=-1) + 1
    return drawing


def _role(kind: Kind | None, position: int, end: str) -> dict[str, Value]:
    """The small role letter (``i``, ``o``, ``k``) at the ``end`` of a line meeting a Π."""
    roles = _PORTS.get(kind) if kind is not None else None
    if roles is None or not 0 <= position < len(roles):
        return {}
    return {f"{end}label": roles[position], "labelfontsize": 10, "labelfontcolor": COLORS["port"],
            "labeldistance": 1.2, "labelangle": 35}


def _place_open_ends(drawing: _Term, network: Network, prefix: str, bottom: int) -> None:
    """Open legs on the bottom row; junctions of grouped legs and broadcast dots above it."""
    for g, group in enumerate(network.output):
        node = f"{prefix}o{g}"
        label = group[0] if len(group) == 1 else f"({' '.join(group)})"
        drawing.nodes[node] = {"label": label, "shape": "plaintext", "fontsize": 13, "height": 0.25, "class": "open-leg"}
        drawing.ranks[node] = bottom
        if len(group) > 1:
            junction = f"{prefix}j{g}"
            drawing.nodes[junction] = {"label": "", "shape": "point", "width": 0.07, "color": "black", "class": "merge"}
            drawing.ranks[junction] = bottom - 1
            drawing.edge(junction, node, penwidth=4, headport="n", **{"class": "group-leg"})
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


def coefficient_text(coeff: Coeff, first: bool) -> str:
    """``-2·|n|⁻¹`` style text; later terms get a spaced ``+``/``−`` sign."""
    magnitude = abs(coeff.value)
    parts = [] if magnitude == 1 else [format(magnitude, ".6g")]
    for label, power in coeff.powers:
        parts.append(f"|{label}|" + ("" if power == 1 else str(power).translate(_SUPERSCRIPT)))
    body = "·".join(parts)
    if coeff.value < 0:
        return f"−{body}" if first else f"− {body}".rstrip()
    return body if first else f"+ {body}".rstrip()


def text_graph(name: str, label: str, css: str, fontsize: int) -> Graph:
    """A graph of one text node (a title, a sign and coefficient, a heading)."""
    graph = Graph()
    graph.node(name, label=label, shape="plaintext", fontsize=fontsize, **{"class": css})
    return graph


def _tensor_attrs(network: Network, tensor: Tensor, badge: str) -> dict[str, Value]:
    kind, name, slicing = tensor.kind, tensor.name, tensor.slice
    if kind is Kind.DELTA:
        return _dot_attrs()
    if kind in _PORTS:
        if kind is Kind.SLICE and slicing is not None:
            symbol, params = "S", f"start={slicing.start}, step={slicing.step}"
        else:
            spec = network.spec_of(tensor) if name in dict(network.patterns) else None
            params = "" if spec is None else spec.describe()[len("conv(") : -1]
            if tensor.dim is not None:
                params = f"dim {tensor.dim}" + (f", {params}" if params else "")
            symbol = "Π" if kind is Kind.PATTERN else "ΣₒΠ"
        symbol = f"{symbol} {badge}" if badge else symbol
        return {"label": f"{symbol}\n{params}" if params else symbol, "shape": "box", "style": "filled",
                "fillcolor": COLORS["pattern_fill"], "color": COLORS["pattern_line"], "penwidth": 1.4,
                "fontsize": 12, "margin": "0.1,0.04", "class": "pattern"}
    return {"label": f"{name} {badge}" if badge else name, "shape": "box", "style": "rounded,filled",
            "fillcolor": COLORS["input_fill"], "color": COLORS["input_line"], "penwidth": 1.4, "margin": "0.12,0.06",
            "class": "tensor"}


def _dot_attrs() -> dict[str, Value]:
    """A black dot: a delta tensor, a hyperedge, or a summed/broadcast single leg."""
    return {"label": "", "shape": "point", "width": 0.11, "color": "black", "class": "delta"}
