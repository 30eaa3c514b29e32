"""Contraction paths: the order in which a term's operands are contracted pairwise.

Strategies sit in a registry (as opt_einsum's ``paths``) and are chosen by operand count:
exhaustive search over subsets while that is cheap, then a greedy search driven by a heap.
Both are deterministic — ties go to the lower operand positions — so a network and its
shapes always give the same path, whatever the hash seed; both are bounded (the subset
search only runs up to :data:`OPTIMAL_LIMIT` operands, the greedy one weighs at most
:data:`PARTNERS` partners per operand and label, so a label shared by hundreds of
operands costs ``O(n · PARTNERS · log n)``, not ``O(n²)``).

A path is a list of ``(i, j)`` position pairs, opt_einsum style: each step removes
operands ``i < j`` from the current list and appends their contraction at the end.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable, Mapping, Sequence

__all__ = ["path", "optimal", "greedy", "STRATEGIES", "OPTIMAL_LIMIT", "PARTNERS"]

#: Largest operand count for the exhaustive search (3**n subset splits).
OPTIMAL_LIMIT = 7
#: Most partners the greedy search weighs for one operand through one label: the
#: smallest holders of that label (by size, then age).
PARTNERS = 16

Labels = frozenset


def _result(a: Labels, b: Labels, needed: frozenset) -> Labels:
    """Labels of the contraction of ``a`` and ``b``: those still needed elsewhere."""
    return frozenset((a | b) & needed)


def _size(labels: Labels, sizes: Mapping[str, int]) -> int:
    return math.prod(sizes[label] for label in labels)


def optimal(operands: Sequence[Labels], keep: frozenset, sizes: Mapping[str, int]) -> list[tuple[int, int]]:
    """The path of least total flops (product of the sizes of the labels a step touches),
    by dynamic programming over subsets of operands."""
    n = len(operands)
    counts: dict[str, int] = {}
    for labels in operands:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    full = (1 << n) - 1
    # labels of a subset's contraction: those the complement or the output still needs
    cache_labels: dict[int, Labels] = {}

    def labels_of(subset: int) -> Labels:
        if subset not in cache_labels:
            inside: dict[str, int] = {}
            for k in range(n):
                if subset >> k & 1:
                    for label in operands[k]:
                        inside[label] = inside.get(label, 0) + 1
            cache_labels[subset] = frozenset(l for l, c in inside.items() if c < counts[l] or l in keep)
        return cache_labels[subset]

    best: dict[int, tuple[float, tuple]] = {1 << k: (0.0, ()) for k in range(n)}
    for subset in sorted(range(1, full + 1), key=lambda s: (bin(s).count("1"), s)):
        if subset in best:
            continue
        result = labels_of(subset)
        choice: tuple[float, tuple] | None = None
        part = (subset - 1) & subset
        while part:
            other = subset ^ part
            if part < other:  # each split once
                cost = best[part][0] + best[other][0] + _size(labels_of(part) | labels_of(other) | result, sizes)
                if choice is None or cost < choice[0]:
                    choice = (cost, (part, other))
            part = (part - 1) & subset
        assert choice is not None
        best[subset] = choice
    return _linearize(best, full, n)


def _linearize(best: dict[int, tuple[float, tuple]], full: int, n: int) -> list[tuple[int, int]]:
    """Turn the subset tree into opt_einsum-style position pairs."""
    order: list[tuple[int, int]] = []

    def visit(subset: int) -> None:
        split = best[subset][1]
        if not split:
            return
        visit(split[0])
        visit(split[1])
        order.append(split)

    visit(full)
    current: list[int] = [1 << k for k in range(n)]
    steps = []
    for left, right in order:
        i, j = sorted((current.index(left), current.index(right)))
        steps.append((i, j))
        current = [s for k, s in enumerate(current) if k not in (i, j)] + [left | right]
    return steps


def greedy(operands: Sequence[Labels], keep: frozenset, sizes: Mapping[str, int]) -> list[tuple[int, int]]:
    """Repeatedly contract the pair that shrinks the network most (result size minus the
    sizes of the two operands), among pairs that share a label; then outer products,
    smallest first. Ties go to the pair created earliest."""
    alive: dict[int, Labels] = dict(enumerate(operands))
    size = {k: _size(labels, sizes) for k, labels in alive.items()}
    counts: dict[str, int] = {}
    holders: dict[str, set[int]] = {}
    for k, labels in alive.items():
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
            holders.setdefault(label, set()).add(k)
    heap: list[tuple[int, int, int]] = []
    queued: set[tuple[int, int]] = set()

    def result_of(a: int, b: int) -> Labels:
        x, y = alive[a], alive[b]
        return frozenset(l for l in x | y if l in keep or counts[l] > (l in x) + (l in y))

    def push(a: int, b: int) -> None:
        pair = (min(a, b), max(a, b))
        if pair not in queued:
            queued.add(pair)
            heapq.heappush(heap, (_size(result_of(*pair), sizes) - size[a] - size[b], *pair))

    def push_label(label: str) -> None:
        """Candidate pairs through ``label``: each holder with its next PARTNERS holders."""
        members = sorted(holders[label])
        for x in range(len(members)):
            for y in range(x + 1, min(len(members), x + 1 + PARTNERS)):
                push(members[x], members[y])

    for label in sorted(holders):
        push_label(label)
    ids = list(range(len(operands)))  # positions in opt_einsum's list, by operand id
    steps: list[tuple[int, int]] = []
    next_id = len(operands)
    while len(alive) > 1:
        if not heap:  # candidates spent: pairs through labels still shared, if any
            for label in sorted(label for label, members in holders.items() if len(members) > 1):
                push_label(label)
        if heap:
            _, a, b = heapq.heappop(heap)
            if a not in alive or b not in alive:
                continue
        else:  # no shared labels left: outer products of the two smallest
            a, b = sorted(sorted(alive, key=lambda k: (size[k], k))[:2])
        result = result_of(a, b)
        i, j = sorted((ids.index(a), ids.index(b)))
        steps.append((i, j))
        del ids[j], ids[i]
        ids.append(next_id)
        for label in alive[a] | alive[b]:
            counts[label] -= (label in alive[a]) + (label in alive[b])
            holders[label] -= {a, b}
        del alive[a], alive[b]
        alive[next_id], size[next_id] = result, _size(result, sizes)
        for label in result:
            counts[label] += 1
        for label in sorted(result):
            for other in heapq.nsmallest(PARTNERS, holders.get(label, ()), key=lambda k: (size[k], k)):
                push(other, next_id)
            holders.setdefault(label, set()).add(next_id)
        next_id += 1
    return steps


Strategy = Callable[[Sequence[Labels], frozenset, Mapping[str, int]], list[tuple[int, int]]]

#: name → strategy; :func:`path` picks by operand count.
STRATEGIES: dict[str, Strategy] = {"optimal": optimal, "greedy": greedy}


def path(operands: Sequence[Sequence[str]], keep: Sequence[str], sizes: Mapping[str, int]) -> list[tuple[int, int]]:
    """A contraction path for labelled operands (deterministic, bounded)."""
    sets = [frozenset(labels) for labels in operands]
    if len(sets) < 2:
        return []
    strategy = "optimal" if len(sets) <= OPTIMAL_LIMIT else "greedy"
    return STRATEGIES[strategy](sets, frozenset(keep), sizes)
