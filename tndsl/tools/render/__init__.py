"""Drawing networks as tensor-network diagrams (Penrose notation), and their plans.

Notation: an input tensor is a rounded blue box with its name; a pattern Π is an orange
box labelled ``Π`` and its parameters, with small port cells ``i``, ``o``, ``k`` where its
input, output and kernel legs attach (a summed pattern ``ΣₒΠ`` has ``i``, ``k``; a slice
``S`` has ``i``, ``o``); a delta tensor, a hyperedge (a label on three or more legs, or on
two legs and the output) and a summed or broadcast single leg are black dots; a label
joining exactly two legs is a line labelled with it, a loop when both legs belong to one
tensor (a trace). Open legs end in their label on the bottom row, in output order; the
legs of a grouped output axis merge into one thick leg labelled ``(a b)``. A definition
reads as an equation, ``NAME =`` and its terms side by side, each preceded by its sign
and coefficient (``−2·|n|⁻¹``); a long sum wraps onto more lines, and a sum of more than
``max_terms`` terms shows its first terms, ``+ ⋯ N more terms ⋯`` and its last term;
several definitions stack top to bottom. With a plan (:func:`render` ``plan=``), each definition is followed
by its plan for the given shapes (:mod:`.plan`) and each tensor's box carries the
numbers of the steps that read it.

The SVG's groups carry classes: ``tensor``, ``pattern``, ``delta``, ``open-leg``,
``leg``, ``group-leg``, ``merge``, ``title``, ``coefficient``, ``elided``, and for a plan
``plan-title``, ``plan-input``, ``plan-constant``, ``plan-step``, ``plan-result``,
``plan-flow``. Graphviz lays out each term on its own (:mod:`.compose`): the time grows
linearly with the number of terms. The system ``dot`` is used when it is on PATH, else
Graphviz compiled to WebAssembly (:mod:`.engine`). Output is a pure function of the
networks (byte-identical for one graphviz version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ...backend.program import Function, Program
from ...ir import Network, TnNotSupportedError
from . import engine
from .compose import Block, Canvas, lay_out
from .network import coefficient_text, term_depth, term_graph, text_graph
from .plan import PlanDrawing, Shapes, check_line_shapes, plan_drawing

__all__ = ["FORMATS", "MAX_LINE", "MAX_TERMS", "to_dot", "program_to_dot", "render", "render_program", "plans_for"]

FORMATS = ("svg", "png", "dot")
#: Width in points (1/72 in) beyond which a sum of terms continues on a new line.
MAX_LINE = 1100.0
#: A definition with more terms than this draws the first ones, "⋯ N more terms ⋯" and the last.
MAX_TERMS = 8
#: A term whose tensors form a chain this many ranks deep is drawn left to right.
TALL_TERM = 12
_GAP, _LINE_GAP, _DEFINITION_GAP = 14.0, 26.0, 44.0
_PNG_DPI = 144
_CLASS = re.compile(r'class="(?:node|edge) ([a-z]+(?:&#45;[a-z]+)*)"')


def to_dot(network: Network) -> str:
    """The graphviz source of one network's diagram, every position fixed (``layout=nop2``)."""
    return program_to_dot([network])


def program_to_dot(networks: Iterable[Network], plans: Mapping[str, PlanDrawing] | None = None,
                   max_terms: int | None = MAX_TERMS) -> str:
    """The graphviz source of several networks, one titled block per definition."""
    return _source(tuple(networks), plans or {}, None, max_terms)


def render(what: Network | Function | Program, format: str = "svg", plan: Shapes | bool | None = None,
           max_terms: int | None = MAX_TERMS) -> str | bytes:
    """The diagram of a network, a compiled function or a whole program (every definition):
    SVG text, PNG bytes, or graphviz source for ``format='dot'``.

    ``plan`` draws the plan for given argument shapes next to the diagram: for a function
    or network, a mapping from input names to shapes (and keyword sizes to ints) or a
    sequence of shapes in input order; for a program, a mapping from definition names to
    such shapes, or ``True`` for the shapes of the file's ``# check:`` lines.
    ``max_terms``: draw at most this many terms of a sum (``None``: all of them).
    """
    wanted = plan is not None and plan is not False
    if isinstance(what, Network):
        networks, functions = [what], ({what.name: Function(what)} if wanted else {})
    elif isinstance(what, Function):
        networks, functions = [what.network], {what.name: what}
    elif isinstance(what, Program):
        networks, functions = list(what.networks.values()), dict(what.functions)
    else:
        raise TypeError(f"render() takes a network, a function or a program, not {type(what).__name__}")
    plans = {} if plan is None or plan is False else plans_for(what, functions, plan)
    return render_program(networks, format, plans, max_terms)


def plans_for(what: Any, functions: Mapping[str, Function], plan: Shapes | bool) -> dict[str, PlanDrawing]:
    """The plan drawings asked for by ``render(what, plan=plan)``, for the definitions in
    ``functions``."""
    if isinstance(what, Program):
        if plan is True:
            shapes = check_line_shapes(what)
        elif isinstance(plan, Mapping):
            shapes = dict(plan)
        else:
            raise TypeError("for a program, plan= is True (the check lines' shapes) or {definition: shapes}")
        return {name: plan_drawing(what[name], value) for name, value in shapes.items() if name in functions}
    if isinstance(plan, bool):
        raise TypeError("plan=True needs shapes: pass plan={input name: shape, ...} or a list of shapes")
    (name, function), = functions.items()
    return {name: plan_drawing(function, plan)}


def render_program(networks: Iterable[Network], format: str = "svg",
                   plans: Mapping[str, PlanDrawing] | None = None, max_terms: int | None = MAX_TERMS) -> str | bytes:
    """Several networks in one picture, stacked top to bottom, each titled ``NAME =``.

    Raises :class:`TnNotSupportedError` when no Graphviz can draw ``format``: PNG needs
    the ``dot`` program; SVG and ``dot`` also work with the WebAssembly Graphviz.
    """
    networks = tuple(networks)
    if format not in FORMATS:
        raise ValueError(f"unknown diagram format {format!r}; expected one of {', '.join(FORMATS)}")
    try:
        source = _source(networks, plans or {}, _PNG_DPI if format == "png" else None, max_terms)
        if format == "dot":
            return source
        data = engine.draw(source, format)
    except TnNotSupportedError as error:
        span = networks[0].span if networks else None
        if error.span is None and span is not None:
            raise TnNotSupportedError(error.message, span, error.hint) from None
        raise
    if format == "svg":
        return _CLASS.sub(lambda m: f'class="{m[1].replace("&#45;", "-")}"', data.decode("utf-8"))
    return data


@dataclass
class _Definition:
    """The blocks of one definition: its title, (coefficient, term) pairs, plan blocks."""

    title: Block
    terms: list[tuple[Block | None, Block | None]] = field(default_factory=list)
    plan: list[Block] = field(default_factory=list)

    def blocks(self) -> list[Block]:
        pairs = [b for pair in self.terms for b in pair if b is not None]
        return [self.title, *pairs, *self.plan]


def _source(networks: Sequence[Network], plans: Mapping[str, PlanDrawing], dpi: int | None, max_terms: int | None) -> str:
    if max_terms is not None and max_terms < 2:
        raise ValueError(f"max_terms must be at least 2 (or None for all terms), not {max_terms}")
    definitions = [_definition(network, f"d{d}", plans.get(network.name), max_terms) for d, network in enumerate(networks)]
    lay_out([block for definition in definitions for block in definition.blocks()])
    canvas, top = Canvas(), 0.0
    for definition in definitions:
        top = _place(canvas, definition, top) - _DEFINITION_GAP
    attrs: dict[str, Any] = {"pad": 0.2, "outputorder": "nodesfirst"}
    if dpi is not None:  # PNG: at most 50 inches a side (larger drawings are scaled down)
        attrs.update(dpi=dpi, size="50,50")
    return canvas.graph(attrs).source("tndsl")


def _definition(network: Network, prefix: str, drawing: PlanDrawing | None, max_terms: int | None) -> _Definition:
    badges = drawing.badges() if drawing is not None else {}
    shown = list(range(len(network.terms)))
    if max_terms is not None and len(shown) > max_terms:
        shown = shown[: max_terms - 1] + shown[-1:]
    depth = {t: term_depth(network, network.terms[t]) for t in shown}
    grouped = any(len(group) > 1 for group in network.output)
    bottom = max(max((d for d in depth.values() if d < TALL_TERM), default=-1) + 1, 1) + grouped
    definition = _Definition(Block(f"{prefix}n", text_graph(f"{prefix}n", f"{network.name} =", "title", 16)))
    for t in shown:
        if t == shown[-1] and len(shown) < len(network.terms):
            name, hidden = f"{prefix}more", len(network.terms) - len(shown)
            text = f"+ ⋯ {hidden} more terms ⋯"
            definition.terms.append((Block(name, text_graph(name, text, "elided", 16)), None))
        term = network.terms[t]
        label = coefficient_text(term.coeff, first=t == 0)
        if not term.tensors and abs(term.coeff.value) == 1 and not term.coeff.powers:
            label = f"{label} 1".strip()  # a term that is only a sign: write the 1
        name = f"{prefix}t{t}"
        coefficient = Block(f"{name}c", text_graph(f"{name}c", label, "coefficient", 18)) if label else None
        sideways = depth[t] >= TALL_TERM
        graph = term_graph(network, term, name, depth[t] + 1 + grouped if sideways else bottom, badges, sideways)
        definition.terms.append((coefficient, Block(name, graph) if graph.nodes else None))
    if drawing is not None:
        definition.plan = [
            Block(f"{prefix}ph", text_graph(f"{prefix}ph", drawing.header, "plan-title", 12)),
            Block(f"{prefix}p", drawing.graph(f"{prefix}p")),
        ]
    return definition


def _place(canvas: Canvas, definition: _Definition, top: float) -> float:
    """Place one definition with its upper edge at ``top``; returns its lower edge."""
    indent = definition.title.width + _GAP
    lines: list[list[tuple[Block | None, Block | None]]] = [[]]
    width = indent
    for pair in definition.terms:
        extra = sum(block.width + _GAP for block in pair if block is not None)
        if lines[-1] and width + extra > MAX_LINE:
            lines.append([])
            width = indent
        lines[-1].append(pair)
        width += extra
    for number, line in enumerate(lines):
        blocks = [block for pair in line for block in pair if block is not None]
        height = max([block.height for block in blocks] + [definition.title.height])
        bottom = top - height
        if number == 0:
            canvas.place(definition.title, 0.0, bottom + (height - definition.title.height) / 2)
        x = indent
        for coefficient, term in line:
            if coefficient is not None:
                canvas.place(coefficient, x, bottom + (height - coefficient.height) / 2)
                x += coefficient.width + _GAP
            if term is not None:
                canvas.place(term, x, bottom)
                x += term.width + _GAP
        top = bottom - _LINE_GAP
    for block in definition.plan:
        canvas.place(block, indent, top - block.height)
        top -= block.height + _GAP
    return top + _LINE_GAP if not definition.plan else top
