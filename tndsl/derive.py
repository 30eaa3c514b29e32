"""Derived forms in the language (grad/vjp/jvp/vmap) and ``tndsl derive``.

:func:`derive_hook` is called by :meth:`tndsl.build.Builder.derived`: it resolves the
arguments of a call, runs the rewrite of :mod:`tndsl.rewrite` and checks the result.
:func:`format_network` prints any network as a plain ``.tn`` definition, and
:func:`derive_text` prints a whole program with every derived definition expanded.

Naming rules (see ``docs/rewrites.md``):

- ``G = vjp(Y, W, V)`` (no brackets) takes the canonical legs: W's declared labels grouped
  as W's declaration; ``grad`` puts Y's groups first; ``jvp`` keeps Y's; ``vmap`` puts the
  mapped leg first. ``G[a, b] = vjp(Y, W, V)`` renames those legs positionally (and may
  regroup them); ``G[a, b] = vjp(Y, W, V)[a, b]`` uses the call as a factor.
- ``vmap(Y, b, X, ...)``: each mapped input X becomes a new input named ``X_b`` (or
  ``X_b_2``... if taken) declared as ``input X_b[b, <X's axes>]``, placed right after X in
  declaration order. Its argument is X with a leading axis ``b``.
"""

from __future__ import annotations

import difflib
from typing import Sequence

from . import ast
from .build import Builder, FreshNames, build
from .errors import TnArityError, TnNameError, TnNotSupportedError, TnSizeError
from .ir import KIND_INPUT, KIND_PATTERN, Coeff, InputSpec, Network, Term
from .parser import parse
from .printer import format_statement
from .rewrite import check_sizes, grad, jvp, rename_output, vjp, vmap
from .sizes import solve

__all__ = ["derive_hook", "format_network", "network_definition", "derive_text"]

_ARITY = {"grad": (2, 2), "vjp": (3, 3), "jvp": (3, 3), "vmap": (3, None)}
_USAGE = {"grad": "grad(Y, W)", "vjp": "vjp(Y, W, V)", "jvp": "jvp(Y, W, T)", "vmap": "vmap(Y, b, X, ...)"}


def _unknown(builder: Builder, label: ast.Label, what: str) -> TnNameError:
    known = list(builder.decls.definitions) + list(builder.decls.inputs)
    close = difflib.get_close_matches(label.name, known, n=1)
    return TnNameError(f"unknown {what} '{label.name}'", label.span, hint=f"did you mean '{close[0]}'?" if close else None)


def _definition(builder: Builder, label: ast.Label, func: str) -> Network:
    name = label.name
    if name in builder.decls.definitions:
        return builder.network(name, label.span)
    if name in builder.decls.inputs or name in builder.decls.patterns or name == "delta":
        raise TnNameError(f"the first argument of {func}() must be a definition, not '{name}'", label.span)
    raise _unknown(builder, label, "definition")


def _tensor_arg(builder: Builder, label: ast.Label, func: str) -> InputSpec | Network:
    """A V or T argument: a declared input, or a definition (inlined)."""
    name = label.name
    if name in builder.decls.inputs:
        return builder.decls.inputs[name]
    if name in builder.decls.definitions:
        return builder.network(name, label.span)
    raise _unknown(builder, label, "input or definition")


def _wrt(builder: Builder, y: Network, label: ast.Label, func: str) -> str:
    name = label.name
    if name in builder.decls.patterns:
        raise TnNameError(f"{func}() differentiates with respect to inputs; '{name}' is a pattern", label.span)
    if name not in builder.decls.inputs:
        if name in builder.decls.definitions:
            raise TnNameError(f"{func}() differentiates with respect to inputs; '{name}' is a definition", label.span)
        raise _unknown(builder, label, "input")
    if name not in {spec.name for spec in y.inputs}:
        raise TnNameError(
            f"'{name}' does not occur in '{y.name}': the derivative would be zero",
            label.span,
            hint=f"'{y.name}' uses {', '.join(s.name for s in y.inputs) or 'no inputs'}",
        )
    return name


def _vmap_input(builder: Builder, x: str, leg: str) -> str:
    """The name of X's input mapped over ``leg``, declared right after X (created once)."""
    spec = builder.decls.inputs[x]
    axes = ((leg,),) + spec.axes
    taken = set(builder.decls.inputs) | set(builder.decls.patterns) | set(builder.decls.definitions) | {"delta"}
    base = f"{x}_{leg}"
    candidate, n = base, 1
    while candidate in taken:
        existing = builder.decls.inputs.get(candidate)
        if existing is not None and existing.axes == axes and builder.decls.vmapped.get(candidate) == x:
            return candidate
        n += 1
        candidate = f"{base}_{n}"
    new = InputSpec(candidate, axes, spec.span)
    items = list(builder.decls.inputs.items())
    index = [name for name, _ in items].index(x)
    items.insert(index + 1, (candidate, new))
    builder.decls.inputs.clear()
    builder.decls.inputs.update(items)
    builder.decls.vmapped[candidate] = x
    builder.fresh.used.add(candidate)
    return candidate


def derive_hook(builder: Builder, call: ast.Call, name: str, output: tuple[ast.Axis, ...] | None) -> Network:
    """Build the network of a derived form ``func(args)`` (called by ``Builder.derived``)."""
    func = call.func
    low, high = _ARITY[func]
    if len(call.args) < low or (high is not None and len(call.args) > high):
        raise TnArityError(
            f"{func}() takes {low if high == low else f'at least {low}'} arguments, {len(call.args)} given",
            call.span,
            hint=f"write {_USAGE[func]}",
        )
    definition = builder.decls.definitions.get(name)
    span = definition.span if definition is not None and definition.expr is call else call.span
    y = _definition(builder, call.args[0], func)
    fresh = builder.fresh
    if func == "vmap":
        leg = call.args[1]
        if leg.name in y.labels:
            raise TnNameError(
                f"vmap leg '{leg.name}' clashes with a label of '{y.name}'",
                leg.span,
                hint=f"'{y.name}' uses the labels {', '.join(y.labels)}",
            )
        xs = []
        for arg in call.args[2:]:
            if arg.name not in builder.decls.inputs:
                if arg.name in builder.decls.definitions or arg.name in builder.decls.patterns:
                    raise TnNameError(f"vmap maps over inputs; '{arg.name}' is not an input", arg.span)
                raise _unknown(builder, arg, "input")
            xs.append(arg.name)
        names = {x: _vmap_input(builder, x, leg.name) for x in xs}
        network = vmap(y, leg.name, xs, names=names, name=name, span=span, spans=[a.span for a in call.args[2:]])
    else:
        wrt = _wrt(builder, y, call.args[1], func)
        if func == "grad":
            network = grad(y, wrt, fresh=fresh, name=name, span=span)
        else:
            other = _tensor_arg(builder, call.args[2], func)
            rewrite = vjp if func == "vjp" else jvp
            try:
                network = rewrite(y, wrt, other, fresh=fresh, name=name, span=span)
            except TnArityError as error:
                raise type(error)(error.message, call.args[2].span, error.hint) from None
    if output is not None:
        labels = [label for axis in output for label in axis.labels]
        seen: set[str] = set()
        for label in labels:
            if label.name in seen:
                raise TnNameError(f"label '{label.name}' appears twice in the output of {name}", label.span)
            seen.add(label.name)
        groups = tuple(tuple(label.name for label in axis.labels) for axis in output)
        network = rename_output(network, groups, fresh, span)
    # declared sizes of the new output legs, inputs in declaration order, then a static check
    table = dict(network.sizes)
    for label in network.labels:
        if label in builder.decls.sizes and label not in table:
            value = builder.decls.sizes[label]
            table[label] = label if value is None else value
    order = {n: i for i, n in enumerate(builder.decls.inputs)}
    inputs = tuple(sorted(network.inputs, key=lambda s: order.get(s.name, len(order))))
    used_patterns = {t.name for term in network.terms for t in term.tensors if t.kind == KIND_PATTERN}
    patterns = tuple((n, s) for n, s in builder.decls.patterns.items() if n in used_patterns)
    network = Network(name, network.output, network.terms, inputs, patterns, tuple(sorted(table.items())), span)
    try:
        return check_sizes(network, call.span)
    except TnSizeError as error:
        raise TnSizeError(
            f"{error.message} (a leg of the removed tensor that nothing else fixes)" if func != "vmap" else error.message,
            call.span,
            error.hint,
        ) from None


# -- printing networks back as .tn ------------------------------------------------------


def _label(name: str) -> ast.Label:
    return ast.Label(name)


def _coeff_expr(coeff: Coeff) -> tuple[list[ast.Expr], list[ast.Expr]]:
    """(numerator factors, denominator factors) of |coefficient|."""
    num: list[ast.Expr] = []
    den: list[ast.Expr] = []
    value = abs(coeff.value)
    if value != 1.0:
        num.append(ast.Number(int(value) if value.is_integer() and value < 2**53 else value))
    for label, power in coeff.sizes:
        target = num if power > 0 else den
        target.extend(ast.SizeRef(_label(label)) for _ in range(abs(power)))
    return num, den


def _term_expr(term: Term, output: Sequence[str]) -> ast.Expr:
    num, den = _coeff_expr(term.coeff)
    factors: list[ast.Expr] = list(num)
    present = set()
    for tensor in term.tensors:
        factors.append(ast.Factor(tensor.name, tuple(_label(leg) for leg in tensor.legs)))
        present.update(tensor.legs)
    for leg in dict.fromkeys(output):
        if leg not in present:  # a broadcast leg: a one-leg delta is a vector of ones
            factors.append(ast.Factor("delta", (_label(leg),)))
    if not factors:
        factors.append(ast.Number(1))
    expr = factors[0]
    for factor in factors[1:]:
        expr = ast.BinOp("*", expr, factor)
    for factor in den:
        expr = ast.BinOp("/", expr, factor)
    return expr


def network_definition(network: Network, name: str | None = None) -> ast.Definition:
    """A network as a ``.tn`` definition AST (tensors by their input/pattern names)."""
    output = network.output_legs
    expr: ast.Expr | None = None
    for term in network.terms:
        if term.coeff.value == 0:
            continue
        part = _term_expr(term, output)
        negative = term.coeff.value < 0
        if expr is None:
            expr = ast.Neg(part) if negative else part
        else:
            expr = ast.BinOp("-" if negative else "+", expr, part)
    if expr is None:  # the zero network
        expr = ast.BinOp("*", ast.Number(0), _term_expr(Term(()), output))
    axes = tuple(ast.Axis(tuple(_label(l) for l in group), len(group) > 1) for group in network.output)
    return ast.Definition(name or network.name, axes, expr)


def format_network(network: Network, name: str | None = None) -> str:
    """A network as one line of ``.tn`` text: ``NAME[out] = term + term ...``."""
    return format_statement(network_definition(network, name))


def _contains_call(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.Call):
        return True
    if isinstance(expr, ast.BinOp):
        return _contains_call(expr.left) or _contains_call(expr.right)
    if isinstance(expr, ast.Neg):
        return _contains_call(expr.operand)
    return False


def _printable(network: Network, decls, fresh: FreshNames) -> tuple[Network, list[ast.SizeDecl]]:
    """Rename labels whose size only the size table knows; declare their sizes."""
    # the sizes that re-parsing the printed definition will find
    table: dict[str, int | str] = {}
    for label in network.labels:
        if label in decls.sizes:
            value = decls.sizes[label]
            table[label] = label if value is None else value
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind == KIND_INPUT:
                for declared, leg in zip(decls.inputs[tensor.name].legs, tensor.legs):
                    if decls.sizes.get(declared) is not None:
                        table[leg] = decls.sizes[declared]
    probe = Network(network.name, network.output, network.terms, network.inputs, network.patterns, tuple(table.items()))
    _, unknown = solve(probe, None)
    if not unknown:
        return network, []
    original = dict(network.sizes)
    mapping: dict[str, str] = {}
    new_sizes: list[ast.SizeDecl] = []
    for label in unknown:
        size = original.get(label)
        if isinstance(size, int):
            mapping[label] = fresh(label)
            new_sizes.append(ast.SizeDecl(mapping[label], size))
        elif isinstance(size, str) and size not in network.labels and size not in mapping.values():
            mapping[label] = size  # a keyword size: name the leg after the keyword
        else:
            raise TnNotSupportedError(f"cannot print '{network.name}': the size of leg '{label}' is not expressible")
    terms = tuple(term.renamed(mapping) for term in network.terms)
    output = tuple(tuple(mapping.get(l, l) for l in group) for group in network.output)
    return Network(network.name, output, terms, network.inputs, network.patterns, network.sizes), new_sizes


def derive_text(text: str, names: Sequence[str] = (), simplify: bool = False, filename: str = "<string>") -> str:
    """The program with derived definitions expanded into plain ``.tn`` definitions.

    ``names`` restricts the expansion to those definitions (all derived ones by default).
    With ``simplify``, shape-independent simplifications (:func:`tndsl.simplify.prune_deltas`)
    are applied first. Declarations are kept; vmapped inputs get their declarations. The
    file's header comment (the comment lines before its first statement, with any
    ``# check:`` lines) is kept, so a derived gallery program still checks itself.
    """
    program = parse(text, filename)
    decls, networks = build(program)
    for wanted in names:
        if wanted not in decls.definitions:
            raise TnNameError(f"no definition named '{wanted}'; defined: {', '.join(decls.definitions)}")
    fresh = FreshNames(_all_names(program, networks))
    declared = {s.name for s in program.statements if isinstance(s, ast.InputDecl)}
    # inputs created by vmap follow, in declaration order, the declared input they extend
    added: dict[str, list[str]] = {}
    anchor = None
    for input_name in decls.inputs:
        if input_name in declared:
            anchor = input_name
        elif anchor is not None:
            added.setdefault(anchor, []).append(input_name)
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line.rstrip())
    for statement in program.statements:
        if isinstance(statement, ast.Definition) and _contains_call(statement.expr) and (not names or statement.name in names):
            network = networks[statement.name]
            if simplify:
                from .simplify import prune_deltas

                network = prune_deltas(network)
            network, sizes = _printable(network, decls, fresh)
            lines.extend(format_statement(s) for s in sizes)
            lines.append(format_statement(network_definition(network, statement.name)))
        else:
            lines.append(format_statement(statement))
        if isinstance(statement, ast.InputDecl):
            for new in added.get(statement.name, []):
                spec = decls.inputs[new]
                axes = tuple(ast.Axis(tuple(_label(l) for l in axis), len(axis) > 1) for axis in spec.axes)
                lines.append(format_statement(ast.InputDecl(new, axes)))
    return "".join(line + "\n" for line in lines)


def _all_names(program: ast.Program, networks: dict[str, Network]) -> set[str]:
    used: set[str] = set()
    for network in networks.values():
        used.update(network.labels)
    for statement in program.statements:
        used.add(statement.name)
        if isinstance(statement, ast.InputDecl):
            used.update(label.name for axis in statement.axes for label in axis.labels)
    return used
