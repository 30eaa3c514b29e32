"""Diagrams: the SVG's structure (classes, labels, order), layout sanity, determinism, errors."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections import Counter

import graphviz
import pytest

from tndsl.ir import TnNotSupportedError
from tndsl.ir import Coeff, Network, Tensor, Term
from tndsl.ir import PatternSpec
from tndsl.tools.render import program_to_dot, render, render_program, to_dot

SVG = "{http://www.w3.org/2000/svg}"


def _input(name: str, *legs: str) -> Tensor:
    return Tensor("input", name, legs)


def _pattern(name: str, *legs: str) -> Tensor:
    return Tensor("pattern", name, legs)


def _delta(*legs: str) -> Tensor:
    return Tensor("delta", "delta", legs)


def _net(name: str, output: list, *terms: Term, patterns: tuple = ()) -> Network:
    groups = tuple((group,) if isinstance(group, str) else tuple(group) for group in output)
    return Network(name, groups, terms, patterns=patterns)


STRIDED = (("P", PatternSpec.create(stride=2, padding=1)),)

CHAIN = _net("chain", ["i", "l"], Term((_input("A", "i", "j"), _input("B", "j", "k"), _input("C", "k", "l"))))
TRACE = _net("trace", [], Term((_input("A", "i", "i"),)))
HYPER = _net("hyper", ["a"], Term((_input("X", "a", "i"), _input("Y", "i", "b"), _input("Z", "i", "b"))))
UNFOLD = _net(
    "U",
    ["n", ["c", "k1", "k2"], ["o1", "o2"]],
    Term((_input("X", "n", "c", "i1", "i2"), _pattern("P", "i1", "o1", "k1"), _pattern("P", "i2", "o2", "k2"))),
    patterns=STRIDED,
)
KFAC = _net(
    "K",
    ["a", "b"],
    Term((_input("U", "n", "a"), _input("U", "n", "b")), Coeff(-2.0, (("n", -1),))),
    Term((_input("v", "a"),)),
    Term((_delta("a", "b"),), Coeff(0.5)),
)
CONV2D = _net(
    "Y",
    ["n", "c_out", "o1", "o2"],
    Term(
        (
            _input("X", "n", "c_in", "i1", "i2"),
            _pattern("P", "i1", "o1", "k1"),
            _pattern("P", "i2", "o2", "k2"),
            _input("W", "c_out", "c_in", "k1", "k2"),
        )
    ),
    Term((_input("bias", "c_out"),)),
    patterns=STRIDED,
)
GALLERY = [CHAIN, TRACE, HYPER, UNFOLD, KFAC, CONV2D]


def _groups(svg: str) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter(f"{SVG}g"))


def _texts(group: ET.Element) -> list[str]:
    return [(text.text or "").strip() for text in group.iter(f"{SVG}text")]


def _expected(network: Network) -> Counter:
    """Counts the notation promises, computed from the network independently of the renderer."""
    counts: Counter = Counter()
    output = set(network.output_legs)
    for term in network.terms:
        for tensor in term.tensors:
            counts[{"input": "tensor"}.get(tensor.kind, tensor.kind)] += 1
        degree = Counter(leg for tensor in term.tensors for leg in tensor.legs)
        degree.update(output)
        for d in degree.values():
            counts["delta"] += d != 2  # hyperedges, summed or broadcast single legs
            counts["leg"] += 1 if d == 2 else d
        counts["open-leg"] += len(network.output)
        counts["group-leg"] += sum(len(group) > 1 for group in network.output)
    return counts


def _check(network: Network) -> None:
    svg = render(network)
    groups = _groups(svg)
    found = Counter(group.get("class") for group in groups)
    expected = _expected(network)
    for css in ("tensor", "pattern", "delta", "open-leg", "leg", "group-leg"):
        assert found[css] == expected[css], (css, network)
    tensor_names = sorted(text for g in groups if g.get("class") == "tensor" for text in _texts(g))
    assert tensor_names == sorted(t.name for term in network.terms for t in term.tensors if t.kind == "input")
    # Open legs: one per output axis and term, labelled with the group, left to right in output order.
    opens = [g for g in groups if g.get("class") == "open-leg"]
    wanted = [group[0] if len(group) == 1 else f"({' '.join(group)})" for group in network.output]
    for t in range(len(network.terms)):
        row = opens[t * len(wanted) : (t + 1) * len(wanted)]
        xs = [float(next(g.iter(f"{SVG}text")).get("x")) for g in row]
        assert [_texts(g)[0] for g in row] == wanted
        assert xs == sorted(xs)
    # Every contracted label between two legs is written on its line.
    line_labels = Counter(text for g in groups if g.get("class") == "leg" for text in _texts(g) if text)
    for term in network.terms:
        degree = Counter(leg for tensor in term.tensors for leg in tensor.legs)
        for label, d in degree.items():
            if d == 2 and label not in network.output_legs:
                assert line_labels[label] >= 1, label
    _check_no_overlap(network)


def _check_no_overlap(network: Network) -> None:
    """No two visible nodes' boxes intersect (graphviz 'plain' output gives the same layout)."""
    plain = graphviz.pipe("dot", "plain", to_dot(network).encode()).decode()
    boxes = []
    for line in plain.splitlines():
        fields = line.split()
        if fields[0] == "node" and float(fields[4]) > 0.02:
            x, y, w, h = map(float, fields[2:6])
            boxes.append((fields[1], x - w / 2, x + w / 2, y - h / 2, y + h / 2))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = min(a[2], b[2]) - max(a[1], b[1]) > 1e-3 and min(a[4], b[4]) - max(a[3], b[3]) > 1e-3
            assert not overlap, (a, b)


@pytest.mark.parametrize("network", GALLERY, ids=lambda n: n.name)
def test_gallery_counts_labels_and_layout(network: Network) -> None:
    _check(network)


def test_specific_notation() -> None:
    assert _expected(HYPER)["delta"] == 1 and _expected(UNFOLD)["group-leg"] == 2
    patterns = [g for g in _groups(render(CONV2D)) if g.get("class") == "pattern"]
    assert [_texts(g) for g in patterns] == [["Π", "stride=2, padding=1"]] * 2
    trace = [g for g in _groups(render(TRACE)) if g.get("class") == "leg"]
    assert len(trace) == 1 and _texts(trace[0]) == ["i"]  # a loop labelled i
    coefficients = [_texts(g)[0] for g in _groups(render(KFAC)) if g.get("class") == "coefficient"]
    assert coefficients == ["−2·|n|⁻¹", "+", "+ 0.5"]
    titles = [_texts(g)[0] for g in _groups(render_program(GALLERY)) if g.get("class") == "title"]
    assert titles == [f"{n.name} =" for n in GALLERY]


def _random_network(rng: random.Random, index: int) -> Network:
    labels = [f"l{i}" for i in range(rng.randint(2, 7))]
    terms = []
    for _ in range(rng.randint(1, 3)):
        tensors = []
        for position in range(rng.randint(0, 4)):
            kind = rng.choice(["input", "input", "pattern", "delta"])
            legs = tuple(rng.choice(labels) for _ in range(3 if kind == "pattern" else rng.randint(1, 4)))
            tensors.append(Tensor(kind, "P" if kind == "pattern" else f"T{position}", legs))
        power = rng.choice([(), ((rng.choice(labels), rng.choice([-2, -1, 1])),)])
        terms.append(Term(tuple(tensors), Coeff(rng.choice([1.0, -1.0, 2.0, -0.5]), power)))
    chosen = rng.sample(labels, rng.randint(0, len(labels)))
    output = []
    while chosen:
        size = rng.choice([1, 1, 2, 3])
        output.append(tuple(chosen[:size]))
        chosen = chosen[size:]
    patterns = (("P", PatternSpec.create(stride=rng.randint(1, 3), padding=rng.randint(0, 2))),)
    return Network(f"R{index}", tuple(output), tuple(terms), patterns=patterns)


@pytest.mark.parametrize("seed", range(12))
def test_random_networks(seed: int) -> None:
    _check(_random_network(random.Random(seed), seed))


def test_deterministic() -> None:
    assert render(CONV2D) == render(CONV2D)
    assert render(UNFOLD, "png") == render(UNFOLD, "png")
    assert render_program(GALLERY) == render_program(GALLERY)
    assert program_to_dot(GALLERY) == program_to_dot(list(GALLERY))
    assert "<!--" not in render(CHAIN).split("<svg", 1)[1].split("<!-- d0")[0]  # no stray metadata


def test_formats() -> None:
    assert render(CHAIN, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert render(CHAIN, "dot") == to_dot(CHAIN)
    with pytest.raises(ValueError, match="svg, png, dot"):
        render(CHAIN, "pdf")


def test_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(TnNotSupportedError, match="apt-get install graphviz.*brew install graphviz"):
        render(CONV2D)
    with pytest.raises(TnNotSupportedError, match="format='dot'"):
        render_program(GALLERY, "png")
    source = render(CONV2D, "dot")
    assert source.startswith("digraph") and 'class=pattern' in source
