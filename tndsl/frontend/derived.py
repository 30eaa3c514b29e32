"""The derived forms of the language — ``grad``, ``vjp``, ``jvp``, ``vmap`` — in ONE table.

Each :class:`DerivedForm` says how many arguments the form takes, how to write it, and
how to build its network from the resolved arguments by calling the pure rewrites of
:mod:`tndsl.transforms.rewrite`. The builder calls :func:`build_derived` for a call;
nothing here imports the builder back.

Naming rules (see ``docs/rewrites.md``):

- ``G = vjp(Y, W, V)`` (no brackets) takes the canonical legs: W's declared labels grouped
  as W's declaration; ``grad`` puts Y's groups first; ``jvp`` keeps Y's; ``vmap`` puts the
  mapped leg first. ``G[a, b] = vjp(Y, W, V)`` renames those legs positionally (and may
  regroup them); ``G[a, b] = vjp(Y, W, V)[a, b]`` uses the call as a factor.
- ``vmap(Y, b, X, ...)``: each mapped input X becomes a new input named ``X_b`` (or
  ``X_b_2``... if taken) declared as ``input X_b[b, <X's axes>]``, placed right after X in
  declaration order (:meth:`Declarations.add_vmapped`). Its argument is X with a leading
  axis ``b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..ir import (
    AbsentInput,
    FreshNames,
    InputSpec,
    Kind,
    Network,
    ShapeOf,
    SizeTable,
    Span,
    TnArityError,
    TnDefinitionError,
    TnNameError,
    TnSizeError,
    UnknownName,
    check_inferable,
)
from ..transforms.rewrite import grad, jvp, rename_output, vjp, vmap
from . import ast
from .declarations import Declarations, check_unique
from .printer import format_expr

__all__ = ["DerivedForm", "DERIVED", "build_derived", "not_multilinear"]


class Builder(Protocol):
    """What a derived form needs of the builder (:class:`tndsl.frontend.builder.Builder`)."""

    decls: Declarations
    fresh: FreshNames

    def network(self, name: str, span: Span | None = None) -> Network: ...


@dataclass(frozen=True)
class DerivedForm:
    """One derived form: arity bounds (``high`` None: no bound), usage text, and the
    function building its network from ``(builder, call, y, name, span)``."""

    low: int
    high: int | None
    usage: str
    build: Callable[[Builder, ast.Call, Network, str, object], Network]


def _unknown(builder: Builder, label: ast.Label, what: str) -> TnNameError:
    return UnknownName(what, label.name, label.span, list(builder.decls.definitions) + list(builder.decls.inputs))


def _nested(builder: Builder, call: ast.Call) -> Network:
    """A derived form written as an argument: ``grad(grad(L, W), W)``."""
    if call.labels is not None:
        raise TnDefinitionError(f"a nested {call.func}(...) takes no labels; label the outer call instead", call.span)
    return build_derived(builder, call, format_expr(call), None)


def _name(arg: ast.Label | ast.Expr, what: str) -> ast.Label:
    """An argument that must be a plain name."""
    if not isinstance(arg, ast.Label):
        raise TnDefinitionError(f"{what} must be a name, not an expression", getattr(arg, "span", None))
    return arg


def _definition(builder: Builder, label: ast.Label | ast.Expr, func: str) -> Network:
    if isinstance(label, ast.Call):
        return _nested(builder, label)
    label = _name(label, f"the first argument of {func}()")
    name = label.name
    if name in builder.decls.definitions:
        return builder.network(name, label.span)
    if builder.decls.declares(name):
        raise TnNameError(f"the first argument of {func}() must be a definition, not '{name}'", label.span)
    raise _unknown(builder, label, "definition")


def _tensor_arg(builder: Builder, label: ast.Label | ast.Expr) -> InputSpec | Network:
    """A V or T argument: a declared input, a definition (inlined), or a nested call."""
    if isinstance(label, ast.Call):
        return _nested(builder, label)
    label = _name(label, "the third argument")
    if label.name in builder.decls.inputs:
        return builder.decls.inputs[label.name]
    if label.name in builder.decls.definitions:
        return builder.network(label.name, label.span)
    raise _unknown(builder, label, "input or definition")


def _wrt(builder: Builder, y: Network, label: ast.Label | ast.Expr, func: str) -> str:
    label = _name(label, f"the second argument of {func}()")
    name = label.name
    if name in builder.decls.patterns:
        raise TnNameError(f"{func}() differentiates with respect to inputs; '{name}' is a pattern", label.span)
    if name not in builder.decls.inputs:
        if name in builder.decls.definitions:
            raise TnNameError(f"{func}() differentiates with respect to inputs; '{name}' is a definition", label.span)
        raise _unknown(builder, label, "input")
    if not y.uses(Kind.INPUT, name):
        raise AbsentInput(name, y.name, [s.name for s in y.inputs], label.span)
    return name


def _grad(builder: Builder, call: ast.Call, y: Network, name: str, span) -> Network:
    return grad(y, _wrt(builder, y, call.args[1], call.func), fresh=builder.fresh, name=name, span=span)


def _linearized(rewrite):
    """``vjp``/``jvp``: Y, W and a cotangent or tangent argument."""

    def build(builder: Builder, call: ast.Call, y: Network, name: str, span) -> Network:
        wrt = _wrt(builder, y, call.args[1], call.func)
        other = _tensor_arg(builder, call.args[2])
        try:
            return rewrite(y, wrt, other, fresh=builder.fresh, name=name, span=span)
        except TnArityError as error:
            raise type(error)(error.message, call.args[2].span, error.hint) from None

    return build


def _vmap(builder: Builder, call: ast.Call, y: Network, name: str, span) -> Network:
    leg = _name(call.args[1], "the leg of vmap()")
    if leg.name in y.labels:
        raise TnNameError(
            f"vmap leg '{leg.name}' clashes with a label of '{y.name}'",
            leg.span,
            hint=f"'{y.name}' uses the labels {', '.join(y.labels)}",
        )
    xs = []
    for arg in call.args[2:]:
        arg = _name(arg, "an input of vmap()")
        if arg.name not in builder.decls.inputs:
            if arg.name in builder.decls.definitions or arg.name in builder.decls.patterns:
                raise TnNameError(f"vmap maps over inputs; '{arg.name}' is not an input", arg.span)
            raise _unknown(builder, arg, "input")
        xs.append(arg.name)
    names = {x: builder.decls.add_vmapped(x, leg.name) for x in xs}
    builder.fresh.reserve(names.values())
    return vmap(y, leg.name, xs, names=names, name=name, span=span, spans=[a.span for a in call.args[2:]])


#: The derived forms: name → arity, usage and builder. The one list of them.
DERIVED: dict[str, DerivedForm] = {
    "grad": DerivedForm(2, 2, "grad(Y, W)", _grad),
    "vjp": DerivedForm(3, 3, "vjp(Y, W, V)", _linearized(vjp)),
    "jvp": DerivedForm(3, 3, "jvp(Y, W, T)", _linearized(jvp)),
    "vmap": DerivedForm(3, None, "vmap(Y, b, X, ...)", _vmap),
}


def not_multilinear(call: ast.Call) -> TnNameError:
    """The error for a call that is not a derived form (``relu(X[n, i])``, ``exp(...)``)."""
    if any(not isinstance(arg, ast.Label) for arg in call.args) or len(call.args) == 1:
        return TnNameError(
            f"'{call.func}' is not a tensor-network operation: a network is multilinear in its tensors, "
            "so non-linear functions cannot appear inside it",
            call.span,
            hint="compute the network with tndsl, then apply the function in PyTorch to its result "
            f"(or to an input before the call); the derived forms are {', '.join(DERIVED)}",
        )
    return UnknownName("function", call.func, call.span, DERIVED, hint=f"expected one of {', '.join(DERIVED)}")


def build_derived(builder: Builder, call: ast.Call, name: str, output: tuple[ast.Axis, ...] | None) -> Network:
    """The network of a derived form ``func(args)``, renamed to ``output`` when given."""
    form = DERIVED.get(call.func)
    if form is None:
        raise not_multilinear(call)
    if len(call.args) < form.low or (form.high is not None and len(call.args) > form.high):
        expected = form.low if form.high == form.low else f"at least {form.low}"
        raise TnArityError(
            f"{call.func}() takes {expected} arguments, {len(call.args)} given", call.span, hint=f"write {form.usage}"
        )
    definition = builder.decls.definitions.get(name)
    span = definition.span if definition is not None and definition.expr is call else call.span
    y = _definition(builder, call.args[0], call.func)
    network = form.build(builder, call, y, name, span)
    if output is not None:
        check_unique([label for axis in output for label in axis.labels], f"the output of {name}")
        groups = tuple(tuple(label.name for label in axis.labels) for axis in output)
        network = rename_output(network, groups, builder.fresh, span)
    # declared sizes of the new legs; inputs in declaration order; then the static check
    table = network.size_table
    _declared_axes(builder.decls, network, table, span)
    for label in network.labels:
        if label not in table or isinstance(table.get(label), ShapeOf):  # a declaration beats an input's leg
            table.add(label, builder.decls.declared_size(label))
    network = network.with_sizes(table).pruned(builder.decls.inputs.values(), builder.decls.patterns.items(), list(builder.decls.inputs))
    network = Network(name, network.output, network.terms, network.inputs, network.patterns, network.sizes, span)
    reason = "" if call.func == "vmap" else "a leg of the removed tensor that nothing else fixes"
    return check_inferable(network, call.span, reason=reason)


def _declared_axes(decls: Declarations, network: Network, table: SizeTable, span: Span | None) -> None:
    """Every use of an input — those a rewrite made included — gets the declared sizes of
    the input's axes (``size b = 1`` with ``input A[b, o]`` fixes axis 0 of every use of A)."""
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is not Kind.INPUT:
                continue
            for declared, label in zip(decls.inputs[tensor.name].legs, tensor.legs):
                size = decls.sizes.get(declared)
                old = table.get(label)
                if size is None:
                    continue
                if isinstance(old, int) and old != size:
                    raise TnSizeError(
                        f"leg '{label}' has size {old}, but leg {declared} of {tensor.name} has size {size}", span
                    )
                table.add(label, size)
