"""The plan drawn next to the diagram: steps in order, the torch op of each, and its cost.

For a function and argument shapes, :func:`plan_drawing` plans the call (as a real call
would, without running it) and costs each op (:mod:`tndsl.tools.costs`). The drawing is
a left-to-right flow: the arguments (blue, like the diagram's tensors) and plan-time
constants (orange, like Π: folded patterns) feed numbered steps ``① conv → F.conv2d``
with their output shape, FLOPs and bytes. Views that only rearrange memory (reshape,
permute, movedim, index, expand) are not steps: they are written on the line they
travel along. In the diagram, each tensor's box carries the numbers of the steps that
read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from ...backend.ops import Plan
from ...backend.program import Function, Program
from ...ir import Kind, TnCallError
from ..check.lines import parse_check_lines
from ..costs import Step, format_count, plan_steps
from .dot import Graph
from .network import COLORS

__all__ = ["PlanDrawing", "plan_drawing", "check_line_shapes", "Shapes"]

#: Views drawn as steps of their own: they are how Π was lowered (im2col windows, slices).
_SHOWN_VIEWS = frozenset({"unfold", "step", "narrow"})
#: Steps that are a lowered Π (besides products with a folded constant).
_LOWERINGS = frozenset({"conv", "conv_transpose", "conv_weight", "unfold", "step", "narrow"})
Shapes = Mapping[str, Any] | Sequence[Any]


def _data_inputs(step: Step) -> tuple[str, ...]:
    """The inputs a step reads data from (a Gram step's second input is baddbmm's unused
    ``beta=0`` term)."""
    names = tuple(dict.fromkeys(step.op.inputs))
    return names[:1] if step.op.prim.startswith("gram") else names


def _circled(number: int) -> str:
    return chr(0x2460 + number - 1) if 1 <= number <= 20 else f"({number})"


@dataclass
class PlanDrawing:
    """A function's plan for one call signature, with each step's cost."""

    name: str
    inputs: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    keywords: tuple[tuple[str, int], ...]
    plan: Plan
    steps: list[Step]
    patterns: tuple[str, ...] = ()

    @property
    def shown(self) -> list[Step]:
        """The steps drawn as boxes (compute, copies, and the Π views), in plan order."""
        return [s for s in self.steps if not s.view or s.op.prim in _SHOWN_VIEWS]

    @property
    def header(self) -> str:
        shapes = " ".join(f"{name}[{', '.join(map(str, shape))}]" for name, shape in zip(self.inputs, self.shapes))
        shapes += "".join(f" {k}={v}" for k, v in self.keywords)
        flops = sum(s.flops for s in self.shown)
        moved = sum(s.bytes for s in self.shown)
        count = len(self.shown)
        return (f"plan of {self.name} for {shapes}: {count} step{'s' * (count != 1)}, "
                f"{format_count(flops, 'FLOP')}, {format_count(moved, 'B')} moved")

    def badges(self) -> dict[tuple[Kind, str], str]:
        """(kind, name) of a tensor → the circled numbers of the steps that read it: inputs
        by name; every pattern gets the steps that lowered Π (a convolution or unfold, a
        slice, or a product with a folded plan-time constant)."""
        sources = self._sources()
        reads: dict[tuple[Kind, str], list[int]] = {}
        for number, step in enumerate(self.shown, 1):
            nodes = [sources[name][0] for name in _data_inputs(step)]
            for node in nodes:
                if node in self.plan.args:
                    reads.setdefault((Kind.INPUT, self.inputs[self.plan.args.index(node)]), []).append(number)
            if step.op.prim in _LOWERINGS or any(node.startswith("c") for node in nodes):
                for pattern in self.patterns:
                    reads.setdefault((Kind.PATTERN, pattern), []).append(number)
        return {key: "".join(_circled(n) for n in dict.fromkeys(numbers)) for key, numbers in reads.items()}

    def graph(self, prefix: str) -> Graph:
        """The flow of the plan, arguments on the left, the result on the right."""
        graph = Graph(attrs={"rankdir": "LR", "nodesep": 0.15, "ranksep": 0.35},
                      edge_defaults={"dir": "forward", "arrowsize": 0.6, "fontsize": 9, "color": "#777777"})
        sources = self._sources()
        used = {sources[name][0] for step in self.shown for name in _data_inputs(step)} | {sources[self.plan.result][0]}
        for arg, name, shape in zip(self.plan.args, self.inputs, self.shapes):
            if arg in used:
                graph.node(f"{prefix}{arg}", label=_value_label(name, shape), shape="box", style="rounded,filled",
                           fillcolor=COLORS["input_fill"], color=COLORS["input_line"], fontsize=11, **{"class": "plan-input"})
        for index, value in enumerate(self.plan.constants):
            if f"c{index}" in used:
                graph.node(f"{prefix}c{index}", label=_value_label("constant", tuple(value.shape)), shape="box",
                           style="filled", fillcolor=COLORS["pattern_fill"], color=COLORS["pattern_line"], fontsize=11,
                           **{"class": "plan-constant"})
        for number, step in enumerate(self.shown, 1):
            graph.node(f"{prefix}{step.op.out}", label=_step_label(number, step), shape="box", style="rounded",
                       color="#444444", fontsize=11, **{"class": "plan-step"})
            for name in _data_inputs(step):
                node, views = sources[name]
                graph.edge(f"{prefix}{node}", f"{prefix}{step.op.out}", label=" · ".join(views), **{"class": "plan-flow"})
        node, views = sources[self.plan.result]
        shape = next((s.shape for s in self.steps if s.op.out == self.plan.result), ())
        graph.node(f"{prefix}result", label=_value_label(self.name, shape), shape="plaintext", fontsize=11,
                   **{"class": "plan-result"})
        graph.edge(f"{prefix}{node}", f"{prefix}result", label=" · ".join(views), **{"class": "plan-flow"})
        return graph

    def _sources(self) -> dict[str, tuple[str, list[str]]]:
        """Value name → (the argument, constant or shown step it views, the views on the way)."""
        sources: dict[str, tuple[str, list[str]]] = {arg: (arg, []) for arg in self.plan.args}
        sources.update({f"c{i}": (f"c{i}", []) for i in range(len(self.plan.constants))})
        shown = {id(step) for step in self.shown}
        for step in self.steps:
            if id(step) in shown:
                sources[step.op.out] = (step.op.out, [])
            else:
                node, views = sources[step.op.inputs[0]]
                sources[step.op.out] = (node, [*views, step.op.prim])
        return sources


def plan_drawing(function: Function, shapes: Shapes) -> PlanDrawing:
    """Plan ``function`` for argument ``shapes`` and cost every step (nothing is computed).

    ``shapes``: a mapping from input names to shapes (or tensors) and from keyword sizes
    to ints, or a sequence of shapes (or tensors) in input order.
    """
    tensors, keywords = _arguments(function, shapes)
    plan = function.plan(*tensors, **keywords)
    steps = plan_steps(plan, [tuple(t.shape) for t in tensors], [t.dtype for t in tensors])
    patterns = tuple(name for name, _ in function.network.patterns)
    return PlanDrawing(function.name, function.inputs, tuple(tuple(t.shape) for t in tensors),
                       tuple(sorted(keywords.items())), plan, steps, patterns)


def _arguments(function: Function, shapes: Shapes) -> tuple[list[torch.Tensor], dict[str, int]]:
    if isinstance(shapes, Mapping):
        given = dict(shapes)
        keywords = {k: v for k, v in given.items() if k in function.keywords}
        unknown = sorted(set(given) - set(function.inputs) - set(keywords))
        if unknown:
            raise TnCallError(f"plan of '{function.name}': no input or size named {', '.join(unknown)}; "
                              f"it takes {', '.join(function.inputs + function.keywords)}", function.network.span)
        missing = [name for name in function.inputs if name not in given]
        if missing:
            raise TnCallError(f"plan of '{function.name}': no shape given for {', '.join(missing)}", function.network.span)
        values = [given[name] for name in function.inputs]
    else:
        values, keywords = list(shapes), {}
    return [_placeholder(value) for value in values], keywords


def _placeholder(value: Any) -> torch.Tensor:
    """A tensor of the given shape that holds no memory (planning reads shapes only)."""
    if isinstance(value, torch.Tensor):
        return torch.zeros((), dtype=value.dtype).expand(value.shape)
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"a shape is a sequence of ints or a tensor, not {value!r}") from None
    return torch.zeros(()).expand(shape)


def _value_label(name: str, shape: Sequence[int]) -> str:
    return f"{name}\n[{', '.join(map(str, shape))}]"


def _step_label(number: int, step: Step) -> str:
    what = step.op.prim + (" (copy)" if step.op.prim == "reshape" else "")
    cost = f"{format_count(step.flops, 'FLOP')} · {format_count(step.bytes, 'B')}" if not step.view else "a view, no copy"
    return f"{_circled(number)} {what} → {step.call}\n[{', '.join(map(str, step.shape))}] · {cost}"


def check_line_shapes(program: Program) -> dict[str, dict[str, Any]]:
    """Definition name → the shapes and sizes of its ``# check:`` line (definitions without one
    are left out)."""
    shapes = {}
    for spec in parse_check_lines(program.text, program.filename):
        if spec.definition in program.functions:
            function = program[spec.definition]
            given = dict(spec.shapes)
            shapes[spec.definition] = {**{n: given[n] for n in function.inputs if n in given},
                                       **{k: v for k, v in spec.keywords if k in function.keywords}}
    return shapes
