"""Π simplifications and other value-preserving network rewrites.

Each simplification is a named pure function ``Network -> Network`` whose docstring
states exactly when it applies; where it does not apply the network comes back unchanged.
Shape-dependent ones take the concrete ``sizes`` (label -> int, e.g. from
:func:`tndsl.sizes.solve` with the argument shapes) and are valid only for those sizes:
their result carries the sizes it used in its size table.

Three simplifications produce the IR's constant kinds ``slice`` (``S[i, o] = 1`` iff
``i = start + step·o``) and ``pattern_sum`` (``M[i, k] = Σ_o Π[i, o, k]``): the compiler
folds them at plan time, lowers a slice on an input to a strided view, and the dense
reference materializes them (:mod:`tndsl.constants`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

from ..ir import Coeff, FreshNames, InputSpec, Kind, Network, PatternSpec, Slice, Tensor, Term

__all__ = [
    "prune_deltas",
    "drop_size_one_legs",
    "merge_legs",
    "dense_pattern",
    "kernel_one_slice",
    "summed_pattern",
    "downsample_pattern",
    "simplify",
]

def _with_sizes(network: Network, sizes: Mapping[str, int], labels) -> Network:
    """``network`` with the concrete sizes of ``labels`` added to its size table."""
    return network.with_sizes(network.size_table.merge((l, int(sizes[l])) for l in labels if l in sizes))


# -- shape-independent --------------------------------------------------------------------


def prune_deltas(network: Network) -> Network:
    """Remove deltas by renaming legs.

    Condition, per delta occurrence in a term: repeated legs of one delta are merged
    (``delta[a, a, b] = delta[a, b]``); a delta leg that is summed in the term (not an output
    leg) is renamed to another leg of the same delta everywhere in the term and dropped from
    the delta; a one-leg delta whose leg another tensor of the term carries is dropped
    (multiplying by ones). Deltas whose legs are all output legs (diagonal embeddings) and
    one-leg deltas of broadcast legs stay. Values are unchanged for every size.
    """
    out = set(network.output_legs)
    table = network.size_table
    terms = []
    for term in network.terms:
        changed = True
        while changed:
            changed = False
            tensors = list(term.tensors)
            for index, tensor in enumerate(tensors):
                if tensor.kind is not Kind.DELTA:
                    continue
                legs = tuple(dict.fromkeys(tensor.legs))
                if len(legs) != len(tensor.legs):
                    tensors[index] = replace(tensor, legs=legs)
                    term, changed = Term(tuple(tensors), term.coeff), True
                    break
                summed = [leg for leg in legs if leg not in out]
                if len(legs) >= 2 and summed:
                    source = summed[-1]
                    target = next(leg for leg in legs if leg != source)
                    table.copy(source, target)
                    rest = tensors[:index] + [replace(tensor, legs=tuple(l for l in legs if l != source))] + tensors[index + 1 :]
                    term, changed = Term(tuple(rest), term.coeff).renamed({source: target}), True
                    break
                if len(legs) == 1:
                    others = {leg for n, t in enumerate(tensors) if n != index for leg in t.legs}
                    if legs[0] in others:
                        term, changed = Term(tuple(tensors[:index] + tensors[index + 1 :]), term.coeff), True
                        break
                    if legs[0] not in out:  # ones summed: the size as a coefficient
                        coeff = term.coeff * Coeff(1.0, ((legs[0], 1),))
                        term, changed = Term(tuple(tensors[:index] + tensors[index + 1 :]), coeff), True
                        break
        terms.append(term)
    return replace(network, terms=tuple(terms), sizes=table.items())


# -- shape-dependent ----------------------------------------------------------------------


def drop_size_one_legs(network: Network, sizes: Mapping[str, int]) -> Network:
    """Drop legs of size 1 where the structure allows.

    Condition: a label of size 1 (in ``sizes``) is removed from deltas, from split input axes
    that keep at least one other leg (the declaration's axis loses that split leg, and every
    use of the input loses it), from output groups of two or more labels, and from size
    coefficients (``|a| = 1``). A size-1 leg that is a whole input axis or a whole output
    axis stays (it is part of an argument's or the result's shape), and so do Π legs.
    A delta left with no legs is dropped.
    """
    ones = {label for label in network.labels if sizes.get(label) == 1}
    if not ones:
        return network
    # input axes: per input, which (flat) leg positions can go
    specs: dict[str, InputSpec] = {}
    drop_positions: dict[str, set[int]] = {}
    for spec in network.inputs:
        if spec.target:  # an index input keeps its legs
            specs[spec.name], drop_positions[spec.name] = spec, set()
            continue
        uses = [t for term in network.terms for t in term.tensors if t.kind is Kind.INPUT and t.name == spec.name]
        positions: set[int] = set()
        flat = 0
        new_axes = []
        for axis in spec.axes:
            keep = []
            for sub, declared in enumerate(axis):
                if len(axis) > 1 and all(use.legs[flat + sub] in ones for use in uses):
                    positions.add(flat + sub)
                else:
                    keep.append(declared)
            if not keep:  # keep one leg per axis
                keep = [axis[-1]]
                positions.discard(flat + len(axis) - 1)
            new_axes.append(tuple(keep))
            flat += len(axis)
        specs[spec.name] = InputSpec(spec.name, tuple(new_axes), spec.span)
        drop_positions[spec.name] = positions
    terms = []
    for term in network.terms:
        tensors = []
        for tensor in term.tensors:
            if tensor.kind is Kind.DELTA:
                legs = tuple(l for l in tensor.legs if l not in ones)
                if legs:
                    tensors.append(replace(tensor, legs=legs))
            elif tensor.kind is Kind.INPUT:
                drop = drop_positions[tensor.name]
                tensors.append(replace(tensor, legs=tuple(l for n, l in enumerate(tensor.legs) if n not in drop)))
            else:
                tensors.append(tensor)
        coeff = term.coeff.without(ones)
        terms.append(Term(tuple(tensors), coeff))
    output = tuple(
        tuple(l for l in group if l not in ones) or (group[-1],) if len(group) > 1 else group for group in network.output
    )
    result = replace(network, output=output, terms=tuple(terms), inputs=tuple(specs[s.name] for s in network.inputs))
    return _with_sizes(result, sizes, result.labels)


def merge_legs(network: Network, sizes: Mapping[str, int]) -> Network:
    """Merge two labels ``a``, ``b`` that always travel together into one label of size |a|·|b|.

    Condition: every tensor carrying ``a`` or ``b`` is an input whose legs hold ``a`` directly
    followed by ``b`` inside one declared axis (the same flat positions in every use of that
    input, across all terms); the output holds them adjacent in one group, or neither; no
    coefficient mentions them; and every such input's every use has them at those positions.
    Each input's declaration merges the two split legs into one.
    """
    for a, b in _pairs(network):
        merged = _merge_pair(network, a, b, sizes)
        if merged is not None:
            return merge_legs(merged, sizes)
    return network


def _pairs(network: Network):
    seen = set()
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is Kind.INPUT:
                for a, b in zip(tensor.legs, tensor.legs[1:]):
                    if a != b and (a, b) not in seen:
                        seen.add((a, b))
                        yield a, b


def _merge_pair(network: Network, a: str, b: str, sizes: Mapping[str, int]) -> Network | None:
    positions: dict[str, int] = {}
    for term in network.terms:
        if term.coeff.mentions(a) or term.coeff.mentions(b):
            return None
        for tensor in term.tensors:
            if a not in tensor.legs and b not in tensor.legs:
                continue
            if tensor.kind is not Kind.INPUT or tensor.legs.count(a) != 1 or tensor.legs.count(b) != 1:
                return None
            pos = tensor.legs.index(a)
            if tensor.legs.index(b) != pos + 1 or positions.setdefault(tensor.name, pos) != pos:
                return None
    for name, pos in positions.items():
        spec = network.input(name)
        flat = 0
        inside = False
        for axis in spec.axes:
            if flat <= pos and pos + 1 < flat + len(axis):
                inside = True
            flat += len(axis)
        if not inside:
            return None
        for term in network.terms:
            for tensor in term.tensors:
                if tensor.kind is Kind.INPUT and tensor.name == name and tensor.legs[pos : pos + 2] != (a, b):
                    return None
    out = network.output_legs
    if (a in out) != (b in out):
        return None
    if a in out and not any(group[i : i + 2] == (a, b) for group in network.output for i in range(len(group))):
        return None
    merged = a  # the merged label keeps a's name
    terms = []
    for term in network.terms:
        tensors = []
        for tensor in term.tensors:
            if a in tensor.legs:
                pos = tensor.legs.index(a)
                tensor = replace(tensor, legs=tensor.legs[:pos] + (merged,) + tensor.legs[pos + 2 :])
            tensors.append(tensor)
        terms.append(Term(tuple(tensors), term.coeff))
    specs = [
        _merge_axis(spec, positions[spec.name]) if spec.name in positions else spec for spec in network.inputs
    ]
    output = tuple(
        tuple(l for l in group if l != b) for group in network.output
    )
    table = {l: s for l, s in network.sizes if l not in (a, b)}
    table[merged] = int(sizes[a]) * int(sizes[b])
    return replace(network, output=output, terms=tuple(terms), inputs=tuple(specs), sizes=tuple(sorted(table.items())))


def _split_axis(spec: InputSpec, pos: int, split) -> InputSpec:
    """The declaration with its flat leg ``pos`` split into the labels ``split(leg)``."""
    flat, axes = 0, []
    for axis in spec.axes:
        if flat <= pos < flat + len(axis):
            j = pos - flat
            axis = axis[:j] + tuple(split(axis[j])) + axis[j + 1 :]
            flat += len(axis) - 1
        else:
            flat += len(axis)
        axes.append(axis)
    return InputSpec(spec.name, tuple(axes), spec.span)


def _merge_axis(spec: InputSpec, pos: int) -> InputSpec:
    """The declaration with flat legs ``pos`` and ``pos + 1`` (one axis) merged."""
    flat, axes = 0, []
    for axis in spec.axes:
        if flat <= pos < flat + len(axis):
            j = pos - flat
            new = axis[:j] + (axis[j] + "_" + axis[j + 1],) + axis[j + 2 :]
        else:
            new = axis
        flat += len(axis)
        axes.append(new)
    return InputSpec(spec.name, tuple(axes), spec.span)


def _pattern_uses(network: Network):
    for t_index, term in enumerate(network.terms):
        for index, tensor in enumerate(term.tensors):
            if tensor.kind is Kind.PATTERN:
                yield t_index, index, tensor, network.spec_of(tensor)


def _replace_tensor(network: Network, t_index: int, index: int, new: Sequence[Tensor]) -> Network:
    term = network.terms[t_index]
    tensors = term.tensors[:index] + tuple(new) + term.tensors[index + 1 :]
    terms = network.terms[:t_index] + (Term(tensors, term.coeff),) + network.terms[t_index + 1 :]
    return replace(network, terms=terms)


def _tidy_patterns(network: Network) -> Network:
    return network.pruned()


def dense_pattern(network: Network, sizes: Mapping[str, int]) -> Network:
    """Replace a dense Π by splitting its input leg: ``X[.., i] Π[i, o, k] = X[.., (o k)]``.

    Condition: Π has stride = K (its kernel size), no padding, dilation 1, and
    ``I = O·K``; its in-leg ``i`` is summed, occurs once in Π, and is otherwise carried only
    by inputs, each holding ``i`` once; for each of those inputs, every use in the network
    (all terms) is such a use at the same leg position with equal ``(O, K)``. Then each such
    input's declaration splits that leg into two (``(.. o k ..)``, row-major, as
    ``torch.reshape``), its uses name ``o`` and ``k`` there, and Π disappears. The result is
    an ordinary network (input, pattern and delta tensors only).
    """
    out = set(network.output_legs)
    for t_index, index, tensor, spec in _pattern_uses(network):
        i, o, k = tensor.legs
        I, O, K = (int(sizes[l]) for l in (i, o, k))
        if not (spec.stride == K and spec.pads(K) == (0, 0) and spec.dilation == 1 and I == O * K):
            continue
        if i in out or len({i, o, k}) != 3:
            continue
        term = network.terms[t_index]
        if term.coeff.mentions(i):
            continue
        carriers = [t for n, t in enumerate(term.tensors) if n != index and i in t.legs]
        if not carriers or any(t.kind is not Kind.INPUT or t.legs.count(i) != 1 for t in carriers):
            continue
        positions = {t.name: t.legs.index(i) for t in carriers}
        if len(positions) != len(carriers):  # one input used twice on the same leg
            continue
        ok = True
        for name, pos in positions.items():
            count = sum(1 for t2 in network.terms for t in t2.tensors if t.kind is Kind.INPUT and t.name == name)
            if count != 1:  # used elsewhere: its declaration cannot change for this use only
                ok = False
        if not ok:
            continue
        terms = list(network.terms)
        new_tensors = []
        for n, t in enumerate(term.tensors):
            if n == index:
                continue
            if t.kind is Kind.INPUT and t.name in positions:
                pos = positions[t.name]
                t = replace(t, legs=t.legs[:pos] + (o, k) + t.legs[pos + 1 :])
            new_tensors.append(t)
        terms[t_index] = Term(tuple(new_tensors), term.coeff)
        specs = [
            _split_axis(spec, positions[spec.name], lambda leg: (leg + "_o", leg + "_k")) if spec.name in positions else spec
            for spec in network.inputs
        ]
        result = replace(network, terms=tuple(terms), inputs=tuple(specs))
        result = _with_sizes(_tidy_patterns(result), sizes, (o, k))
        return dense_pattern(result, sizes)
    return network


def kernel_one_slice(network: Network, sizes: Mapping[str, int]) -> Network:
    """Replace Π with kernel size 1 by a strided slice ``S[i, o]`` (kind ``slice``).

    Condition: K = 1. Then ``Π[i, o, 0] = 1`` iff ``i = o·stride − pad_left`` (in range), so
    Π becomes ``slice(−pad_left, stride)[i, o]`` and its kernel leg ``k`` (size 1) is
    removed from the term (a one-leg delta keeps it if it is an output leg, else it is
    summed over one value and disappears).
    """
    out = set(network.output_legs)
    for t_index, index, tensor, spec in _pattern_uses(network):
        i, o, k = tensor.legs
        if int(sizes[k]) != 1 or len({i, o, k}) != 3:
            continue
        left, _ = spec.pads(1)
        new = [Tensor(Kind.SLICE, "slice", (i, o), tensor.span, slice=Slice(-left, spec.stride))]
        others = {l for n, t in enumerate(network.terms[t_index].tensors) if n != index for l in t.legs}
        if k in out or k in others:
            new.append(Tensor(Kind.DELTA, "delta", (k,), tensor.span))
        result = _with_sizes(_tidy_patterns(_replace_tensor(network, t_index, index, new)), sizes, (i, o, k))
        return kernel_one_slice(result, sizes)
    return network


def summed_pattern(network: Network, sizes: Mapping[str, int]) -> Network:
    """Replace Π whose output leg is summed over Π alone by the constant ``M[i, k]`` (``pattern_sum``).

    Condition: Π's out-leg ``o`` is not an output leg, occurs in no other tensor of the
    term, and Π's three legs differ. ``M[i, k] = Σ_o Π[i, o, k]`` with ``O`` from Π's
    forward size rule (the value plan-time constant folding would give; this is why
    KFAC-reduce needs no unfolded buffer). A coefficient's ``|o|`` (an average over output
    positions) becomes its number, since ``o`` leaves the term.
    """
    out = set(network.output_legs)
    for t_index, index, tensor, spec in _pattern_uses(network):
        i, o, k = tensor.legs
        term = network.terms[t_index]
        if o in out or len({i, o, k}) != 3:
            continue
        if any(o in t.legs for n, t in enumerate(term.tensors) if n != index):
            continue
        if spec.out_size(int(sizes[i]), int(sizes[k])) != int(sizes[o]):
            continue
        new = [Tensor(Kind.PATTERN_SUM, tensor.name, (i, k), tensor.span, dim=tensor.dim)]
        result = _replace_tensor(network, t_index, index, new)
        terms = list(result.terms)
        terms[t_index] = Term(terms[t_index].tensors, terms[t_index].coeff.substitute(o, int(sizes[o])))
        result = _with_sizes(replace(result, terms=tuple(terms)), sizes, (i, k))
        return summed_pattern(result, sizes)
    return network


def downsample_pattern(network: Network, sizes: Mapping[str, int], fresh_prefix: str = "j") -> Network:
    """Replace a down-sampling Π by a slice then a dense Π.

    Condition: no padding and ``stride > dilation·(K−1)`` with stride > 1 and K > 1 (the
    kernel windows do not overlap, e.g. stride > kernel with dilation 1). Then
    ``Π[i, o, k] = Σ_{j, r} S1[i, j] · D[j, o, r] · S2[r, k]`` with ``S1 = slice(0, 1)``
    keeping the first ``J = O·stride`` entries of leg i (zero rows past ``I``), D a dense Π
    (pattern ``conv(stride=s)`` with kernel s, added to the network as ``<name>_dense``) and
    ``S2 = slice(0, dilation)`` picking ``r = k·dilation``. New labels ``j``, ``r`` get
    fresh names; their sizes are added to the size table.
    """
    for t_index, index, tensor, spec in _pattern_uses(network):
        i, o, k = tensor.legs
        I, O, K = (int(sizes[l]) for l in (i, o, k))
        s, d = spec.stride, spec.dilation
        if not (spec.pads(K) == (0, 0) and s > d * (K - 1) and s > 1 and K > 1 and not (d == 1 and K == s)):
            continue
        if len({i, o, k}) != 3:
            continue
        fresh = FreshNames(network.labels)
        j, r = fresh(fresh_prefix), fresh("r")
        dense_name = FreshNames(n for n, _ in network.patterns)(tensor.name + "dense")
        new = [
            Tensor(Kind.SLICE, "slice", (i, j), tensor.span, slice=Slice(0, 1)),
            Tensor(Kind.PATTERN, dense_name, (j, o, r), tensor.span),
            Tensor(Kind.SLICE, "slice", (r, k), tensor.span, slice=Slice(0, d)),
        ]
        result = _replace_tensor(network, t_index, index, new)
        patterns = dict(result.patterns)
        patterns[dense_name] = PatternSpec(stride=s)
        table = result.size_table.merge({j: O * s, r: s})
        result = replace(result, patterns=tuple(patterns.items()), sizes=table.items())
        result = _with_sizes(_tidy_patterns(result), sizes, (i, o, k))
        sizes = dict(sizes, **{j: O * s, r: s})
        return downsample_pattern(result, sizes, fresh_prefix)
    return network


def simplify(network: Network, sizes: Mapping[str, int] | None = None) -> Network:
    """Delta pruning, then (given sizes) the IR-native shape-dependent simplifications."""
    network = prune_deltas(network)
    if sizes is not None:
        network = dense_pattern(network, sizes)
        network = drop_size_one_legs(network, sizes)
        network = merge_legs(network, sizes)
    return network


# -- reference evaluation ------------------------------------------------------------------
