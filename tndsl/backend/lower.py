"""Π-aware lowering: turn pattern sub-networks into what they are.

Before the generic pairwise contraction, a term's operands are searched for sub-networks
that are convolutions or their adjoints, and each is replaced by one torch op:

- ``X·Π…·W`` (Π's in-legs only on X, kernel legs only on W) → ``conv`` (``F.conv{1,2,3}d``);
- ``X·Π…·V`` (in-legs on X, out-legs on V, kernel legs kept) → ``conv_weight``
  (``torch.nn.grad.conv*_weight``);
- ``V·Π…·W`` (out-legs on V, kernel legs on W, in-legs kept) → ``conv_transpose``;
- ``X·Π`` (in-leg only on X) → a zero-copy window view (pad + ``unfold``, dilation by slicing);
- ``Z·Π`` (out- and kernel legs only on Z, in-leg kept) → a reshape for windows that tile
  the axis (pixel shuffle), else ``F.fold`` (col2im, one or two spatial dimensions) or
  one matrix product per Π, by cost;
- ``X·S`` for a slice → a strided view; ``X·M`` for a folded Π matrix → a matmul.

Legs shared by both operands and kept (channel groups, or a batch that is not summed) are
folded into the groups of the convolution; legs of one operand that are kept are folded
into the batch. A Gram-type step ``U·Uᵀ`` contracts one copy of ``U`` (in chunks over a
summed leg when ``U`` is large), instead of two. Every lowering appends ops to an
:class:`~tndsl.backend.ops.OpList`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, NamedTuple, Sequence

import torch

from ..ir import PatternSpec
from .ops import OpList

__all__ = ["Operand", "PatternUse", "lower", "gram", "GRAM_CHUNK_ELEMENTS"]

#: A Gram step over an operand larger than this (elements) is computed in chunks.
GRAM_CHUNK_ELEMENTS = 1 << 22
GRAM_CHUNKS = 8


class PatternUse(NamedTuple):
    """A Π operand's parameters and the sizes of its in-, out- and kernel legs."""

    spec: PatternSpec
    size_in: int
    size_out: int
    kernel: int

    @property
    def dense(self) -> bool:
        """Windows that do not overlap or skip: kernel = stride, dilation 1, no padding."""
        return self.spec.stride == self.kernel and self.spec.dilation == 1 and self.spec.pads(self.kernel) == (0, 0)

    @property
    def tiles(self) -> bool:
        """Dense windows that cover the input exactly (``I = O·K``): a reshape."""
        return self.dense and self.size_in == self.size_out * self.kernel


class Window(NamedTuple):
    """One windowed axis of a window view: its axis in the padded input, the labels of its
    out- and kernel legs, and its geometry."""

    axis: int
    out: str
    kernel: str
    stride: int
    dilation: int
    size_kernel: int
    size_out: int


@dataclass(frozen=True)
class WindowBase:
    """Where a window view comes from: the padded input's variable and labels, and its
    windows (so a selection of windows can read them straight from the input)."""

    var: str
    labels: tuple[str, ...]
    windows: tuple[Window, ...]


@dataclass
class Operand:
    """A tensor in flight: a variable (``var``) or a constant, and its labels.

    A constant's value is made on first use by ``make`` (so a Π that is lowered to a
    convolution or a view is never materialized). ``pattern`` is set for a Π operand;
    ``slicing`` for a slice tensor ``S[i, o]``: ``(start, step)``; ``window`` for a window
    view (an unfolded input: a convolution reading it would copy it whole, so none does).
    """

    labels: tuple[str, ...]
    var: str | None = None
    make: Callable[[], torch.Tensor] | None = None
    pattern: PatternUse | None = None
    slicing: tuple[int, int] | None = None
    window: bool = False
    select: int = 0  # an index: its last ``select`` labels are the target legs (var holds integers)
    base: WindowBase | None = None  # for a window view: the padded input it views
    key: object = None  # for a constant: what its value is (equal keys, equal values)
    _value: torch.Tensor | None = field(default=None, repr=False)

    @staticmethod
    def of(labels: tuple[str, ...], value: torch.Tensor) -> "Operand":
        """A constant operand with a known value."""
        return Operand(labels, _value=value)

    @property
    def constant(self) -> bool:
        return self.var is None

    @property
    def value(self) -> torch.Tensor:
        if self._value is None:
            assert self.make is not None, "a runtime operand has no value"
            self._value = self.make()
        return self._value

    @property
    def plain(self) -> bool:
        """A runtime tensor without repeated legs that is not a window view."""
        return self.var is not None and not self.window and not self.select and len(set(self.labels)) == len(self.labels)


class Roles(NamedTuple):
    """An operand's legs in a two-operand lowering, by role."""

    summed: list[str]  # shared with the other operand and summed (channels)
    shared: list[str]  # shared with the other operand and kept (groups)
    own: list[str]  # only on this operand, kept (batch or output channels)
    ones: list[str]  # only on this operand, size 1, needed nowhere (ride along in a reshape)


@dataclass(frozen=True)
class Geometry:
    """Per spatial dimension of a convolution: stride, (left, right) pads, dilation, sizes."""

    strides: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    dilations: tuple[int, ...]
    ins: tuple[int, ...]
    outs: tuple[int, ...]
    kernels: tuple[int, ...]

    @staticmethod
    def of(pats: Sequence[Operand]) -> "Geometry":
        uses = [p.pattern for p in pats]
        return Geometry(
            tuple(u.spec.stride for u in uses),
            tuple(u.spec.pads(u.kernel) for u in uses),
            tuple(u.spec.dilation for u in uses),
            tuple(u.size_in for u in uses),
            tuple(u.size_out for u in uses),
            tuple(u.kernel for u in uses),
        )

    @property
    def symmetric(self) -> bool:
        return all(left == right for left, right in self.pads)

    @property
    def windows_fit(self) -> bool:
        """Whether a convolution of the input gives exactly the output size (not so where
        ``output_padding`` left input positions that no window reaches)."""
        return all(
            (i + left + right - d * (k - 1) - 1) // s + 1 == o
            for i, (left, right), d, k, s, o in zip(self.ins, self.pads, self.dilations, self.kernels, self.strides, self.outs)
        )


@dataclass
class _Context:
    operands: list[Operand]
    keep: tuple[str, ...]
    sizes: Mapping[str, int]
    ops: OpList

    def elsewhere(self, label: str, group: Sequence[Operand]) -> bool:
        """Whether ``label`` is kept or used by an operand outside ``group``."""
        return label in self.keep or any(label in op.labels for op in self.operands if all(op is not g for g in group))

    def only_in(self, label: str, *group: Operand) -> bool:
        return not self.elsewhere(label, group) and all(op.labels.count(label) == 1 for op in group)

    def size(self, labels: Sequence[str]) -> int:
        return math.prod(self.sizes[label] for label in labels)

    def arrange(self, op: Operand, groups: Sequence[Sequence[str]]) -> str:
        """``op`` permuted to the concatenated ``groups`` and reshaped to one axis per group."""
        order = [label for group in groups for label in group]
        var = op.var
        if tuple(order) != op.labels:
            var = self.ops.add("permute", var, dims=tuple(op.labels.index(l) for l in order))
        shape = tuple(self.size(group) for group in groups)
        if shape != tuple(self.sizes[l] for l in order):
            var = self.ops.add("reshape", var, shape=shape)
        return var

    def unflatten(self, var: str, groups: Sequence[Sequence[str]]) -> str:
        """Split a result with one axis per group into one axis per label (if not already)."""
        if all(len(group) == 1 for group in groups):
            return var
        return self.ops.add("reshape", var, shape=tuple(self.sizes[l] for group in groups for l in group))

    def pad(self, var: str, pads: Sequence[tuple[int, int]]) -> str:
        """``F.pad`` of the last ``len(pads)`` axes (trailing zero pads dropped)."""
        flat = [v for left, right in reversed(pads) for v in (left, right)]
        while flat[-2:] == [0, 0]:
            flat = flat[:-2]
        return self.ops.add("pad", var, pads=tuple(flat)) if flat else var

    def replace(self, group: Sequence[Operand], result: Operand) -> list[Operand]:
        return [op for op in self.operands if all(op is not g for g in group)] + [result]


def lower(
    operands: list[Operand], keep: tuple[str, ...], sizes: Mapping[str, int], ops: OpList, dtype: torch.dtype
) -> list[Operand]:
    """Apply the Π lowerings until none matches; return the new operand list."""
    if all(op.var is not None and not op.select for op in operands):
        return operands  # nothing to lower: no Π, slice, folded matrix or index
    matchers: list[Callable[[_Context], list[Operand] | None]] = [
        _conv,
        _conv_weight,
        _conv_transpose,
        _window_view,
        _merge_view,
        _fold,
        _slice_view,
        _axis_matrix,
        _select,
    ]
    if not dtype.is_floating_point:
        matchers = [_select]
    changed = True
    while changed:
        changed = False
        for matcher in matchers:
            result = matcher(_Context(operands, keep, sizes, ops))
            if result is not None:
                operands, changed = result, True
                break
    return operands


# -- matching helpers ----------------------------------------------------------------------


def _patterns(ctx: _Context) -> list[Operand]:
    return [op for op in ctx.operands if op.pattern is not None and len(set(op.labels)) == 3]


def _pick(candidates: list[Operand]) -> list[Operand]:
    """At most three Π with distinct legs (one convolution has at most three dimensions)."""
    chosen: list[Operand] = []
    used: set[str] = set()
    for p in candidates:
        if not used.intersection(p.labels) and len(chosen) < 3:
            chosen.append(p)
            used.update(p.labels)
    return chosen


class _Match(NamedTuple):
    """Two runtime operands, the Π between them, and the roles of their other legs."""

    a: Operand
    b: Operand
    pats: list[Operand]
    a_roles: Roles
    b_roles: Roles
    geometry: Geometry

    @property
    def group(self) -> list[Operand]:
        return [self.a, self.b, *self.pats]

    def legs(self, position: int) -> list[str]:
        """Π's in- (0), out- (1) or kernel (2) legs, one per spatial dimension."""
        return [p.labels[position] for p in self.pats]


def _matches(ctx: _Context, roles: tuple[str | None, str | None, str | None]):
    """Every :class:`_Match` of two runtime operands with Π legs placed as ``roles`` says
    (see :func:`_pattern_pairs`) whose other legs all have a role."""
    for a, b, pats in _pattern_pairs(ctx, roles):
        group = [a, b, *pats]
        on_a = [p.labels[n] for p in pats for n, role in enumerate(roles) if role == "a"]
        on_b = [p.labels[n] for p in pats for n, role in enumerate(roles) if role == "b"]
        a_roles, b_roles = _roles(ctx, a, b, on_a, group), _roles(ctx, b, a, on_b, group)
        geometry = Geometry.of(pats)
        if a_roles is not None and b_roles is not None and (roles[0] is None or geometry.windows_fit):
            yield _Match(a, b, pats, a_roles, b_roles, geometry)


def _pattern_pairs(ctx: _Context, roles: tuple[str | None, str | None, str | None]):
    """Pairs ``(a, b)`` of runtime operands with the Π (up to three) whose legs sit as ``roles`` says.

    ``roles`` gives, for Π's in-, out- and kernel leg, the operand that alone shares it
    (``"a"`` or ``"b"``) or None for a leg on neither (kept, or used further on).
    """
    patterns = _patterns(ctx)
    if not patterns:
        return
    for a in ctx.operands:
        if not a.plain:
            continue
        for b in ctx.operands:
            if b is a or not b.plain:
                continue

            def fits(p: Operand) -> bool:
                for label, role in zip(p.labels, roles):
                    mine, other = (a, b) if role == "a" else (b, a)
                    if role is None:
                        if label in a.labels or label in b.labels:
                            return False
                    elif label in other.labels or not ctx.only_in(label, mine, p):
                        return False
                return True

            pats = _pick([p for p in patterns if fits(p)])
            if pats:
                yield a, b, pats


def _roles(ctx: _Context, op: Operand, other: Operand, skip: Sequence[str], group: list[Operand]) -> Roles | None:
    """Classify ``op``'s legs not in ``skip``; None when a leg is neither shared nor needed
    elsewhere (it would have been summed before lowering)."""
    roles = Roles([], [], [], [])
    for label in op.labels:
        if label in skip:
            continue
        in_other = label in other.labels
        out = ctx.elsewhere(label, group)
        if in_other and not out:
            roles.summed.append(label)
        elif in_other:
            roles.shared.append(label)
        elif out:
            roles.own.append(label)
        elif ctx.sizes[label] == 1:
            roles.ones.append(label)
        else:
            return None
    return roles


def _pad_input(ctx: _Context, var: str, geometry: Geometry) -> tuple[str, tuple[int, ...]]:
    """Symmetric padding goes to the conv call; asymmetric padding is applied with F.pad."""
    if geometry.symmetric:
        return var, tuple(left for left, _ in geometry.pads)
    return ctx.pad(var, geometry.pads), (0,) * len(geometry.pads)


# -- the lowerings -------------------------------------------------------------------------


def _conv(ctx: _Context) -> list[Operand] | None:
    """``X[b, g, c, i…]·Π[i, o, k]…·W[g, d, c, k…]`` → ``F.convNd`` with groups ``g``."""
    for m in _matches(ctx, ("a", None, "b")):
        xs, ws, g = m.a_roles, m.b_roles, m.geometry
        batch, groups, channels = xs.own, xs.shared, xs.summed
        xr = ctx.arrange(m.a, [batch, groups + channels + xs.ones] + [[s] for s in m.legs(0)])
        xr, padding = _pad_input(ctx, xr, g)
        wr = ctx.arrange(m.b, [groups + ws.own + ws.ones, channels] + [[k] for k in m.legs(2)])
        y = ctx.ops.add(
            "conv", xr, wr, dims=len(m.pats), stride=g.strides, padding=padding, dilation=g.dilations,
            groups=ctx.size(groups),
        )
        return _result(ctx, m, y, [batch, groups + ws.own], m.legs(1))
    return None


def _conv_weight(ctx: _Context) -> list[Operand] | None:
    """``X[n, g, c, i…]·Π[i, o, k]…·V[n, g, d, o…]`` → ``conv*_weight`` (kernel legs kept)."""
    for m in _matches(ctx, ("a", "b", None)):
        xs, vs, g = m.a_roles, m.b_roles, m.geometry
        batch, groups, channels = xs.summed, xs.shared, xs.own
        xr = ctx.arrange(m.a, [batch, groups + channels + xs.ones] + [[s] for s in m.legs(0)])
        xr, padding = _pad_input(ctx, xr, g)
        vr = ctx.arrange(m.b, [batch, groups + vs.own + vs.ones] + [[o] for o in m.legs(1)])
        weight = (ctx.size(groups + vs.own), ctx.size(channels), *g.kernels)
        y = ctx.ops.add(
            "conv_weight", xr, vr, dims=len(m.pats), weight=weight, stride=g.strides, padding=padding,
            dilation=g.dilations, groups=ctx.size(groups),
        )
        return _result(ctx, m, y, [groups + vs.own, channels], m.legs(2))
    return None


def _conv_transpose(ctx: _Context) -> list[Operand] | None:
    """``V[b, g, d, o…]·Π[i, o, k]…·W[g, d, c, k…]`` → ``F.conv_transposeNd`` (in-legs kept)."""
    for m in _matches(ctx, (None, "a", "b")):
        vs, ws, g = m.a_roles, m.b_roles, m.geometry
        batch, groups, channels = vs.own, vs.shared, vs.summed
        vr = ctx.arrange(m.a, [batch, groups + channels + vs.ones] + [[o] for o in m.legs(1)])
        wr = ctx.arrange(m.b, [groups + channels, ws.own + ws.ones] + [[k] for k in m.legs(2)])
        full = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(g.outs, g.strides, g.dilations, g.kernels)]
        extra = tuple(i - (f - left - right) for i, f, (left, right) in zip(g.ins, full, g.pads))
        direct = g.symmetric and all(0 <= e < max(s, d) for e, s, d in zip(extra, g.strides, g.dilations))
        n = len(m.pats)
        y = ctx.ops.add(
            "conv_transpose", vr, wr, dims=n, stride=g.strides,
            padding=tuple(left for left, _ in g.pads) if direct else (0,) * n,
            output_padding=extra if direct else (0,) * n, groups=ctx.size(groups), dilation=g.dilations,
        )
        if not direct:
            # full-size result; the output is full[left : left + I], zero beyond its end
            grow = [(0, max(0, left + i - f)) for (left, _), i, f in zip(g.pads, g.ins, full)]
            y = ctx.pad(y, grow)
            y = ctx.ops.add("index", y, index=((), ()) + tuple((left, left + i, 1) for (left, _), i in zip(g.pads, g.ins)))
        return _result(ctx, m, y, [batch, groups + ws.own], m.legs(0))
    return None


def _result(ctx: _Context, m: _Match, var: str, groups: list[list[str]], spatial: list[str]) -> list[Operand]:
    """Replace the match by the op's result, ``[*groups, *spatial]`` split into its legs."""
    var = ctx.unflatten(var, groups + [[s] for s in spatial])
    labels = tuple(label for group in groups for label in group) + tuple(spatial)
    return ctx.replace(m.group, Operand(labels, var=var))


def _window_view(ctx: _Context) -> list[Operand] | None:
    """``X[…, i, …]·Π[i, o, k]`` → ``X`` padded, ``unfold``-ed to ``[…, o, k, …]`` (a view).

    All Π hanging off one operand are done together: one ``F.pad`` for every axis, then a
    window view per axis (highest axis first, so lower axis positions stay valid).
    """
    for x in ctx.operands:
        if x.var is None or len(set(x.labels)) != len(x.labels):
            continue
        pats = _pick(
            [
                p
                for p in _patterns(ctx)
                if p.labels[0] in x.labels
                and p.labels[1] not in x.labels
                and p.labels[2] not in x.labels
                and ctx.only_in(p.labels[0], x, p)
            ]
        )
        if not pats:
            continue
        labels = list(x.labels)
        if all(p.pattern.tiles for p in pats):
            # windows that tile the axis exactly: one reshape splits each i into (o, k)
            for p in pats:
                axis = labels.index(p.labels[0])
                labels[axis : axis + 1] = [p.labels[1], p.labels[2]]
            var = ctx.ops.add("reshape", x.var, shape=tuple(ctx.sizes[l] for l in labels))
            return ctx.replace([x, *pats], Operand(tuple(labels), var=var, window=True))
        windows = []
        pads = [(0, 0)] * len(x.labels)
        for p in pats:
            use = p.pattern
            left, _ = use.spec.pads(use.kernel)
            span = (use.kernel - 1) * use.spec.dilation + 1
            right = max(0, (use.size_out - 1) * use.spec.stride + span - use.size_in - left)
            axis = x.labels.index(p.labels[0])
            pads[axis] = (left, right)
            windows.append((axis, span, use, use.size_in + left + right, p))
        var = ctx.pad(x.var, pads)
        base = WindowBase(var, x.labels, tuple(
            Window(axis, p.labels[1], p.labels[2], use.spec.stride, use.spec.dilation, use.kernel, use.size_out)
            for axis, _, use, _, p in sorted(windows, key=lambda w: w[0])
        ))
        for axis, span, use, padded, p in sorted(windows, key=lambda w: -w[0]):
            var = ctx.ops.add("unfold", var, axis=axis, size=span, step=use.spec.stride)
            if (padded - span) // use.spec.stride + 1 != use.size_out:
                var = ctx.ops.add("narrow", var, axis=axis, start=0, length=use.size_out)
            if use.spec.dilation > 1:
                var = ctx.ops.add("step", var, step=use.spec.dilation)
            var = ctx.ops.add("movedim", var, source=-1, destination=axis + 1)
            labels[axis : axis + 1] = [p.labels[1], p.labels[2]]
        return ctx.replace([x, *pats], Operand(tuple(labels), var=var, window=True, base=base))
    return None


def _gathered(ctx: _Context, limit: int) -> Iterator[tuple[Operand, list[Operand]]]:
    """Operands ``Z`` with the Π (up to ``limit``) whose out- and kernel legs only ``Z``
    carries and whose in-leg ``Z`` does not: windows to sum back onto their positions."""
    for z in ctx.operands:
        if not z.plain:
            continue
        pats = _pick(
            [
                p
                for p in _patterns(ctx)
                if p.labels[0] not in z.labels and ctx.only_in(p.labels[1], z, p) and ctx.only_in(p.labels[2], z, p)
            ]
        )[:limit]
        if pats:
            yield z, pats


def _merge_view(ctx: _Context) -> list[Operand] | None:
    """``Z[…, o, …, k, …]·Π[i, o, k]`` for windows that tile the axis (``I = O·K``, stride
    ``K``) → ``Z`` permuted so that each ``(o, k)`` pair is adjacent, then one reshape
    (pixel shuffle, the inverse of patchify)."""
    for z, pats in _gathered(ctx, 3):
        tiling = [p for p in pats if p.pattern.tiles]
        if not tiling:
            continue
        order: list[str] = []
        labels: list[str] = []
        pairs = {p.labels[1]: p for p in tiling}
        kernels = {p.labels[2] for p in tiling}
        for label in z.labels:
            if label in pairs:
                order += [label, pairs[label].labels[2]]
                labels.append(pairs[label].labels[0])
            elif label not in kernels:
                order.append(label)
                labels.append(label)
        var = z.var
        if tuple(order) != z.labels:
            var = ctx.ops.add("permute", var, dims=tuple(z.labels.index(l) for l in order))
        var = ctx.ops.add("reshape", var, shape=tuple(ctx.sizes[l] for l in labels))
        return ctx.replace([z, *tiling], Operand(tuple(labels), var=var))
    return None


def _fold(ctx: _Context) -> list[Operand] | None:
    """``Z[…, o, k, …]·Π[i, o, k]`` (one or two Π) → ``F.fold`` (col2im), or one matrix
    product per Π with its dense ``[in, (out kernel)]`` matrix, whichever the cost model
    prices lower (col2im adds entry by entry; the products need one copy of ``Z``)."""
    for z, pats in _gathered(ctx, 2):
        outs, kernels, ins = [p.labels[1] for p in pats], [p.labels[2] for p in pats], [p.labels[0] for p in pats]
        rest = [label for label in z.labels if label not in outs and label not in kernels]
        best = None
        for build in (_fold_col2im, _fold_matmuls):
            trial = _Context(ctx.operands, ctx.keep, ctx.sizes, ctx.ops.child(z.var))
            var = build(trial, z, pats, rest)
            cost = trial.ops.cost(var)
            if best is None or cost < best[0]:
                best = (cost, trial.ops, var)
        assert best is not None
        var = ctx.unflatten(ctx.ops.merge(best[1], best[2]), [rest] + [[i] for i in ins])
        return ctx.replace([z, *pats], Operand(tuple(rest + ins), var=var))
    return None


def _fold_col2im(ctx: _Context, z: Operand, pats: list[Operand], rest: list[str]) -> str:
    """``F.fold`` of ``Z`` as ``[1, (rest kernels), (outs)]``: every window summed back onto
    the input positions it covers, then cropped to the padding; ``[(rest), ins…]``."""
    g = Geometry.of(pats)
    outs, kernels = [p.labels[1] for p in pats], [p.labels[2] for p in pats]
    var = ctx.arrange(z, [[], rest + kernels, outs])
    full = tuple((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(g.outs, g.strides, g.dilations, g.kernels))
    two = len(pats) == 2
    var = ctx.ops.add(
        "fold", var, output_size=full if two else full + (1,), kernel_size=g.kernels if two else g.kernels + (1,),
        dilation=g.dilations if two else g.dilations + (1,), stride=g.strides if two else g.strides + (1,),
    )
    if not two:
        var = ctx.ops.add("index", var, index=((), (), (), 0))
    # the result covers [0, full); the input axis is [left, left + I) of it, zero beyond
    grow = [(0, max(0, left + i - f)) for (left, _), i, f in zip(g.pads, g.ins, full)]
    var = ctx.pad(var, grow)
    var = ctx.ops.add("index", var, index=((), ()) + tuple((left, left + i, 1) for (left, _), i in zip(g.pads, g.ins)))
    return ctx.ops.add("reshape", var, shape=(ctx.size(rest),) + g.ins)


def _fold_matmuls(ctx: _Context, z: Operand, pats: list[Operand], rest: list[str]) -> str:
    """``Z`` as ``[(rest), (o1 k1), (o2 k2)]`` (each pair in ``Z``'s order, so the copy
    keeps runs of its innermost axis), times the first Π's ``[in, (o k)]`` matrix from the
    left and the second's from the right; ``[(rest), ins…]``."""
    blocks = [sorted(p.labels[1:], key=z.labels.index) for p in pats]
    var = ctx.arrange(z, [rest] + blocks)

    def matrix(p: Operand, block: list[str]) -> str:
        dims = (0,) + tuple(p.labels.index(label) for label in block)
        size = ctx.size(block)
        return ctx.ops.constant(
            lambda: p.value.permute(dims).reshape(-1, size), shape=(ctx.sizes[p.labels[0]], size),
            key=("fold matrix", p.key or id(p), dims),
        )

    first = matrix(pats[0], blocks[0])
    if len(pats) == 1:
        return ctx.ops.add("matmul", var, ctx.ops.add("permute", first, dims=(1, 0)))
    var = ctx.ops.add("matmul", first, var)  # [(rest), i1, (o2 k2)]
    return ctx.ops.add("matmul", var, ctx.ops.add("permute", matrix(pats[1], blocks[1]), dims=(1, 0)))


def _slice_view(ctx: _Context) -> list[Operand] | None:
    """``X[…, i, …]·S[i, o]`` for a slice ``i = start + step·o`` → ``X[…, a:b:step, …]``.

    Zero padding (one ``F.pad``) covers positions before the start or past the end.
    """
    for x in ctx.operands:
        if x.var is None or len(set(x.labels)) != len(x.labels):
            continue
        for s in ctx.operands:
            if s.slicing is None or len(set(s.labels)) != 2:
                continue
            i, o = s.labels
            if i not in x.labels or o in x.labels or not ctx.only_in(i, x, s):
                continue
            start, step = s.slicing
            size_i, size_o = ctx.sizes[i], ctx.sizes[o]
            left = max(0, -start)
            right = max(0, start + step * (size_o - 1) + 1 - size_i)
            axis = x.labels.index(i)
            var = ctx.pad(x.var, [(0, 0)] * axis + [(left, right)] + [(0, 0)] * (len(x.labels) - 1 - axis))
            begin = start + left
            index = ((),) * axis + ((begin, begin + step * (size_o - 1) + 1, step),)
            var = ctx.ops.add("index", var, index=index)
            labels = x.labels[:axis] + (o,) + x.labels[axis + 1 :]
            return ctx.replace([x, s], Operand(labels, var=var, window=x.window))
    return None


def _axis_matrix(ctx: _Context) -> list[Operand] | None:
    """``X[…, i]·M[i, k]`` for a constant matrix (a Π folded over its out-leg) → ``X @ M``.

    The innermost such axis goes first, so the matrix product reads ``X`` in place; each
    product shrinks ``X`` (``k ≤ i``), so the later ones move less memory.
    """
    best = None
    for x in ctx.operands:
        if not x.plain:
            continue
        for m in ctx.operands:
            if not m.constant or len(m.labels) != 2 or len(set(m.labels)) != 2:
                continue
            shared = [label for label in m.labels if label in x.labels]
            if len(shared) != 1 or not ctx.only_in(shared[0], x, m):
                continue
            (i,) = shared
            (k,) = [label for label in m.labels if label != i]
            if ctx.sizes[k] > ctx.sizes[i]:
                continue
            axis = x.labels.index(i)
            if best is None or axis > best[2]:
                best = (x, m, axis, i, k)
    if best is None:
        return None
    x, m, axis, i, k = best
    def matrix() -> torch.Tensor:
        return m.value if m.labels == (i, k) else m.value.t().contiguous()

    var = x.var if axis == len(x.labels) - 1 else ctx.ops.add("movedim", x.var, source=axis, destination=-1)
    shape = (ctx.sizes[i], ctx.sizes[k])
    var = ctx.ops.add("matmul", var, ctx.ops.constant(matrix, shape=shape, key=("matrix", m.key or id(m), m.labels == (i, k))))
    labels = x.labels[:axis] + x.labels[axis + 1 :] + (k,)
    return ctx.replace([x, m], Operand(labels, var=var))


def _select(ctx: _Context) -> list[Operand] | None:
    """``J[s…, t…]·X[…, t…, …]`` for an index ``J`` → ``X`` indexed with ``J``'s integers
    (one component per target leg): only the selected entries are read, never a one-hot."""
    for j in ctx.operands:
        if not j.select:
            continue
        source, target = j.labels[: len(j.labels) - j.select], j.labels[len(j.labels) - j.select :]
        if len(set(j.labels)) != len(j.labels):
            continue
        for x in ctx.operands:
            if x is j or x.var is None or x.select or len(set(x.labels)) != len(x.labels):
                continue
            if any(label in x.labels for label in source) or not all(ctx.only_in(t, j, x) for t in target):
                continue
            if x.base is not None:
                gathered = _gather_windows(ctx, j, x, source, target)
                if gathered is not None:
                    return gathered
            first = len(x.labels) - len(target)
            if x.labels[first:] == target and not x.window:  # trailing, in the index's order

                def select(ops: OpList, front: list[str], back: list[str]) -> str:
                    var = x.var
                    if back:
                        dims = [x.labels.index(l) for l in front] + list(range(first, len(x.labels))) + [x.labels.index(l) for l in back]
                        var = ops.add("contiguous", ops.add("permute", var, dims=tuple(dims)))
                    return ops.add("select_flat", var, j.var, first=len(front), trail=len(back))

                var, front, back = _cheapest_layout(ctx, j, x, list(x.labels[:first]), select, (x.var, j.var))
                labels = tuple(front) + source + tuple(back)
                var = ctx.ops.add("reshape", var, shape=tuple(ctx.sizes[label] for label in labels))
                return ctx.replace([j, x], Operand(labels, var=var))
            axes = sorted(x.labels.index(t) for t in target)
            sizes = [ctx.sizes[t] for t in target]
            strides = [math.prod(sizes[m + 1 :]) for m in range(len(target))]
            order = [target.index(x.labels[a]) for a in axes]  # which component each indexed axis takes
            var = ctx.ops.add(
                "take", x.var, j.var, axes=tuple(axes), strides=tuple(strides[m] for m in order),
                sizes=tuple(sizes[m] for m in order),
            )
            rest = [label for label in x.labels if label not in target]
            if axes == list(range(axes[0], axes[0] + len(axes))):  # adjacent: the result sits there
                labels = x.labels[: axes[0]] + source + tuple(l for l in x.labels[axes[-1] + 1 :])
            else:  # separated: torch puts the indexed dimensions first
                labels = source + tuple(rest)
            return ctx.replace([j, x], Operand(tuple(labels), var=var))
    return None


def _gather_windows(ctx: _Context, j: Operand, x: Operand, source: tuple[str, ...], target: tuple[str, ...]) -> list[Operand] | None:
    """Selected windows read straight from the padded input: one flat ``index_select`` of
    the window entries (start offset per sample plus a constant kernel offset), where the
    windowed axes are the input's last ones and the index selects every window leg.

    The input's other legs are laid out by :func:`_cheapest_layout`.
    """
    base = x.base
    assert base is not None
    shape = ctx.ops.shape(base.var)
    first = len(shape) - len(base.windows)
    if sorted(w.out for w in base.windows) != sorted(target) or [w.axis for w in base.windows] != list(range(first, len(shape))):
        return None
    if any(label in base.labels[:first] for label in source):
        return None
    sizes = [ctx.sizes[t] for t in target]
    strides = [math.prod(sizes[m + 1 :]) for m in range(len(target))]  # of the flat index over target
    order = [target.index(w.out) for w in base.windows]
    padding = ctx.ops.producer(base.var)
    if padding is not None and (padding.prim != "pad" or len(padding.param("pads")) > 2 * len(base.windows)):
        padding = None  # not the windows' own padding

    def gather(ops: OpList, front: list[str], back: list[str]) -> str:
        var = base.var
        if padding is not None and not back:  # priced as the rows layout's padding is (merged with the one there)
            var = ops.add("pad", padding.inputs[0], pads=padding.param("pads"))
        if back:
            spatial = list(range(first, len(shape)))
            dims = tuple([base.labels.index(l) for l in front] + spatial + [base.labels.index(l) for l in back])
            if padding is None:
                var = ops.add("contiguous", ops.add("permute", var, dims=dims))
            else:  # padding the permuted input writes the copy (F.pad's result is contiguous)
                var = ops.add("permute", padding.inputs[0], dims=dims)
                var = ops.add("pad", var, pads=(0, 0) * len(back) + tuple(padding.param("pads")))
        return _gather_flat(ops, var, j, base.windows, len(front), strides, sizes, order)

    names = (base.var, j.var) + (padding.inputs if padding is not None else ())
    var, front, back = _cheapest_layout(ctx, j, x, list(base.labels[:first]), gather, names)
    kernels = [w.kernel for w in base.windows]
    labels = tuple(front) + source + tuple(kernels) + tuple(back)
    var = ctx.ops.add("reshape", var, shape=tuple(ctx.sizes[label] for label in labels))
    return ctx.replace([j, x], Operand(labels, var=var))


def _cheapest_layout(
    ctx: _Context, j: Operand, x: Operand, legs: list[str], build: Callable[[OpList, list[str], list[str]], str],
    names: tuple[str, ...],
) -> tuple[str, list[str], list[str]]:
    """An indexing of ``x`` by ``j`` built by ``build(ops, front, back)`` for the cheaper
    layout of ``x``'s other legs ``legs``: all in front of the indexed axes (each index
    copies one entry), or, where the cost model finds it cheaper, the legs no other operand
    has (channels) behind them in one copy of ``x``, so that each index copies a
    contiguous row of them; legs contracted or batched with other operands stay in front,
    beside the samples they are contracted along with. Returns the result and the layout."""
    others = [op for op in ctx.operands if op is not j and op is not x]
    lead = [l for l in legs if any(l in op.labels for op in others)]
    trail = [l for l in legs if l not in lead]
    if not trail:
        return build(ctx.ops, legs, []), legs, []
    best = None
    for front, back in ((legs, []), (lead, trail)):
        ops = ctx.ops.child(*names)
        var = build(ops, front, back)
        cost = ops.cost(var)
        if best is None or cost < best[0]:
            best = (cost, ops, var, front, back)
    assert best is not None
    _, ops, var, front, back = best
    return ctx.ops.merge(ops, var), front, back


def _gather_flat(
    ops: OpList, var: str, j: Operand, windows: Sequence[Window], first: int, strides: Sequence[int], sizes: Sequence[int],
    order: Sequence[int],
) -> str:
    """The ``gather_windows`` op on ``var``, whose axes ``first`` on are the windowed ones
    (in the order of ``windows``), then any rows."""
    shape = ops.shape(var)
    flat = [math.prod(shape[first + n + 1 : first + len(windows)]) for n in range(len(windows))]  # element strides
    offsets = [0]  # host integers: no torch op runs on the call's tensors (or under a tracing mode) to find them
    for w, step in zip(windows, flat):
        offsets = [o + k * w.dilation * step for o in offsets for k in range(w.size_kernel)]
    values = tuple(offsets)
    offsets_var = ops.constant(lambda: torch.tensor(values, dtype=torch.long), shape=(len(values),), key=("offsets", values))
    return ops.add(
        "gather_windows", var, j.var, offsets_var, first=first,
        strides=tuple(strides[m] for m in order), sizes=tuple(sizes[m] for m in order),
        steps=tuple(w.stride * step for w, step in zip(windows, flat)),
    )


# -- Gram steps ----------------------------------------------------------------------------


def gram(
    a: Operand,
    b: Operand,
    labels: tuple[str, ...],
    sizes: Mapping[str, int],
    ops: OpList,
    zero: str,
    alpha: float = 1.0,
) -> Operand | None:
    """``alpha · U·Uᵀ``: both operands the same tensor, contracted over the same axes.

    ``zero`` names a 0-d constant of the computation's dtype (``baddbmm``'s ignored input).

    Positions where both carry the same label are batch (kept) or contracted legs; the other
    positions are free legs, kept on both sides. One copy of ``U`` is arranged as
    ``[batch, free, contracted]`` (or ``[batch, contracted, free]`` when that is a view)
    and multiplied with its transpose in one ``baddbmm`` that also scales by ``alpha``; a
    large ``U`` is processed in chunks of its first contracted axis, so no full copy of it
    is ever made.
    """
    if a.var is None or a.var != b.var or len(a.labels) != len(b.labels):
        return None
    if len(set(a.labels)) != len(a.labels) or len(set(b.labels)) != len(b.labels):
        return None
    batch, free, summed = [], [], []
    for q, (la, lb) in enumerate(zip(a.labels, b.labels)):
        if la == lb:
            (batch if la in labels else summed).append(q)
        elif la in labels and lb in labels and la not in b.labels and lb not in a.labels:
            free.append(q)
        else:
            return None
    if not summed or not free:
        return None
    dims = [sizes[label] for label in a.labels]
    nb = math.prod(dims[q] for q in batch)
    nf = math.prod(dims[q] for q in free)
    transposed = batch + summed + free == list(range(len(dims)))  # [batch, contracted, free] is a view
    order = tuple(batch + (summed + free if transposed else free + summed))
    permute = order if order != tuple(range(len(order))) else ()
    shape = (nb, -1, nf) if transposed else (nb, nf, -1)
    first = summed[0]
    chunks = min(dims[first], GRAM_CHUNKS) if math.prod(dims) > GRAM_CHUNK_ELEMENTS and not transposed else 1
    if chunks <= 1:
        u = ops.add("permute", a.var, dims=permute) if permute else a.var
        u = ops.add("reshape", u, shape=shape)
        g = ops.add("gram", u, zero, transposed=transposed, alpha=float(alpha))
    else:
        step = -(-dims[first] // chunks)
        g = ops.add(
            "gram_chunked", a.var, zero, axis=first, total=dims[first], step=step, dims=permute, shape=shape,
            transposed=transposed, alpha=float(alpha),
        )
    result = tuple(a.labels[q] for q in batch) + tuple(a.labels[q] for q in free) + tuple(b.labels[q] for q in free)
    if [sizes[l] for l in result] != [nb, nf, nf]:
        g = ops.add("reshape", g, shape=tuple(sizes[l] for l in result))
    if result != labels:
        g = ops.add("permute", g, dims=tuple(result.index(l) for l in labels))
    return Operand(labels, var=g)
