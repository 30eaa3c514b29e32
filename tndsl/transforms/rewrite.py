"""Derived networks by graph rewriting: grad, vjp, jvp and vmap (docs/language.md, docs/rewrites.md).

Every rewrite is a pure function ``Network -> Network``; nothing is mutated.

- :func:`grad` removes the tensor: ``∂Y/∂W`` is Y's network without W; each removed leg
  becomes an output leg named after W's declaration (a clash with one of Y's output legs
  gets a fresh name, joined to the use by a delta). W occurring k times gives the
  product-rule sum of k terms. Output: Y's groups, then W's declaration axes (grouped like
  W's declaration, so ``grad`` of a scalar has W's shape).
- :func:`vjp` contracts V (an input declared with Y's output grouping, or a network with Y's
  output) with ``∂Y/∂W`` over Y's legs; output: W's declaration axes.
- :func:`jvp` replaces W by T (product rule over W's occurrences); output: Y's.
- :func:`vmap` adds leg ``b`` as the first leg of every use of the listed inputs and as the
  first output group. A vmapped input is a new input (by default with the same name; the
  language gives it a new name, see :mod:`tndsl.derive`) whose declaration gains the
  leading axis ``b``.

Labels are network-wide, summed per term: the rewrites rename summed labels per term,
copying their entry in the network's size table, so sizes keep flowing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from ..ir import AbsentInput, FreshNames, ShapeOf, ambiguous, InputSpec, Kind, Network, SizeTable, Span, Tensor, Term, TnArityError, TnNameError, inline
from .simplify import prune_deltas

__all__ = ["grad", "vjp", "jvp", "vmap", "rename_output", "Fresh"]

Fresh = Callable[[str], str]


def _default_fresh(*networks: Network, extra: Iterable[str] = ()) -> FreshNames:
    used: set[str] = set(extra)
    for network in networks:
        used.update(network.labels)
        used.update(label for label, _ in network.sizes)
        for spec in network.inputs:
            used.update(spec.legs)
    return FreshNames(used)


def _require_input(network: Network, name: str, span: Span | None, derivative: bool = True) -> InputSpec:
    if not network.uses(Kind.INPUT, name):
        raise AbsentInput(name, network.name, [s.name for s in network.inputs], span, derivative)
    return network.input(name)


def _renaming_table(network: Network, avoid: set[str]) -> tuple[SizeTable, SizeTable]:
    """For renaming labels into ``avoid``: the network's table as it was (where sources are
    looked up) and the table to fill, without the entries of ``avoid`` — after renaming,
    those names mean what their sources meant, not what they meant before."""
    original = SizeTable(network.sizes)
    return original, SizeTable((label, size) for label, size in network.sizes if label not in avoid)


def _rename_summed(
    term: Term, mapping: dict[str, str], avoid: set[str], keep: set[str], fresh: Fresh, sizes: SizeTable, original: SizeTable
) -> Term:
    """Apply ``mapping``; first rename summed labels that would collide with ``avoid``.
    Each new name gets its source's entry in ``original`` (a renaming may chain: with
    ``a → b, b → c``, c gets b's old size, not a's)."""
    mapping = dict(mapping)
    for label in list(term.labels) + [l for l, _ in term.coeff.powers]:
        if label in avoid and label not in mapping and label not in keep:
            mapping[label] = fresh(label)
    for source, target in mapping.items():
        sizes.add(target, original.get(source))
    return term.renamed(mapping)


def _occurrences(network: Network, wrt: str) -> Iterator[tuple[Term, int, Tensor]]:
    """Each use of input ``wrt``: its term, its position there, and the tensor."""
    for term in network.terms:
        for index, tensor in enumerate(term.tensors):
            if tensor.kind is Kind.INPUT and tensor.name == wrt:
                yield term, index, tensor


def _canonical(spec: InputSpec, taken: Iterable[str], fresh: Fresh) -> dict[str, str]:
    """W's declared labels as result legs; those clashing with ``taken`` get fresh names."""
    taken = set(taken)
    result: dict[str, str] = {}
    for label in spec.legs:
        result[label] = fresh(label) if label in taken else label
        taken.add(result[label])
    return result


def grad(
    network: Network,
    wrt: str,
    *,
    fresh: Fresh | None = None,
    name: str | None = None,
    span: Span | None = None,
) -> Network:
    """``∂network/∂wrt``: the product-rule sum of ``network`` with one ``wrt`` removed per term.

    Output: ``network``'s groups, then ``wrt``'s declaration axes with its declared labels
    (a label clashing with an output leg of ``network`` gets a fresh name); those legs have
    ``wrt``'s sizes (:func:`settle_shapes`).
    """
    return settle_shapes(_grad(network, wrt, fresh, name, span), network.input(wrt))


def _grad(network: Network, wrt: str, fresh: Fresh | None, name: str | None, span: Span | None) -> Network:
    """:func:`grad` before its removed legs are given size sources."""
    spec = _require_input(network, wrt, span or network.span)
    fresh = fresh or _default_fresh(network)
    out = set(network.output_legs)
    canon = _canonical(spec, out, fresh)
    legs = tuple(canon[label] for label in spec.legs)
    avoid = set(legs)
    original, sizes = _renaming_table(network, avoid)
    for position, leg in enumerate(legs):  # the derivative has the removed input's shape
        sizes.add(leg, ShapeOf(wrt, position))
    terms: list[Term] = []
    for term, index, tensor in _occurrences(network, wrt):
        rest = Term(term.tensors[:index] + term.tensors[index + 1 :], term.coeff)
        mapping: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        for use, leg in zip(tensor.legs, legs):
            if use not in out and use not in mapping:
                mapping[use] = leg
            else:
                extra.append((use, leg))
        # summed labels of the removed tensor itself that are not mapped: none (all mapped)
        renamed = _rename_summed(rest, mapping, avoid, out, fresh, sizes, original)
        deltas = tuple(
            Tensor(Kind.DELTA, "delta", (mapping.get(use, use), leg), tensor.span) for use, leg in extra
        )
        terms.append(Term(renamed.tensors + deltas, renamed.coeff))
    output = network.output + tuple(tuple(canon[label] for label in axis) for axis in spec.axes)
    return replace(
        network,
        name=name or f"grad({network.name}, {wrt})",
        output=output,
        terms=tuple(terms),
        sizes=sizes.items(),
        span=span or network.span,
    ).pruned()


def settle_shapes(network: Network, removed: InputSpec) -> Network:
    """Give the legs that have an input's size (:class:`ShapeOf`) a source that still
    exists: the input while it is an argument; else, for the ``removed`` input, an
    argument declared exactly as it is (a tangent: same axes, same labels); else, where
    only a strided Π's transpose rule would give the size (a guess), a keyword size named
    by the leg; else nothing (a ``size`` declaration must fix it)."""
    inputs = {spec.name for spec in network.inputs}
    like = [spec.name for spec in network.inputs if spec.axes == removed.axes]
    table = network.size_table
    loose = []
    for label, size in network.sizes:
        if not isinstance(size, ShapeOf) or size.input in inputs:
            continue
        if size.input == removed.name and like:
            table.set(label, ShapeOf(like[0], size.position))
        else:
            table.set(label, None)
            loose.append(label)
    for label in ambiguous(network.with_sizes(table), loose):
        table.set(label, label)
    return network.with_sizes(table)


def _with_declarations(result: Network, network: Network, other: InputSpec | Network) -> Network:
    """``result`` with the used declarations of ``network`` and of the (co)tangent."""
    specs = [other] if isinstance(other, InputSpec) else list(other.inputs)
    patterns = network.patterns + (other.patterns if isinstance(other, Network) else ())
    return result.pruned(list(network.inputs) + specs, patterns)


def _check_like(
    kind: str, other: InputSpec | Network, groups: tuple[tuple[str, ...], ...], what: str, span: Span | None
) -> None:
    have = other.axes if isinstance(other, InputSpec) else other.output
    if tuple(map(len, have)) != tuple(map(len, groups)):
        show = lambda axes: "[" + ", ".join("(" + " ".join(a) + ")" if len(a) > 1 else a[0] for a in axes) + "]"  # noqa: E731
        raise TnArityError(
            f"{kind} argument '{other.name}' has axes {show(have)}, which do not match {what} {show(groups)}",
            span,
            hint="it needs as many axes, each split into as many legs",
        )


def vjp(network: Network, wrt: str, cotangent: InputSpec | Network, *, fresh: Fresh | None = None,
        name: str | None = None, span: Span | None = None) -> Network:
    """``Σ_y V[y] ∂network[y]/∂wrt``: V contracted with :func:`grad` over ``network``'s legs.

    ``cotangent`` is an input declaration (axes split like ``network``'s output groups) or a
    network with ``network``'s output structure (inlined). Output: ``wrt``'s axes.
    """
    fresh = fresh or _default_fresh(network, *([cotangent] if isinstance(cotangent, Network) else []))
    _check_like("vjp", cotangent, network.output, f"the output of '{network.name}'", span or network.span)
    # Y's legs are summed in the result: free their names for W's declared labels
    spec = _require_input(network, wrt, span or network.span)
    clash = set(spec.legs) & set(network.output_legs)
    if clash:
        network = rename_output(
            network, tuple(tuple(fresh(l) if l in clash else l for l in g) for g in network.output), fresh
        )
    derivative = _grad(network, wrt, fresh, None, span)
    sizes = SizeTable(derivative.sizes)
    legs = network.output_legs
    if isinstance(cotangent, InputSpec):
        factors: tuple[Term, ...] = (Term((Tensor(Kind.INPUT, cotangent.name, legs),)),)
    else:
        factors, _ = inline(cotangent, legs, fresh, sizes)
    terms = tuple(Term(d.tensors + v.tensors, d.coeff * v.coeff) for d in derivative.terms for v in factors)
    result = replace(
        derivative,
        name=name or f"vjp({network.name}, {wrt}, {cotangent.name})",
        output=derivative.output[len(network.output) :],
        terms=terms,
        sizes=sizes.items(),
    )
    result = prune_deltas(_with_declarations(result, network, cotangent))  # Y's legs are summed: deltas go
    return settle_shapes(result, spec)


def jvp(network: Network, wrt: str, tangent: InputSpec | Network, *, fresh: Fresh | None = None,
        name: str | None = None, span: Span | None = None) -> Network:
    """``Σ_w ∂network/∂wrt[w] T[w]``: each occurrence of ``wrt`` replaced by T in turn.

    ``tangent`` is an input declaration with ``wrt``'s axes or a network with that output
    structure (inlined at each occurrence). Output: ``network``'s.
    """
    spec = _require_input(network, wrt, span or network.span)
    _check_like("jvp", tangent, spec.axes, f"the declaration of '{wrt}'", span or network.span)
    fresh = fresh or _default_fresh(network, *([tangent] if isinstance(tangent, Network) else []))
    sizes = SizeTable(network.sizes)
    terms: list[Term] = []
    for term, index, tensor in _occurrences(network, wrt):
        before, after = term.tensors[:index], term.tensors[index + 1 :]
        if isinstance(tangent, InputSpec):
            terms.append(Term(before + (Tensor(Kind.INPUT, tangent.name, tensor.legs, tensor.span),) + after, term.coeff))
        else:
            for inner in inline(tangent, tensor.legs, fresh, sizes)[0]:
                terms.append(Term(before + inner.tensors + after, term.coeff * inner.coeff))
    result = replace(
        network,
        name=name or f"jvp({network.name}, {wrt}, {tangent.name})",
        terms=tuple(terms),
        sizes=sizes.items(),
        span=span or network.span,
    )
    return _with_declarations(result, network, tangent)


def vmap(
    network: Network,
    leg: str,
    inputs: Sequence[str],
    *,
    names: Mapping[str, str] | None = None,
    name: str | None = None,
    span: Span | None = None,
    spans: Sequence[Span | None] | None = None,
) -> Network:
    """Add leg ``leg`` first to every use of ``inputs`` and as the first output group.

    A vmapped input ``X`` becomes the input ``names.get(X, X)`` whose declaration is X's with
    the leading axis ``leg``. Terms without a vmapped input broadcast along ``leg``.
    """
    names = dict(names or {})
    spans = list(spans or [None] * len(inputs))
    if leg in network.labels:
        raise TnNameError(
            f"vmap leg '{leg}' clashes with a label of '{network.name}'",
            span or network.span,
            hint="choose a leg name that the network does not use",
        )
    if not inputs:
        raise TnArityError("vmap needs at least one input to map over", span or network.span)
    new_specs: dict[str, InputSpec] = {}
    for position, x in enumerate(inputs):
        spec = _require_input(network, x, spans[position] or span or network.span, derivative=False)
        if leg in spec.legs:
            raise TnNameError(
                f"vmap leg '{leg}' clashes with a label of the declaration of '{x}'", spans[position] or span or network.span
            )
        if x in new_specs:
            raise TnNameError(f"'{x}' is listed twice", spans[position] or span or network.span)
        new_specs[x] = InputSpec(names.get(x, x), ((leg,),) + spec.axes, spec.span)
    terms = tuple(
        Term(
            tuple(
                Tensor(Kind.INPUT, new_specs[t.name].name, (leg,) + t.legs, t.span)
                if t.kind is Kind.INPUT and t.name in new_specs
                else t
                for t in term.tensors
            ),
            term.coeff,
        )
        for term in network.terms
    )
    specs = tuple(new_specs.get(s.name, s) for s in network.inputs)
    return replace(
        network,
        name=name or f"vmap({network.name}, {leg}, {', '.join(inputs)})",
        output=((leg,),) + network.output,
        terms=terms,
        inputs=specs,
        span=span or network.span,
    )


def rename_output(
    network: Network, output: tuple[tuple[str, ...], ...], fresh: Fresh | None = None, span: Span | None = None
) -> Network:
    """Rename the output legs positionally to ``output``'s labels (and regroup as it groups)."""
    new = tuple(label for group in output for label in group)
    old = network.output_legs
    if len(new) != len(old):
        raise TnArityError(f"'{network.name}' has {len(old)} legs [{', '.join(old)}] but {len(new)} labels were given", span)
    fresh = fresh or _default_fresh(network, extra=new)
    original, sizes = _renaming_table(network, set(new))
    mapping = dict(zip(old, new))
    terms = tuple(_rename_summed(term, mapping, set(new), set(old), fresh, sizes, original) for term in network.terms)
    return replace(network, output=output, terms=terms, sizes=sizes.items())
