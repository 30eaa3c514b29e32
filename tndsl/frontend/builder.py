"""Building the IR from the AST: name resolution, inlining, sums, sizes and static checks.

Expressions are expanded with :func:`ast.fold` (no recursion on their depth) and
definitions are built dependencies first (no recursion on the length of a chain of
definitions); the term, label and size limits of :mod:`.limits` are checked on the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from ..ir import (
    PATTERN_KINDS,
    Coeff,
    FreshNames,
    InputSpec,
    Kind,
    Network,
    Family,
    PatternParamError,
    SizeTable,
    Span,
    Tensor,
    Term,
    TnDefinitionError,
    TnError,
    TnNameError,
    TnPatternError,
    TnSizeError,
    UnknownName,
    WrongLegCount,
    check_inferable,
    family,
    inline,
)
from . import ast
from .declarations import DELTA, Declarations, ParamValue, check_unique
from .derived import DERIVED, build_derived, not_multilinear
from .limits import MAX_SIZE, Limits, resolve

__all__ = ["build", "build_each", "param_names", "Declarations", "Builder"]


@dataclass
class _Term:
    """A term under construction; ``mentioned`` are labels written at use sites."""

    coeff: Coeff
    tensors: tuple[Tensor, ...]
    mentioned: frozenset[str]


def build(
    program: ast.Program, limits: Limits | None = None, params: Mapping[str, ParamValue] | None = None
) -> tuple[Declarations, dict[str, Network]]:
    """Check declarations and build every definition's network; ``params`` bind
    ``param`` declarations (each name must be declared; the others keep their defaults)."""
    decls = _declarations(program, params or {})
    builder = Builder(decls, FreshNames(_all_labels(program)), resolve(limits))
    for name in _dependencies_first(decls):
        builder.network(name)
    return decls, {name: builder.network(name) for name in decls.definitions}


def _all_labels(program: ast.Program) -> set[str]:
    labels = {node.name for node in ast.walk(program) if isinstance(node, ast.Label)}
    for statement in program.statements:
        if isinstance(statement, ast.SizeDecl):
            labels.add(statement.name)
    return labels


def _dependencies_first(decls: Declarations) -> list[str]:
    """Definitions in an order that builds each one's dependencies before it (depth-first,
    in the order they are used), so that building one never recurses into a long chain;
    a cycle is reported here, at the use that closes it, as :meth:`Builder.network` would."""
    uses = {name: _uses(definition.expr, decls) for name, definition in decls.definitions.items()}
    order: list[str] = []
    done: set[str] = set()
    for root in decls.definitions:
        if root in done:
            continue
        path, stack = [root], [iter(uses[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                done.add(path[-1])
                order.append(path.pop())
            elif child[0] in path:
                names = path[path.index(child[0]) :] + [child[0]]
                if len(names) > 8:  # a long cycle: its ends and its length
                    names = [*names[:3], f"… ({len(names) - 6} more)", *names[-3:]]
                raise TnDefinitionError(f"cyclic definition: {' -> '.join(names)}", child[1] or decls.definitions[child[0]].span)
            elif child[0] not in done:
                path.append(child[0])
                stack.append(iter(uses[child[0]]))
    return order


def _uses(expr: ast.Expr, decls: Declarations) -> list[tuple[str, Span | None]]:
    """The definitions an expression uses, with the span of each use, in order."""
    found: list[tuple[str, Span | None]] = []
    for node in ast.walk(expr):
        if isinstance(node, ast.Factor):
            found.append((node.name, node.span))
        elif isinstance(node, ast.Call):
            found.extend((arg.name, arg.span) for arg in node.args if isinstance(arg, ast.Label))
    return [(name, span) for name, span in found if name in decls.definitions]


def build_each(
    program: ast.Program, limits: Limits | None = None, params: Mapping[str, ParamValue] | None = None
) -> tuple[Declarations, dict[str, Network], dict[str, TnError]]:
    """As :func:`build`, but a definition that cannot be built under these parameters
    (e.g. a 3-d product under a 2-tuple stride) is returned with its error instead."""
    decls = _declarations(program, params or {})
    builder = Builder(decls, FreshNames(_all_labels(program)), resolve(limits))
    networks: dict[str, Network] = {}
    errors: dict[str, TnError] = {}
    for name in _dependencies_first(decls):
        try:
            networks[name] = builder.network(name)
        except TnError as error:
            errors[name] = error
            builder.active.clear()
    return decls, networks, errors


def param_names(program: ast.Program) -> tuple[str, ...]:
    """The names of a program's ``param`` declarations, in order."""
    return tuple(s.name for s in program.statements if isinstance(s, ast.ParamDecl))


def _declarations(program: ast.Program, params: Mapping[str, ParamValue]) -> Declarations:
    decls = Declarations()
    declared = param_names(program)
    for name in params:
        if name not in declared:
            known = f"declared: {', '.join(declared)}" if declared else "the program declares no 'param'"
            raise UnknownName("parameter", name, None, declared, known)
    bound: dict[str, ast.Param] = {}
    for statement in program.statements:
        if isinstance(statement, ast.ParamDecl):
            if statement.name in decls.params:
                raise TnDefinitionError(f"duplicate parameter declaration for '{statement.name}'", statement.span)
            decls.params[statement.name] = params.get(statement.name, statement.value)
            bound[statement.name] = ast.Param(statement.name, statement.value, span=statement.span)
            continue
        if isinstance(statement, ast.SizeDecl):
            if statement.name in decls.sizes:
                raise TnDefinitionError(f"duplicate size declaration for '{statement.name}'", statement.span)
            if statement.value is not None and statement.value < 1:
                raise TnSizeError(f"size {statement.name} must be at least 1, not {statement.value}", statement.span)
            if statement.value is not None and statement.value > MAX_SIZE:
                raise TnSizeError(f"size {statement.name} is larger than torch's largest size 2**63 - 1", statement.span)
            decls.sizes[statement.name] = statement.value
            continue
        if statement.name == DELTA:
            raise TnDefinitionError("'delta' is the built-in copy tensor and cannot be redefined", statement.span)
        if statement.name in decls.spans:
            first = decls.spans[statement.name]
            where = f" (first declared at line {first.line})" if first else ""
            raise TnDefinitionError(f"duplicate definition of '{statement.name}'{where}", statement.span)
        decls.spans[statement.name] = statement.span
        if isinstance(statement, (ast.InputDecl, ast.IndexDecl)):
            decls.inputs[statement.name] = _input_spec(statement)
        elif isinstance(statement, ast.PatternDecl):
            decls.patterns[statement.name] = _pattern_spec(statement, decls.params, set(params))
        else:
            decls.definitions[statement.name] = statement
    for name, value in decls.params.items():  # a parameter is a call keyword: no clash with one
        if name in decls.inputs or name in decls.sizes:
            raise TnDefinitionError(f"parameter '{name}' has the name of an input or a size", bound[name].span)
    return decls


def _input_spec(decl: ast.InputDecl | ast.IndexDecl) -> InputSpec:
    target = decl.target.labels if isinstance(decl, ast.IndexDecl) else ()
    check_unique([label for axis in decl.axes for label in axis.labels] + list(target), f"the declaration of {decl.name}")
    axes = tuple(tuple(label.name for label in axis.labels) for axis in decl.axes)
    return InputSpec(decl.name, axes, decl.span, target=tuple(label.name for label in target))


def _pattern_spec(decl: ast.PatternDecl, params: Mapping[str, ParamValue], bound: set[str]) -> Family:
    """A pattern declaration's spec(s), its parameter names resolved to their values."""
    if decl.kind not in PATTERN_KINDS:
        raise TnPatternError(f"unknown pattern kind '{decl.kind}'; expected {', '.join(PATTERN_KINDS)}", decl.span)
    seen: dict[str, ast.Param] = {}
    for param in decl.params:
        if param.name in seen:
            raise TnPatternError(f"parameter '{param.name}' given twice", param.span)
        seen[param.name] = param
    values: dict[str, object] = {}
    for name, param in seen.items():
        if isinstance(param.value, ast.ParamRef):
            if param.value.name not in params:
                raise UnknownName("parameter", param.value.name, param.value.span, params)
            values[name] = params[param.value.name]
        else:
            values[name] = param.value
    try:
        return family(**values)
    except PatternParamError as error:
        message = str(error)
        culprit = seen.get(error.param)
        if culprit is not None and isinstance(culprit.value, ast.ParamRef):
            how = "bound" if culprit.value.name in bound else "declared"
            message += f" (parameter '{culprit.value.name}' {how} as {values[error.param]!r})"
        raise TnPatternError(message, culprit.span if culprit is not None else decl.span) from None


class Builder:
    """Builds definitions on demand, detecting cycles; inlines definitions used as factors."""

    def __init__(self, decls: Declarations, fresh: FreshNames, limits: Limits | None = None):
        self.decls = decls
        self.fresh = fresh
        self.limits = resolve(limits)
        self.done: dict[str, Network] = {}
        self.active: list[str] = []

    # -- definitions -------------------------------------------------------------------
    def network(self, name: str, span: Span | None = None) -> Network:
        if name in self.done:
            return self.done[name]
        if name in self.active:
            cycle = " -> ".join(self.active[self.active.index(name) :] + [name])
            definition = self.decls.definitions[name]
            raise TnDefinitionError(f"cyclic definition: {cycle}", span or definition.span)
        self.active.append(name)
        try:
            definition = self.decls.definitions[name]
            if isinstance(definition.expr, ast.Call) and definition.expr.labels is None:
                network = self.derived(definition.expr, name, definition.output)
            elif definition.output is None:
                raise TnDefinitionError(
                    f"definition '{name}' needs output labels, e.g. {name}[a, b] = ...", definition.span
                )
            else:
                network = self.definition(definition)
        finally:
            self.active.pop()
        self.done[name] = network
        return network

    def derived(self, call: ast.Call, name: str, output: tuple[ast.Axis, ...] | None) -> Network:
        network = build_derived(self, call, name, output)
        self.limits.check("max_terms", len(network.terms), f"terms of {call.func}(...)", call.span)
        self._check_labels(network, call.span)
        return network

    def definition(self, definition: ast.Definition) -> Network:
        assert definition.output is not None
        output_labels = [label for axis in definition.output for label in axis.labels]
        check_unique(output_labels, f"the output of {definition.name}")
        spans: dict[str, Span | None] = {label.name: label.span for label in output_labels}
        sizes = SizeTable()
        terms = self.expand(definition.expr, spans, sizes)
        output = tuple(tuple(label.name for label in axis.labels) for axis in definition.output)
        return self.finish(definition.name, definition.span, output, output_labels, terms, spans, sizes)

    def finish(
        self,
        name: str,
        span: Span | None,
        output: tuple[tuple[str, ...], ...],
        output_labels: list[ast.Label],
        terms: list[_Term],
        spans: dict[str, Span | None],
        sizes: SizeTable,
    ) -> Network:
        """Check output labels, turn loose summed labels into size factors, check sizes."""
        mentioned = set().union(*(term.mentioned for term in terms)) if terms else set()
        for label in output_labels:
            if label.name not in mentioned:
                raise TnNameError(f"output label '{label.name}' does not occur on the right-hand side", label.span)
            self._declared_size(label.name, sizes, label.span)
        open_legs = {label for group in output for label in group}
        final = []
        for term in terms:
            term = _Term(term.coeff, self._dimensions(term.tensors), term.mentioned)
            legs = {leg for tensor in term.tensors for leg in tensor.legs}
            loose = sorted(term.mentioned - legs - open_legs)
            coeff = term.coeff * Coeff(1.0, tuple((label, 1) for label in loose)) if loose else term.coeff
            final.append(Term(term.tensors, coeff))
        network = Network(name, output, tuple(final), sizes=sizes.items(), span=span)
        self._check_labels(network, span)
        network = network.pruned(self.decls.inputs.values(), self.decls.patterns.items())
        return check_inferable(network, span, spans)

    def _check_labels(self, network: Network, span: Span | None) -> None:
        self.limits.check("max_labels", len(network.labels), f"distinct labels of '{network.name}'", span)

    # -- expressions -------------------------------------------------------------------
    def expand(self, expr: ast.Expr, spans: dict, sizes: SizeTable) -> list[_Term]:
        """An expression as a list of product terms (distributing products over sums)."""
        return ast.fold(expr, lambda node, inner: self._expand_node(node, inner, spans, sizes))

    def _expand_node(self, expr: ast.Expr, inner: tuple[list[_Term], ...], spans: dict, sizes: SizeTable) -> list[_Term]:
        """One node's terms from its children's terms (see :func:`ast.fold`)."""
        if isinstance(expr, ast.Number):
            return [_Term(Coeff(float(expr.value)), (), frozenset())]
        if isinstance(expr, ast.SizeRef):
            spans.setdefault(expr.label.name, expr.label.span)
            self._declared_size(expr.label.name, sizes, expr.label.span)
            return [_Term(Coeff(1.0, ((expr.label.name, 1),)), (), frozenset())]
        if isinstance(expr, ast.Neg):
            return [_Term(-t.coeff, t.tensors, t.mentioned) for t in inner[0]]
        if isinstance(expr, ast.BinOp):
            return self._binop(expr, *inner)
        if isinstance(expr, ast.Call):
            if expr.func not in DERIVED:
                raise not_multilinear(expr)
            if expr.labels is None:
                raise TnDefinitionError(
                    f"{expr.func}(...) inside an expression needs labels, e.g. {expr.func}(...)[a, b]", expr.span
                )
            network = self.derived(expr, self.fresh("d"), None)
            return self.inline(network, expr.func + "(...)", expr.labels, expr.span, spans, sizes)
        return self.factor(expr, spans, sizes)

    def _binop(self, expr: ast.BinOp, left: list[_Term], right: list[_Term]) -> list[_Term]:
        if expr.op in "+-":
            self.limits.check("max_terms", len(left) + len(right), "terms of a sum", expr.span)
            return left + (right if expr.op == "+" else [_Term(-t.coeff, t.tensors, t.mentioned) for t in right])
        if expr.op == "*":
            self.limits.check("max_terms", len(left) * len(right), "terms of a product of sums", expr.span)
            return [
                _Term(self._finite(a.coeff * b.coeff, expr), a.tensors + b.tensors, a.mentioned | b.mentioned)
                for a in left
                for b in right
            ]
        if any(t.tensors or t.mentioned for t in right):
            raise TnDefinitionError("'/' divides by numbers and sizes only", expr.right.span or expr.span)
        merged: dict[tuple, float] = {}
        for t in right:
            merged[t.coeff.powers] = merged.get(t.coeff.powers, 0.0) + t.coeff.value
        merged = {powers: value for powers, value in merged.items() if value != 0}
        if not merged:
            raise TnDefinitionError("division by zero", expr.right.span or expr.span)
        if len(merged) > 1:
            raise TnDefinitionError("'/' cannot divide by a sum of sizes", expr.right.span or expr.span)
        ((powers, value),) = merged.items()
        inverse = self._finite(Coeff(value, powers).inverse(), expr)
        return [_Term(self._finite(t.coeff * inverse, expr), t.tensors, t.mentioned) for t in left]

    @staticmethod
    def _finite(coeff: Coeff, expr: ast.Expr) -> Coeff:
        """``coeff``, unless arithmetic on the literals overflowed a float64."""
        if not math.isfinite(coeff.value):
            raise TnDefinitionError("the numbers in this expression overflow a float64 (beyond about 1.8e308)", expr.span)
        return coeff

    def factor(self, factor: ast.Factor, spans: dict, sizes: SizeTable) -> list[_Term]:
        labels = tuple(label.name for label in factor.labels)
        for label in factor.labels:
            spans.setdefault(label.name, label.span)
            self._declared_size(label.name, sizes, label.span)
        mentioned = frozenset(labels)
        name = factor.name
        if factor.dim is not None and not isinstance(self.decls.patterns.get(name), tuple):
            raise TnPatternError(f"'{name}.{factor.dim}': only a per-dimension pattern has dimensions", factor.span)
        if name == DELTA:
            return [_Term(Coeff(), (Tensor(Kind.DELTA, DELTA, labels, factor.span),), mentioned)]
        if name in self.decls.inputs:
            spec = self.decls.inputs[name]
            self._check_count(factor, spec.legs + spec.target, "index" if spec.target else "input")
            for declared, label in zip(spec.legs, factor.labels):
                if self.decls.sizes.get(declared) is not None:
                    self._set_size(label.name, self.decls.sizes[declared], sizes, label.span, f"leg {declared} of {name}")
            return [_Term(Coeff(), (Tensor(spec.kind, name, labels, factor.span),), mentioned)]
        if name in self.decls.patterns:
            self._check_count(factor, ("in", "out", "kernel"), "pattern")
            dims = self.decls.patterns[name]
            if factor.dim is not None and factor.dim >= len(dims):
                raise TnPatternError(f"pattern {name} has {len(dims)} dimensions; '{name}.{factor.dim}' is not one", factor.span)
            return [_Term(Coeff(), (Tensor(Kind.PATTERN, name, labels, factor.span, dim=factor.dim),), mentioned)]
        if name in self.decls.definitions:
            network = self.network(name, factor.span)
            return self.inline(network, name, factor.labels, factor.span, spans, sizes)
        known = list(self.decls.inputs) + list(self.decls.patterns) + list(self.decls.definitions) + [DELTA]
        raise UnknownName("tensor", name, factor.span, known, hint="declare it with 'input'")

    def inline(
        self, network: Network, what: str, labels: tuple[ast.Label, ...], span: Span | None, spans: dict, sizes: SizeTable
    ) -> list[_Term]:
        """Substitute a built network at a use site: outputs renamed, summed labels fresh."""
        legs = network.output_legs
        if len(labels) != len(legs):
            raise WrongLegCount(what, legs, len(labels), span)
        for label in labels:
            spans.setdefault(label.name, label.span)
            self._declared_size(label.name, sizes, label.span)
        terms, mapping = inline(network, [label.name for label in labels], self.fresh)
        for inner, size in network.sizes:
            if inner in mapping:  # a size table may keep entries of labels rewrites removed
                self._set_size(mapping[inner], size, sizes, span, f"leg {inner} of {what}")
        mentioned = frozenset(label.name for label in labels)
        return [_Term(term.coeff, term.tensors, mentioned | frozenset(term.labels)) for term in terms]

    # -- helpers -------------------------------------------------------------------------
    def _dimensions(self, tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Uses of a per-dimension pattern without an explicit ``.d`` take dimensions 0, 1,
        … in the order they are written in the product."""
        counts: dict[str, int] = {}
        resolved = []
        for tensor in tensors:
            dims = self.decls.patterns.get(tensor.name) if tensor.kind is Kind.PATTERN else None
            if isinstance(dims, tuple) and tensor.dim is None:
                dim = counts[tensor.name] = counts.get(tensor.name, -1) + 1
                if dim >= len(dims):
                    raise TnPatternError(
                        f"pattern {tensor.name} has {len(dims)} dimensions but this product uses it {dim + 1} times",
                        tensor.span,
                        hint=f"pick a dimension explicitly, e.g. {tensor.name}.0[...]",
                    )
                tensor = replace(tensor, dim=dim)
            resolved.append(tensor)
        for tensor in tensors:  # implicit uses must cover every dimension: fewer is a mismatch
            dims = self.decls.patterns.get(tensor.name) if tensor.kind is Kind.PATTERN else None
            if isinstance(dims, tuple) and tensor.dim is None and counts.get(tensor.name, len(dims)) + 1 < len(dims):
                used = counts.pop(tensor.name) + 1
                raise TnPatternError(
                    f"pattern {tensor.name} has {len(dims)} dimensions but this product uses it {used} "
                    f"time{'s' if used > 1 else ''}",
                    tensor.span,
                    hint=f"give it one value per dimension this product uses, or pick one explicitly, e.g. {tensor.name}.0[...]",
                )
        return tuple(resolved)


    def _check_count(self, factor: ast.Factor, legs: tuple[str, ...], kind: str) -> None:
        if len(factor.labels) != len(legs):
            raise WrongLegCount(f"{kind} {factor.name}", legs, len(factor.labels), factor.span)

    def _declared_size(self, label: str, sizes: SizeTable, span: Span | None) -> None:
        size = self.decls.declared_size(label)
        if size is not None:
            self._set_size(label, size, sizes, span, f"'size {label}'")

    @staticmethod
    def _set_size(label: str, size: int | str, sizes: SizeTable, span: Span | None, source: str) -> None:
        old = sizes.get(label)
        if old is not None and old != size:
            raise TnSizeError(f"leg '{label}' has size {old}, but {source} has size {size}", span)
        sizes.add(label, size)
