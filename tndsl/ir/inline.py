"""Inlining: a network's terms at a use site — the one inliner of builder and rewrites."""

from __future__ import annotations

from typing import Callable, Sequence

from .network import Network, Term
from .sizes import SizeTable

__all__ = ["inline"]


def inline(
    network: Network, labels: Sequence[str], fresh: Callable[[str], str], sizes: SizeTable | None = None
) -> tuple[tuple[Term, ...], dict[str, str]]:
    """``network``'s terms with its output legs renamed to ``labels`` and every other label
    fresh, and the renaming. With ``sizes``, the size-table entries of the network's labels
    are copied to their new names there.

    The caller checks that ``labels`` has one label per output leg.
    """
    legs = network.output_legs
    if len(labels) != len(legs):
        raise ValueError(f"{network.name} has {len(legs)} legs, {len(labels)} labels given")
    mapping = dict(zip(legs, labels))
    for inner in network.labels:
        if inner not in mapping:
            mapping[inner] = fresh(inner)
    if sizes is not None:
        for inner, size in network.sizes:
            if inner in mapping:
                sizes.add(mapping[inner], size)
    return tuple(term.renamed(mapping) for term in network.terms), mapping
