"""Building the IR from the AST: name resolution, inlining, sums, sizes and static checks."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable

from . import ast
from .errors import (
    Span,
    TnArityError,
    TnDefinitionError,
    TnNameError,
    TnPatternError,
    TnSizeError,
)
from .ir import KIND_DELTA, KIND_INPUT, KIND_PATTERN, Coeff, InputSpec, Network, Tensor, Term
from .patterns import PATTERN_KINDS, PatternParamError, PatternSpec
from .sizes import solve

__all__ = ["build", "Declarations", "Builder"]

DELTA = "delta"


@dataclass
class Declarations:
    """Everything declared in a program, by name, in declaration order."""

    inputs: dict[str, InputSpec] = field(default_factory=dict)
    sizes: dict[str, int | None] = field(default_factory=dict)
    patterns: dict[str, PatternSpec] = field(default_factory=dict)
    definitions: dict[str, ast.Definition] = field(default_factory=dict)
    spans: dict[str, Span | None] = field(default_factory=dict)
    vmapped: dict[str, str] = field(default_factory=dict)  # input made by vmap -> the input it batches


@dataclass
class _Term:
    """A term under construction; ``mentioned`` are labels written at use sites."""

    coeff: Coeff
    tensors: tuple[Tensor, ...]
    mentioned: frozenset[str]


class FreshNames:
    """Label names not used anywhere in the program (valid identifiers, for printing)."""

    def __init__(self, used: Iterable[str]):
        self.used = set(used)

    def __call__(self, base: str) -> str:
        base = base.split("_")[0] or "x"
        n = 1
        while f"{base}_{n}" in self.used:
            n += 1
        name = f"{base}_{n}"
        self.used.add(name)
        return name


def build(program: ast.Program) -> tuple[Declarations, dict[str, Network]]:
    """Check declarations and build every definition's network."""
    decls = _declarations(program)
    builder = Builder(decls, FreshNames(_all_labels(program)))
    return decls, {name: builder.network(name) for name in decls.definitions}


def _all_labels(program: ast.Program) -> set[str]:
    labels: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, ast.Label):
            labels.add(node.name)
        elif isinstance(node, tuple):
            for item in node:
                walk(item)
        elif hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                walk(getattr(node, name))

    walk(program)
    for statement in program.statements:
        if isinstance(statement, ast.SizeDecl):
            labels.add(statement.name)
    return labels


def _declarations(program: ast.Program) -> Declarations:
    decls = Declarations()
    for statement in program.statements:
        if isinstance(statement, ast.SizeDecl):
            if statement.name in decls.sizes:
                raise TnDefinitionError(f"duplicate size declaration for '{statement.name}'", statement.span)
            if statement.value is not None and statement.value < 1:
                raise TnSizeError(f"size {statement.name} must be at least 1, not {statement.value}", statement.span)
            decls.sizes[statement.name] = statement.value
            continue
        if statement.name == DELTA:
            raise TnDefinitionError("'delta' is the built-in copy tensor and cannot be redefined", statement.span)
        if statement.name in decls.spans:
            first = decls.spans[statement.name]
            where = f" (first declared at line {first.line})" if first else ""
            raise TnDefinitionError(f"duplicate definition of '{statement.name}'{where}", statement.span)
        decls.spans[statement.name] = statement.span
        if isinstance(statement, ast.InputDecl):
            decls.inputs[statement.name] = _input_spec(statement)
        elif isinstance(statement, ast.PatternDecl):
            decls.patterns[statement.name] = _pattern_spec(statement)
        else:
            decls.definitions[statement.name] = statement
    return decls


def _input_spec(decl: ast.InputDecl) -> InputSpec:
    _check_unique([label for axis in decl.axes for label in axis.labels], f"the declaration of {decl.name}")
    return InputSpec(decl.name, tuple(tuple(label.name for label in axis.labels) for axis in decl.axes), decl.span)


def _check_unique(labels: list[ast.Label], where: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label.name in seen:
            raise TnDefinitionError(f"label '{label.name}' appears twice in {where}", label.span)
        seen.add(label.name)


def _pattern_spec(decl: ast.PatternDecl) -> PatternSpec:
    if decl.kind not in PATTERN_KINDS:
        raise TnPatternError(f"unknown pattern kind '{decl.kind}'; expected {', '.join(PATTERN_KINDS)}", decl.span)
    seen: dict[str, ast.Param] = {}
    for param in decl.params:
        if param.name in seen:
            raise TnPatternError(f"parameter '{param.name}' given twice", param.span)
        seen[param.name] = param
    try:
        return PatternSpec.create(**{name: param.value for name, param in seen.items()})
    except PatternParamError as error:
        raise TnPatternError(str(error), seen[error.param].span if error.param in seen else decl.span) from None


class Builder:
    """Builds definitions on demand, detecting cycles; inlines definitions used as factors."""

    def __init__(self, decls: Declarations, fresh: FreshNames):
        self.decls = decls
        self.fresh = fresh
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
        if call.func not in ast.DERIVED_FORMS:
            raise TnNameError(f"unknown function '{call.func}'; expected one of {', '.join(ast.DERIVED_FORMS)}", call.span)
        from .derive import derive_hook  # the rewrites build on this module

        return derive_hook(self, call, name, output)

    def definition(self, definition: ast.Definition) -> Network:
        assert definition.output is not None
        output_labels = [label for axis in definition.output for label in axis.labels]
        _check_unique(output_labels, f"the output of {definition.name}")
        spans: dict[str, Span | None] = {label.name: label.span for label in output_labels}
        sizes: dict[str, int | str] = {}
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
        sizes: dict[str, int | str],
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
            legs = {leg for tensor in term.tensors for leg in tensor.legs}
            loose = sorted(term.mentioned - legs - open_legs)
            coeff = term.coeff * Coeff(1.0, tuple((label, 1) for label in loose)) if loose else term.coeff
            final.append(Term(term.tensors, coeff))
        used_inputs = {t.name for term in final for t in term.tensors if t.kind == KIND_INPUT}
        used_patterns = {t.name for term in final for t in term.tensors if t.kind == KIND_PATTERN}
        network = Network(
            name=name,
            output=output,
            terms=tuple(final),
            inputs=tuple(spec for n, spec in self.decls.inputs.items() if n in used_inputs),
            patterns=tuple((n, spec) for n, spec in self.decls.patterns.items() if n in used_patterns),
            sizes=tuple(sorted(sizes.items())),
            span=span,
        )
        _, unknown = solve(network, None)
        if unknown:
            kernels = [t.legs[2] for term in final for t in term.tensors if t.kind == KIND_PATTERN]
            label = min(unknown, key=lambda leg: leg not in kernels)
            raise TnSizeError(
                f"cannot infer the size of leg '{label}' in '{name}'",
                spans.get(label) or span,
                hint=f"declare it with 'size {label} = N' (or 'size {label}' to pass it as a keyword argument)",
            )
        return network

    # -- expressions -------------------------------------------------------------------
    def expand(self, expr: ast.Expr, spans: dict, sizes: dict) -> list[_Term]:
        """An expression as a list of product terms (distributing products over sums)."""
        if isinstance(expr, ast.Number):
            return [_Term(Coeff(float(expr.value)), (), frozenset())]
        if isinstance(expr, ast.SizeRef):
            spans.setdefault(expr.label.name, expr.label.span)
            self._declared_size(expr.label.name, sizes, expr.label.span)
            return [_Term(Coeff(1.0, ((expr.label.name, 1),)), (), frozenset())]
        if isinstance(expr, ast.Neg):
            return [_Term(-t.coeff, t.tensors, t.mentioned) for t in self.expand(expr.operand, spans, sizes)]
        if isinstance(expr, ast.BinOp):
            left = self.expand(expr.left, spans, sizes)
            right = self.expand(expr.right, spans, sizes)
            if expr.op == "+":
                return left + right
            if expr.op == "-":
                return left + [_Term(-t.coeff, t.tensors, t.mentioned) for t in right]
            if expr.op == "*":
                return [
                    _Term(a.coeff * b.coeff, a.tensors + b.tensors, a.mentioned | b.mentioned) for a in left for b in right
                ]
            if any(t.tensors or t.mentioned for t in right):
                raise TnDefinitionError("'/' divides by numbers and sizes only", expr.right.span or expr.span)
            merged: dict[tuple, float] = {}
            for t in right:
                merged[t.coeff.sizes] = merged.get(t.coeff.sizes, 0.0) + t.coeff.value
            merged = {powers: value for powers, value in merged.items() if value != 0}
            if not merged:
                raise TnDefinitionError("division by zero", expr.right.span or expr.span)
            if len(merged) > 1:
                raise TnDefinitionError("'/' cannot divide by a sum of sizes", expr.right.span or expr.span)
            ((powers, value),) = merged.items()
            inverse = Coeff(value, powers).inverse()
            return [_Term(t.coeff * inverse, t.tensors, t.mentioned) for t in left]
        if isinstance(expr, ast.Call):
            if expr.labels is None:
                raise TnDefinitionError(
                    f"{expr.func}(...) inside an expression needs labels, e.g. {expr.func}(...)[a, b]", expr.span
                )
            network = self.derived(expr, self.fresh("d"), None)
            return self.inline(network, expr.func + "(...)", expr.labels, expr.span, spans, sizes)
        return self.factor(expr, spans, sizes)

    def factor(self, factor: ast.Factor, spans: dict, sizes: dict) -> list[_Term]:
        labels = tuple(label.name for label in factor.labels)
        for label in factor.labels:
            spans.setdefault(label.name, label.span)
            self._declared_size(label.name, sizes, label.span)
        mentioned = frozenset(labels)
        name = factor.name
        if name == DELTA:
            return [_Term(Coeff(), (Tensor(KIND_DELTA, DELTA, labels, factor.span),), mentioned)]
        if name in self.decls.inputs:
            spec = self.decls.inputs[name]
            self._check_count(factor, spec.legs, "input")
            for declared, label in zip(spec.legs, factor.labels):
                if self.decls.sizes.get(declared) is not None:
                    self._set_size(label.name, self.decls.sizes[declared], sizes, label.span, f"leg {declared} of {name}")
            return [_Term(Coeff(), (Tensor(KIND_INPUT, name, labels, factor.span),), mentioned)]
        if name in self.decls.patterns:
            self._check_count(factor, ("in", "out", "kernel"), "pattern")
            return [_Term(Coeff(), (Tensor(KIND_PATTERN, name, labels, factor.span),), mentioned)]
        if name in self.decls.definitions:
            network = self.network(name, factor.span)
            return self.inline(network, name, factor.labels, factor.span, spans, sizes)
        known = list(self.decls.inputs) + list(self.decls.patterns) + list(self.decls.definitions) + [DELTA]
        close = difflib.get_close_matches(name, known, n=1)
        raise TnNameError(
            f"unknown tensor '{name}'", factor.span, hint=f"did you mean '{close[0]}'?" if close else "declare it with 'input'"
        )

    def inline(
        self, network: Network, what: str, labels: tuple[ast.Label, ...], span: Span | None, spans: dict, sizes: dict
    ) -> list[_Term]:
        """Substitute a built network at a use site: outputs renamed, summed labels fresh."""
        legs = network.output_legs
        if len(labels) != len(legs):
            raise TnArityError(
                f"{what} has {len(legs)} legs [{', '.join(legs)}] but {len(labels)} labels were given", span
            )
        for label in labels:
            spans.setdefault(label.name, label.span)
            self._declared_size(label.name, sizes, label.span)
        mapping = {leg: label.name for leg, label in zip(legs, labels)}
        for inner in network.labels:
            if inner not in mapping:
                mapping[inner] = self.fresh(inner)
        for inner, size in network.sizes:
            label = mapping[inner]
            self._set_size(label, size, sizes, span, f"leg {inner} of {what}")
        mentioned = frozenset(label.name for label in labels)
        return [_Term(term.coeff.renamed(mapping), term.renamed(mapping).tensors, mentioned | frozenset(mapping[l] for l in term.labels)) for term in network.terms]

    # -- helpers -------------------------------------------------------------------------
    def _check_count(self, factor: ast.Factor, legs: tuple[str, ...], kind: str) -> None:
        if len(factor.labels) != len(legs):
            raise TnArityError(
                f"{kind} {factor.name} has {len(legs)} legs [{', '.join(legs)}] but {len(factor.labels)} labels were given",
                factor.span,
            )

    def _declared_size(self, label: str, sizes: dict, span: Span | None) -> None:
        if label in self.decls.sizes:
            value = self.decls.sizes[label]
            self._set_size(label, label if value is None else value, sizes, span, f"'size {label}'")

    @staticmethod
    def _set_size(label: str, size: int | str, sizes: dict, span: Span | None, source: str) -> None:
        old = sizes.get(label)
        if old is not None and old != size:
            raise TnSizeError(f"leg '{label}' has size {old}, but {source} has size {size}", span)
        sizes[label] = size
