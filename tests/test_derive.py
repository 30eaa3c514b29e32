"""`tndsl derive`: derived definitions printed as plain .tn, round trips with equal values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tndsl
from tndsl.tools.cli import main as cli_main
from tndsl.tools.derive import derive_text
from tndsl.ir import format_network

GALLERY = Path(__file__).resolve().parent.parent / "gallery"
DERIVED = sorted(GALLERY.glob("derived_*.tn"))
FORMS = ("grad(", "vjp(", "jvp(", "vmap(")


def _random_args(function, sizes, seed=0):
    """Arguments for a function: shapes from the network's size solution at given label sizes."""
    g = torch.Generator().manual_seed(seed)
    args = []
    for spec in function.network.inputs:
        shape = [1] * len(spec.axes)
        for a, axis in enumerate(spec.axes):
            for label in axis:
                shape[a] *= sizes[label]
        args.append(torch.randn(*shape, generator=g, dtype=torch.float64))
    return args


def assert_same_values(text, expanded, sizes, kwargs=None):
    original, derived = tndsl.compile(text), tndsl.compile(expanded)
    assert list(original) == list(derived)
    for name in original:
        f, h = original[name], derived[name]
        assert f.inputs == h.inputs, name
        args = _random_args(f, sizes)
        given = {**sizes, **(kwargs or {})}  # a keyword the function takes gets its size
        # a keyword derive had to rename (its label is used elsewhere) is the label's size
        keywords = {k: given.get(k, given.get(k.rsplit("_", 1)[0])) for k in f.keywords}
        keywords = {k: v for k, v in keywords.items() if v is not None}
        torch.testing.assert_close(h(*args, **keywords), f(*args, **keywords), msg=name)


CONV_SIZES = {"n": 2, "c_in": 3, "c_out": 4, "i1": 7, "i2": 7, "k1": 3, "k2": 3, "o1": 4, "o2": 4}


@pytest.mark.parametrize("path", DERIVED, ids=lambda p: p.name)
def test_gallery_derive_round_trip(path):
    text = path.read_text()
    expanded = derive_text(text)
    assert not any(form in expanded for form in FORMS)
    sizes = dict(CONV_SIZES)
    if "padding=1)" in text and "stride=1" in text:
        sizes.update(o1=7, o2=7)
    keywords = {}
    if "groups" in path.name:
        keywords = dict(g=2, k1=2, k2=3)
        sizes.update(keywords, ci=2, co=3, i1=10, i2=9, o1=4, o2=3)
    assert_same_values(text, expanded, sizes, keywords)
    # printing is idempotent: the expanded program expands to itself
    assert derive_text(expanded) == expanded


def test_cli_derive_prints(tmp_path, capsys):
    path = tmp_path / "p.tn"
    path.write_text("input A[i, j]\ninput V[i]\nY[i] = A[i, j] * A[i, j]\nG = vjp(Y, A, V)\n")
    assert cli_main(["derive", str(path)]) == 0
    out = capsys.readouterr().out
    assert "G[i, j] = 2 * A[i, j] * V[i]" in out or out.count("A[") >= 3
    assert cli_main(["derive", str(tmp_path / "missing.tn")]) == 1
    path.write_text("input A[i]\nY[i] = A[i]\nG = grad(Y, B)\n")
    assert cli_main(["derive", str(path)]) == 1
    assert "p.tn:3:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli_main(["derive", "--bogus"])
    assert info.value.code == 2


def test_names_restrict_and_simplify():
    text = """
input A[i, j]
input B[j]
input V[i]
Y[i] = A[i, j] * B[j]
G = vjp(Y, A, V)
H = grad(Y, B)
"""
    only = derive_text(text, ["G"])
    assert "H = grad(Y, B)" in only and "vjp(" not in only
    with pytest.raises(tndsl.TnError, match="no definition named"):
        derive_text(text, ["Nope"])
    simplified = derive_text(text, simplify=True)
    assert "delta" not in simplified
    assert_same_values(text, simplified, {"i": 2, "j": 3})


def test_expression_calls_keyword_sizes_and_broadcast_legs():
    text = """
input X[n, c]
input W[d, c]
input V[n, d]
size e
size n = 2
Y[n, d] = X[n, c] * W[d, c] + |e| * W[d, c]
Z[p, q] = 2 * vjp(Y, W, V)[p, q] - X[p_, q] * delta[p]
B[n, d, e] = Y[n, d] * delta[e]
GB = grad(B, X)
VV = vmap(vmap(Y, b, X), t, W)
"""
    # nested calls inside vmap are not allowed: vmap takes a definition name; split it
    text = text.replace("VV = vmap(vmap(Y, b, X), t, W)", "YB = vmap(Y, b, X)\nVV = vmap(YB, t, W)")
    text = text.replace("X[p_, q] * delta[p]", "X[r, q] * delta[p]")
    expanded = derive_text(text)
    assert not any(form in expanded for form in FORMS)
    assert "input X_b[b, n, c]" in expanded and "input W_t[t, d, c]" in expanded
    sizes = {"n": 2, "c": 3, "d": 4, "b": 2, "t": 3, "r": 2}
    assert_same_values(text, expanded, sizes, kwargs={"e": 5})


def test_format_network_is_plain_tn():
    p = tndsl.compile("size i = 3\nsize j = 3\ninput A[i, j]\nY[i] = -A[i, j] / |j| + 3 * A[i, i]\nG = grad(Y, A)\n")
    line = format_network(p.G.network)
    assert line.startswith("G[i, i_1, j] = ")
    assert "grad" not in line


# -- property: random programs with derived definitions round trip ---------------------------


@st.composite
def programs(draw):
    sizes = {"a": 2, "b": 3, "c": 2}
    shapes = {"A": draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3)), "B": draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=2))}
    lines = [f"size {l} = {s}" for l, s in sizes.items()]
    for name, labels in shapes.items():
        lines.append(f"input {name}[{', '.join(f'{name.lower()}{i}' for i in range(len(labels)))}]")
        lines += [f"size {name.lower()}{i} = {sizes[l]}" for i, l in enumerate(labels)]
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        factors = [f"{n}[{', '.join(shapes[n])}]" for n in draw(st.lists(st.sampled_from("AB"), min_size=1, max_size=3))]
        terms.append(draw(st.sampled_from(["", "2 * ", "|b| * "])) + " * ".join(factors))
    used = sorted({l for n in "AB" for l in shapes[n] if any(f"{n}[" in t for t in terms)})
    output = draw(st.lists(st.sampled_from(used), unique=True, max_size=2))
    lines.append(f"Y[{', '.join(output)}] = " + " + ".join(terms))
    uses = [n for n in "AB" if any(f"{n}[" in t for t in terms)]
    w = draw(st.sampled_from(uses))
    lines.append(f"G = grad(Y, {w})")
    lines.append(f"M = vmap(Y, z, {w})")
    lines.append(f"GG = jvp(Y, {w}, {w})")
    lines.append(f"GV = vmap(Y, z, {', '.join(uses)})")
    return "\n".join(lines) + "\n", dict(sizes, z=2)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(programs())
def test_random_derive_round_trip(case):
    text, sizes = case
    original = tndsl.compile(text)
    expanded = derive_text(text)
    derived = tndsl.compile(expanded)
    g = torch.Generator().manual_seed(1)
    for name in original:
        f, h = original[name], derived[name]
        assert f.inputs == h.inputs
        args = []
        for spec in f.network.inputs:
            # declared labels a0.. map to sizes through the size declarations of the program
            decl = {d: v for d, v in original.declarations.sizes.items() if v is not None}
            args.append(torch.randn(*[decl.get(ax[0], sizes.get(ax[0], 2)) for ax in spec.axes], generator=g, dtype=torch.float64))
        torch.testing.assert_close(h(*args), f(*args), check_dtype=False)


def test_derived_gallery_matches_hand_written_conv_vjps():
    """gallery/derived_conv_groups.tn (vjp/jvp) against the hand-written gallery forms."""
    derived = tndsl.load(GALLERY / "derived_conv_groups.tn")
    g = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    x, w = rnd(2, 4, 10, 9), rnd(6, 2, 2, 3)
    y = derived.Y(x, w, g=2, k1=2, k2=3)
    v, t = rnd(*y.shape), rnd(*w.shape)
    x_, w_ = x.clone().requires_grad_(), w.clone().requires_grad_()
    gx, gw = torch.autograd.grad(torch.nn.functional.conv2d(x_, w_, stride=3, padding=1, dilation=2, groups=2), (x_, w_), v)
    torch.testing.assert_close(derived.GW(x, v, g=2, k1=2, k2=3), gw)
    torch.testing.assert_close(derived.GX(w, v, g=2, k1=2, k2=3, i1=10, i2=9), gx)
    torch.testing.assert_close(derived.YD(x, t, g=2, k1=2, k2=3), torch.nn.functional.conv2d(x, t, stride=3, padding=1, dilation=2, groups=2))
    hand = GALLERY / "conv_weight_vjp.tn"
    if hand.exists():  # same stride/padding/dilation as the hand-written weight VJP
        written = tndsl.load(hand)
        torch.testing.assert_close(written.GW2(x, v, g=2, k1=2, k2=3), derived.GW(x, v, g=2, k1=2, k2=3))


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "gallery").glob("*.tn")), ids=lambda p: p.name)
def test_derived_gallery_programs_pass_check(path, tmp_path):
    from tndsl.tools.check import check_file

    derived = tmp_path / path.name
    derived.write_text(derive_text(path.read_text(), filename=str(path)))
    code = [line for line in derived.read_text().splitlines() if not line.startswith("#")]
    assert not any(form + "(" in line for line in code for form in ("grad", "vjp", "jvp", "vmap"))
    rows = check_file(derived)
    assert rows and all(row.passed for row in rows), [row for row in rows if not row.passed]
