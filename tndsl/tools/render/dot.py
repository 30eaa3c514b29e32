"""Graphviz DOT text, written by hand: the one place where strings become DOT.

Every node name and attribute value — labels, colours, positions — goes through
:func:`quote`, which makes a double-quoted DOT string in which nothing is special:
quotes and backslashes are escaped (so ``\\N``, ``\\G``, … stay literal text) and ``&`` is
written as ``&amp;`` (graphviz would read ``&lt;`` in a label as ``<``). Nothing is ever
written as an HTML-like label (``<…>``), and no attribute that makes links or scripts
(``URL``, ``href``, ``tooltip``) is written, so a name such as ``<a href="javascript:…">``
can only ever be text in the SVG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

__all__ = ["Graph", "Value", "quote"]

Value = Union[str, int, float]


def quote(value: Value) -> str:
    """The DOT form of an attribute value or a node name (see the module docstring)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"not a DOT value: {value!r}")
    escaped = (
        str(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("&", "&amp;")
        .replace("\r", "")
        .replace("\n", "\\n")
    )
    return f'"{escaped}"'


def _attrs(attrs: Mapping[str, Value]) -> str:
    for key in attrs:
        if not key.replace("_", "a").isalnum():
            raise ValueError(f"not a graphviz attribute name: {key!r}")
    return " ".join(f"{key}={quote(value)}" for key, value in attrs.items())


@dataclass
class Graph:
    """A directed graph: default attributes, nodes, edges and rows of equal rank."""

    attrs: dict[str, Value] = field(default_factory=dict)
    node_defaults: dict[str, Value] = field(default_factory=dict)
    edge_defaults: dict[str, Value] = field(default_factory=dict)
    nodes: dict[str, dict[str, Value]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, Value]]] = field(default_factory=list)
    ranks: list[list[str]] = field(default_factory=list)

    def node(self, name: str, **attrs: Value) -> None:
        self.nodes[name] = attrs

    def edge(self, tail: str, head: str, **attrs: Value) -> None:
        self.edges.append((tail, head, attrs))

    def source(self, name: str = "tndsl") -> str:
        lines = [f"digraph {quote(name)} {{"]
        for keyword, attrs in (("graph", self.attrs), ("node", self.node_defaults), ("edge", self.edge_defaults)):
            if attrs:
                lines.append(f"\t{keyword} [{_attrs(attrs)}]")
        for node, attrs in self.nodes.items():
            lines.append(f"\t{quote(node)} [{_attrs(attrs)}]")
        for tail, head, attrs in self.edges:
            lines.append(f"\t{quote(tail)} -> {quote(head)} [{_attrs(attrs)}]")
        for row in self.ranks:
            lines.append("\t{rank=same; " + " ".join(f"{quote(node)};" for node in row) + "}")
        lines.append("}")
        return "\n".join(lines) + "\n"
