"""Π-aware lowering: turn pattern sub-networks into what they are.

Before the generic pairwise contraction, a term's operands are searched for sub-networks
that are convolutions or their adjoints, and each is replaced by one torch call:

- ``X·Π…·W`` (Π's in-legs only on X, kernel legs only on W) → ``F.conv{1,2,3}d``;
- ``X·Π…·V`` (in-legs on X, out-legs on V, kernel legs kept) → ``torch.nn.grad.conv*_weight``;
- ``V·Π…·W`` (out-legs on V, kernel legs on W, in-legs kept) → ``F.conv_transpose{1,2,3}d``;
- ``X·Π`` (in-leg only on X) → a zero-copy window view (pad + ``unfold``, dilation by slicing).

Legs shared by both operands and kept (channel groups, or a batch that is not summed) are
folded into the groups of the convolution; legs of one operand that are kept are folded
into the batch. A Gram-type step ``U·Uᵀ`` contracts one copy of ``U`` (in chunks over a summed
leg when ``U`` is large), instead of two. Constant Π that nothing matches are materialized
densely by the planner, where an out-leg summed away is folded into a ``[in, kernel]`` matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from ..ir import PatternSpec
from .emit import Emitter

__all__ = ["Operand", "lower", "gram", "is_dense", "tuple_code", "GRAM_CHUNK_ELEMENTS"]

#: A Gram step over an operand larger than this (elements) is computed in chunks.
GRAM_CHUNK_ELEMENTS = 1 << 22
GRAM_CHUNKS = 8


@dataclass
class Operand:
    """A tensor in flight: code (a variable name) or a constant value, and its labels.

    ``pattern`` is set for a Π operand: ``(spec, I, O, K)``; ``slicing`` for a slice
    tensor ``S[i, o]``: ``(start, step)``; ``window`` for a window view
    (an unfolded input: a convolution reading it would copy it whole, so none does).
    """

    labels: tuple[str, ...]
    code: str | None = None
    value: torch.Tensor | None = None
    pattern: tuple[PatternSpec, int, int, int] | None = None
    slicing: tuple[int, int] | None = None  # (start, step) of a slice tensor
    window: bool = False

    @property
    def constant(self) -> bool:
        return self.value is not None

    @property
    def plain(self) -> bool:
        """A runtime tensor without repeated legs that is not a window view."""
        return self.code is not None and not self.window and len(set(self.labels)) == len(self.labels)


def is_dense(pattern: tuple[PatternSpec, int, int, int]) -> bool:
    """Π whose windows tile the input: kernel = stride, dilation 1, no padding."""
    spec, _, _, kernel = pattern
    return spec.stride == kernel and spec.dilation == 1 and spec.pads(kernel) == (0, 0)


def tuple_code(values: Sequence[int]) -> str:
    return "(" + "".join(f"{int(v)}, " for v in values) + ")"


@dataclass
class _Context:
    operands: list[Operand]
    keep: tuple[str, ...]
    sizes: Mapping[str, int]
    emit: Emitter

    def elsewhere(self, label: str, group: Sequence[Operand]) -> bool:
        """Whether ``label`` is kept or used by an operand outside ``group``."""
        return label in self.keep or any(label in op.labels for op in self.operands if all(op is not g for g in group))

    def only_in(self, label: str, *group: Operand) -> bool:
        return not self.elsewhere(label, group) and all(op.labels.count(label) == 1 for op in group)

    def size(self, labels: Sequence[str]) -> int:
        return math.prod(self.sizes[label] for label in labels)

    def arrange(self, op: Operand, groups: Sequence[Sequence[str]]) -> str:
        """``op`` permuted to the concatenated ``groups`` and reshaped to one axis per group
        (a group that is the last axes kept as they are)."""
        order = [label for group in groups for label in group]
        code = op.code
        if tuple(order) != op.labels:
            code = self.emit.assign(f"{code}.permute({tuple_code(op.labels.index(l) for l in order)})")
        shape = [self.size(group) for group in groups]
        if shape != [self.sizes[l] for l in order]:
            code = self.emit.assign(f"{code}.reshape({tuple_code(shape)})")
        return code

    def unflatten(self, code: str, groups: Sequence[Sequence[str]]) -> str:
        """Split a result with one axis per group into one axis per label (if not already)."""
        if all(len(group) == 1 for group in groups):
            return code
        return self.emit.assign(f"{code}.reshape({tuple_code(self.sizes[l] for group in groups for l in group)})")

    def replace(self, group: Sequence[Operand], result: Operand) -> list[Operand]:
        return [op for op in self.operands if all(op is not g for g in group)] + [result]


def lower(
    operands: list[Operand], keep: tuple[str, ...], sizes: Mapping[str, int], emit: Emitter, dtype: torch.dtype
) -> list[Operand]:
    """Apply the Π lowerings until none matches; return the new operand list."""
    if not dtype.is_floating_point:
        return operands
    matchers: list[Callable[[_Context], list[Operand] | None]] = [
        _conv,
        _conv_weight,
        _conv_transpose,
        _window_view,
        _slice_view,
        _axis_matrix,
    ]
    changed = True
    while changed:
        changed = False
        for matcher in matchers:
            result = matcher(_Context(operands, keep, sizes, emit))
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


def _pattern_pairs(ctx: _Context, roles: tuple[str | None, str | None, str | None]):
    """Pairs ``(a, b)`` of runtime operands with the Π (up to three) whose legs sit as ``roles`` says.

    ``roles`` gives, for Π's in-, out- and kernel leg, the operand that alone shares it
    (``"a"`` or ``"b"``) or None for a leg on neither (kept, or used further on).
    """
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

            pats = _pick([p for p in _patterns(ctx) if fits(p)])
            if pats:
                yield a, b, pats


def _split(ctx: _Context, op: Operand, other: Operand, skip: set[str], group: list[Operand]):
    """Classify ``op``'s legs not in ``skip``: shared-summed, shared-kept, own-kept, own size-1.

    Size-1 legs that nothing else needs ride along in a reshape. Returns None when another
    leg is neither shared nor needed elsewhere (it would have been summed before lowering).
    """
    summed, shared, own, ones = [], [], [], []
    for label in op.labels:
        if label in skip:
            continue
        in_other = label in other.labels
        out = ctx.elsewhere(label, group)
        if in_other and not out:
            summed.append(label)
        elif in_other:
            shared.append(label)
        elif out:
            own.append(label)
        elif ctx.sizes[label] == 1:
            ones.append(label)
        else:
            return None
    return summed, shared, own, ones


def _geometry(pats: Sequence[Operand]):
    """Per-dimension stride, (left, right) pads, dilation and sizes of Π operands."""
    strides, pads, dilations, ins, outs, kernels = [], [], [], [], [], []
    for p in pats:
        spec, i, o, k = p.pattern
        strides.append(spec.stride)
        pads.append(spec.pads(k))
        dilations.append(spec.dilation)
        ins.append(i)
        outs.append(o)
        kernels.append(k)
    return strides, pads, dilations, ins, outs, kernels


def _pad_input(ctx: _Context, code: str, pads: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """Symmetric padding goes to the conv call; asymmetric padding is applied with F.pad."""
    if all(left == right for left, right in pads):
        return code, [left for left, _ in pads]
    flat = [p for left, right in reversed(pads) for p in (left, right)]
    return ctx.emit.assign(f"F.pad({code}, {tuple_code(flat)})"), [0] * len(pads)


# -- the lowerings -------------------------------------------------------------------------


def _conv(ctx: _Context) -> list[Operand] | None:
    """``X[b, g, c, i…]·Π[i, o, k]…·W[g, d, c, k…]`` → ``F.convNd`` with groups ``g``."""
    for x, w, pats in _pattern_pairs(ctx, ("a", None, "b")):
        group = [x, w, *pats]
        spatial = [p.labels[0] for p in pats]
        kernel = [p.labels[2] for p in pats]
        xs = _split(ctx, x, w, set(spatial), group)
        ws = _split(ctx, w, x, set(kernel), group)
        if xs is None or ws is None:
            continue
        channels, groups, batch, x_ones = xs
        _, _, out_channels, w_ones = ws
        strides, pads, dilations, *_ = _geometry(pats)
        xr = ctx.arrange(x, [batch, groups + channels + x_ones] + [[s] for s in spatial])
        xr, padding = _pad_input(ctx, xr, pads)
        wr = ctx.arrange(w, [groups + out_channels + w_ones, channels] + [[k] for k in kernel])
        n = len(pats)
        y = ctx.emit.assign(
            f"F.conv{n}d({xr}, {wr}, None, {tuple_code(strides)}, {tuple_code(padding)}, "
            f"{tuple_code(dilations)}, {ctx.size(groups)})"
        )
        labels = tuple(batch + groups + out_channels + [p.labels[1] for p in pats])
        y = ctx.unflatten(y, [batch, groups + out_channels] + [[p.labels[1]] for p in pats])
        return ctx.replace(group, Operand(labels, code=y))
    return None


def _conv_weight(ctx: _Context) -> list[Operand] | None:
    """``X[n, g, c, i…]·Π[i, o, k]…·V[n, g, d, o…]`` → ``conv*_weight`` (kernel legs kept)."""
    for x, v, pats in _pattern_pairs(ctx, ("a", "b", None)):
        group = [x, v, *pats]
        spatial = [p.labels[0] for p in pats]
        outs_l = [p.labels[1] for p in pats]
        xs = _split(ctx, x, v, set(spatial), group)
        vs = _split(ctx, v, x, set(outs_l), group)
        if xs is None or vs is None:
            continue
        batch, groups, channels, x_ones = xs
        _, _, out_channels, v_ones = vs
        strides, pads, dilations, _, _, kernels = _geometry(pats)
        xr = ctx.arrange(x, [batch, groups + channels + x_ones] + [[s] for s in spatial])
        xr, padding = _pad_input(ctx, xr, pads)
        vr = ctx.arrange(v, [batch, groups + out_channels + v_ones] + [[o] for o in outs_l])
        n = len(pats)
        weight = [ctx.size(groups + out_channels), ctx.size(channels), *kernels]
        y = ctx.emit.assign(
            f"torch.nn.grad.conv{n}d_weight({xr}, {tuple_code(weight)}, {vr}, {tuple_code(strides)}, "
            f"{tuple_code(padding)}, {tuple_code(dilations)}, {ctx.size(groups)})"
        )
        labels = tuple(groups + out_channels + channels + [p.labels[2] for p in pats])
        y = ctx.unflatten(y, [groups + out_channels, channels] + [[p.labels[2]] for p in pats])
        return ctx.replace(group, Operand(labels, code=y))
    return None


def _conv_transpose(ctx: _Context) -> list[Operand] | None:
    """``V[b, g, d, o…]·Π[i, o, k]…·W[g, d, c, k…]`` → ``F.conv_transposeNd`` (in-legs kept)."""
    for v, w, pats in _pattern_pairs(ctx, (None, "a", "b")):
        group = [v, w, *pats]
        outs_l = [p.labels[1] for p in pats]
        kernel = [p.labels[2] for p in pats]
        vs = _split(ctx, v, w, set(outs_l), group)
        ws = _split(ctx, w, v, set(kernel), group)
        if vs is None or ws is None:
            continue
        channels, groups, batch, v_ones = vs
        _, _, in_channels, w_ones = ws
        strides, pads, dilations, ins, outs, kernels = _geometry(pats)
        vr = ctx.arrange(v, [batch, groups + channels + v_ones] + [[o] for o in outs_l])
        wr = ctx.arrange(w, [groups + channels, in_channels + w_ones] + [[k] for k in kernel])
        full = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(outs, strides, dilations, kernels)]
        extra = [i - (f - left - right) for i, f, (left, right) in zip(ins, full, pads)]
        n = len(pats)
        direct = all(
            left == right and 0 <= e < max(s, d) for (left, right), e, s, d in zip(pads, extra, strides, dilations)
        )
        padding = [left for left, _ in pads] if direct else [0] * n
        y = ctx.emit.assign(
            f"F.conv_transpose{n}d({vr}, {wr}, None, {tuple_code(strides)}, {tuple_code(padding)}, "
            f"{tuple_code(extra if direct else [0] * n)}, {ctx.size(groups)}, {tuple_code(dilations)})"
        )
        if not direct:
            # full-size result; the output is full[left : left + I], zero beyond its end
            grow = [max(0, left + i - f) for (left, _), i, f in zip(pads, ins, full)]
            if any(grow):
                flat = [p for g in reversed(grow) for p in (0, g)]
                y = ctx.emit.assign(f"F.pad({y}, {tuple_code(flat)})")
            index = ", ".join([":", ":"] + [f"{left}:{left + i}" for (left, _), i in zip(pads, ins)])
            y = ctx.emit.assign(f"{y}[{index}]")
        labels = tuple(batch + groups + in_channels + [p.labels[0] for p in pats])
        y = ctx.unflatten(y, [batch, groups + in_channels] + [[p.labels[0]] for p in pats])
        return ctx.replace(group, Operand(labels, code=y))
    return None


def _window_view(ctx: _Context) -> list[Operand] | None:
    """``X[…, i, …]·Π[i, o, k]`` → ``X`` padded, ``unfold``-ed to ``[…, o, k, …]`` (a view).

    All Π hanging off one operand are done together: one ``F.pad`` for every axis, then a
    window view per axis (highest axis first, so lower axis positions stay valid).
    """
    for x in ctx.operands:
        if x.code is None or len(set(x.labels)) != len(x.labels):
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
        windows = []
        pads = [(0, 0)] * len(x.labels)
        for p in pats:
            spec, size_i, size_o, size_k = p.pattern
            left, _ = spec.pads(size_k)
            span = (size_k - 1) * spec.dilation + 1
            right = max(0, (size_o - 1) * spec.stride + span - size_i - left)
            axis = x.labels.index(p.labels[0])
            pads[axis] = (left, right)
            windows.append((axis, span, spec, size_i + left + right, size_o, p))
        code = x.code
        if all(is_dense(p.pattern) and p.pattern[1] == p.pattern[2] * p.pattern[3] for p in pats):
            # windows that tile the axis exactly: one reshape splits each i into (o, k)
            labels = list(x.labels)
            for p in pats:
                axis = labels.index(p.labels[0])
                labels[axis : axis + 1] = [p.labels[1], p.labels[2]]
            code = ctx.emit.assign(f"{code}.reshape({tuple_code(ctx.sizes[l] for l in labels)})")
            return ctx.replace([x, *pats], Operand(tuple(labels), code=code, window=True))
        if any(left or right for left, right in pads):
            flat = [v for left, right in reversed(pads) for v in (left, right)]
            while flat[-2:] == [0, 0]:
                flat = flat[:-2]
            code = ctx.emit.assign(f"F.pad({code}, {tuple_code(flat)})")
        labels = list(x.labels)
        for axis, span, spec, padded, size_o, p in sorted(windows, key=lambda w: -w[0]):
            code = ctx.emit.assign(f"{code}.unfold({axis}, {span}, {spec.stride})")
            if (padded - span) // spec.stride + 1 != size_o:
                code = ctx.emit.assign(f"{code}.narrow({axis}, 0, {size_o})")
            if spec.dilation > 1:
                code = ctx.emit.assign(f"{code}[..., ::{spec.dilation}]")
            code = ctx.emit.assign(f"{code}.movedim(-1, {axis + 1})")
            labels[axis : axis + 1] = [p.labels[1], p.labels[2]]
        return ctx.replace([x, *pats], Operand(tuple(labels), code=code, window=True))
    return None


def _slice_view(ctx: _Context) -> list[Operand] | None:
    """``X[…, i, …]·S[i, o]`` for a slice ``i = start + step·o`` → ``X[…, a:b:step, …]``.

    Zero padding (one ``F.pad``) covers positions before the start or past the end.
    """
    for x in ctx.operands:
        if x.code is None or len(set(x.labels)) != len(x.labels):
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
            code = x.code
            if left or right:
                flat = [0, 0] * (len(x.labels) - 1 - axis) + [left, right]
                code = ctx.emit.assign(f"F.pad({code}, {tuple_code(flat)})")
            begin = start + left
            index = ", ".join([":"] * axis + [f"{begin}:{begin + step * (size_o - 1) + 1}:{step}"])
            code = ctx.emit.assign(f"{code}[{index}]")
            labels = x.labels[:axis] + (o,) + x.labels[axis + 1 :]
            return ctx.replace([x, s], Operand(labels, code=code, window=x.window))
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
    value = m.value if m.labels == (i, k) else m.value.t().contiguous()
    code = x.code if axis == len(x.labels) - 1 else ctx.emit.assign(f"{x.code}.movedim({axis}, -1)")
    code = ctx.emit.assign(f"{code} @ {ctx.emit.constant(value)}")
    labels = x.labels[:axis] + x.labels[axis + 1 :] + (k,)
    return ctx.replace([x, m], Operand(labels, code=code))


# -- Gram steps ----------------------------------------------------------------------------


def gram(
    a: Operand,
    b: Operand,
    labels: tuple[str, ...],
    sizes: Mapping[str, int],
    emit: Emitter,
    empty_like: torch.Tensor,
    alpha: float = 1.0,
) -> Operand | None:
    """``alpha · U·Uᵀ``: both operands the same tensor, contracted over the same axes.

    ``empty_like`` is a 0-d tensor of the computation's dtype and device.

    Positions where both carry the same label are batch (kept) or contracted legs; the other
    positions are free legs, kept on both sides. One copy of ``U`` is arranged as
    ``[batch, free, contracted]`` (or ``[batch, contracted, free]`` when that is a view)
    and multiplied with its transpose in one ``baddbmm`` that also scales by ``alpha``; a
    large ``U`` is processed in chunks of its first contracted axis, so no full copy of it
    is ever made.
    """
    if a.code is None or a.code != b.code or len(a.labels) != len(b.labels):
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
    order = batch + (summed + free if transposed else free + summed)
    permute = f".permute({tuple_code(order)})" if order != list(range(len(order))) else ""
    shape = f"{nb}, -1, {nf}" if transposed else f"{nb}, {nf}, -1"
    product = "{u}.transpose(1, 2), {u}" if transposed else "{u}, {u}.transpose(1, 2)"
    first = summed[0]
    empty = emit.constant(empty_like)  # baddbmm's ignored input (beta=0)
    chunks = min(dims[first], GRAM_CHUNKS) if math.prod(dims) > GRAM_CHUNK_ELEMENTS and not transposed else 1
    if chunks <= 1:
        u = emit.assign(f"{a.code}{permute}.reshape({shape})")
        g = emit.assign(f"torch.baddbmm({empty}, {product.format(u=u)}, beta=0, alpha={alpha!r})")
    else:
        step = -(-dims[first] // chunks)
        g, u = emit.fresh("g"), emit.fresh("u")
        emit.lines += [
            f"{g} = None",
            f"for j in range(0, {dims[first]}, {step}):",
            f"    {u} = {a.code}.narrow({first}, j, min({step}, {dims[first]} - j)){permute}.reshape({shape})",
            f"    if {g} is None:",
            f"        {g} = torch.baddbmm({empty}, {product.format(u=u)}, beta=0, alpha={alpha!r})",
            "    else:",
            f"        {g}.baddbmm_({product.format(u=u)}, alpha={alpha!r})",
        ]
    result = tuple(a.labels[q] for q in batch) + tuple(a.labels[q] for q in free) + tuple(b.labels[q] for q in free)
    if [sizes[l] for l in result] != [nb, nf, nf]:
        g = emit.assign(f"{g}.reshape({tuple_code(sizes[l] for l in result)})")
    if result != labels:
        g = emit.assign(f"{g}.permute({tuple_code(result.index(l) for l in labels)})")
    return Operand(labels, code=g)
