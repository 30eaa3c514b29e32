"""grad / vjp / jvp / vmap: derived networks against torch autograd and torch.func."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tndsl
from tndsl import rewrite
from tndsl.backend.program import Function

DT = torch.float64
CONV = """
input X[n, c_in, i1, i2]
input W[c_out, c_in, k1, k2]
input V[n, c_out, o1, o2]
input T[c_out, c_in, k1, k2]
input U[n, c_in, i1, i2]
pattern P = conv(stride=2, padding=1)
size k1 = 3
size k2 = 3
Y[n, c_out, o1, o2] = X[n, c_in, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[c_out, c_in, k1, k2]
GW = vjp(Y, W, V)
GX = vjp(Y, X, V)
JW = jvp(Y, W, T)
JX = jvp(Y, X, U)
GGN = vjp(Y, W, JW)
"""


def rand(*shape, grad=False):
    return torch.randn(*shape, dtype=DT, requires_grad=grad)


def conv(x, w):
    return F.conv2d(x, w, stride=2, padding=1)


@pytest.fixture(scope="module")
def program():
    return tndsl.compile(CONV)


def test_conv_vjps_match_autograd(program):
    x, w = rand(2, 3, 7, 7, grad=True), rand(4, 3, 3, 3, grad=True)
    y = conv(x, w)
    v = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, w), v)
    torch.testing.assert_close(program.GW(x, v), gw)
    with pytest.raises(tndsl.TnCallError, match=r"missing size keyword argument\(s\): i1=, i2=.*strided pattern"):
        program.GX(w, v)  # X is not an argument and stride 2 fits 7 and 8 alike: the size is asked for
    torch.testing.assert_close(program.GX(w, v, i1=7, i2=7), gx)
    assert program.GW.network.output == (("c_out",), ("c_in",), ("k1",), ("k2",))


def test_conv_jvps_match_torch_func(program):
    x, w = rand(2, 3, 7, 7), rand(4, 3, 3, 3)
    t, u = torch.randn_like(w), torch.randn_like(x)
    _, jw = torch.func.jvp(lambda w_: conv(x, w_), (w,), (t,))
    _, jx = torch.func.jvp(lambda x_: conv(x_, w), (x,), (u,))
    torch.testing.assert_close(program.JW(x, t), jw)
    torch.testing.assert_close(program.JX(w, u), jx)


def test_ggn_vector_product(program):
    """GGN v for the loss ½‖y‖²: Jᵀ J v, as jvp then vjp."""
    x, w, t = rand(2, 3, 7, 7), rand(4, 3, 3, 3), rand(4, 3, 3, 3)
    _, jv = torch.func.jvp(lambda w_: conv(x, w_), (w,), (t,))
    _, pullback = torch.func.vjp(lambda w_: conv(x, w_), w)
    (expected,) = pullback(jv)
    torch.testing.assert_close(program.GGN(x, t), expected)


def test_full_jacobian_and_grad_of_grad():
    src = """
    input X[n, c]
    input W[d, c]
    size n = 3
    size c = 4
    size d = 2
    Y[n, d] = X[n, c] * W[d, c] * W[d, c] + 2 * X[n, c] * W[d, c]
    J = grad(Y, W)
    H = grad(J, W)
    """
    p = tndsl.compile(src)
    x, w = rand(3, 4), rand(2, 4)
    f = lambda w_: torch.einsum("nc,dc,dc->nd", x, w_, w_) + 2 * torch.einsum("nc,dc->nd", x, w_)  # noqa: E731
    jac = torch.autograd.functional.jacobian(f, w)
    torch.testing.assert_close(p.J(x, w), jac)
    hess = torch.autograd.functional.jacobian(lambda w_: torch.autograd.functional.jacobian(f, w_, create_graph=True), w)
    torch.testing.assert_close(p.H(x), hess)
    # legs: Y's, then W's declared labels (d clashes with Y's d: fresh name)
    assert p.J.network.output[:2] == (("n",), ("d",))
    assert p.J.network.output[3] == ("c",)
    assert len(p.H.network.output) == 6
    assert len(p.J.network.terms) == 3  # product rule: W twice in the first term


def test_grad_through_groupings_scalars_and_inlining():
    src = """
    input X[n, (g c)]
    input W[(g d), c]
    size g = 2
    size n = 3
    size c = 2
    size d = 3
    Z[n, g, d] = X[n, g, c] * W[g, d, c]
    Y[(n g), d] = Z[n, g, d] / |c| - 3 * Z[n, g, d]
    J = grad(Y, W)
    G = vjp(Y, W, V)
    input V[(n g), d]
    """
    p = tndsl.compile(src)
    x, w, v = rand(3, 4), rand(6, 2), rand(6, 3)

    def f(w_):
        z = torch.einsum("ngc,gdc->ngd", x.reshape(3, 2, 2), w_.reshape(2, 3, 2))
        return (z / 2 - 3 * z).reshape(6, 3)

    torch.testing.assert_close(p.J(x), torch.autograd.functional.jacobian(f, w))
    assert p.J.network.output[-2:] == (("g", "d_1"), ("c",)) or len(p.J.network.output[-2]) == 2
    w_ = w.clone().requires_grad_()
    (expected,) = torch.autograd.grad(f(w_), w_, v)
    torch.testing.assert_close(p.G(x, v), expected)
    assert tuple(p.G(x, v).shape) == (6, 2)


def test_vmap_batched_conv_and_per_sample_gradients():
    src = """
    input X[c_in, i1, i2]
    input W[c_out, c_in, k1, k2]
    input V[c_out, o1, o2]
    pattern P = conv(stride=2, padding=1)
    size k1 = 3
    size k2 = 3
    Y[c_out, o1, o2] = X[c_in, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[c_out, c_in, k1, k2]
    Yb = vmap(Y, n, X)
    G = vjp(Y, W, V)
    Gn = vmap(G, n, X, V)
    """
    p = tndsl.compile(src)
    assert p.Yb.inputs == ("X_n", "W")
    assert p.Gn.inputs == ("X_n", "V_n")
    x, w = rand(5, 3, 7, 7), rand(4, 3, 3, 3)
    torch.testing.assert_close(p.Yb(x, w), torch.func.vmap(lambda xi: conv(xi[None], w)[0])(x))
    v = rand(5, 4, 4, 4)

    def per_sample(xi, vi):
        return torch.func.vjp(lambda w_: conv(xi[None], w_)[0], w)[1](vi)[0]

    torch.testing.assert_close(p.Gn(x, v), torch.func.vmap(per_sample)(x, v))
    # by keyword, with the new input names
    torch.testing.assert_close(p.Gn(V_n=v, X_n=x), p.Gn(x, v))


def test_vmap_of_input_used_twice_and_of_sum():
    src = """
    input A[i, j]
    input B[j]
    Y[i] = A[i, j] * A[i, j] * B[j] + B[i] * 2
    Yb = vmap(Y, b, A)
    """
    p = tndsl.compile(src)
    a, bv = rand(4, 3, 3), rand(3)
    expected = torch.stack([p.Y(a[t], bv) for t in range(4)])
    torch.testing.assert_close(p.Yb(a, bv), expected)


def test_full_legs_forms():
    src = """
    input X[n, c]
    input W[d, c]
    input V[n, d]
    Y[n, d] = X[n, c] * W[d, c]
    G1[p, q] = vjp(Y, W, V)[p, q]
    G2[(p q)] = vjp(Y, W, V)
    G3[q, p] = 2 * vjp(Y, W, V)[p, q]
    """
    p = tndsl.compile(src)
    x, v = rand(3, 4), rand(3, 2)
    expected = v.T @ x
    torch.testing.assert_close(p.G1(x, v), expected)
    torch.testing.assert_close(p.G2(x, v), expected.reshape(-1))
    torch.testing.assert_close(p.G3(x, v), 2 * expected.T)


def test_python_api():
    p = tndsl.compile("input A[i, j]\ninput B[j, k]\nY[i, k] = A[i, j] * B[j, k]")
    net = p.Y.network
    g = rewrite.vjp(net, "B", tndsl.InputSpec("V", (("i",), ("k",))))
    a, v = rand(2, 3), rand(2, 4)
    torch.testing.assert_close(Function(g)(a, v), a.T @ v)
    jv = rewrite.jvp(net, "A", tndsl.InputSpec("T", (("i",), ("j",))))
    b, t = rand(3, 4), rand(2, 3)
    torch.testing.assert_close(Function(jv)(b, t), t @ b)
    vm = rewrite.vmap(net, "z", ["A"])
    torch.testing.assert_close(Function(vm)(rand(5, 2, 3).requires_grad_(False), b).shape, torch.Size([5, 2, 4]))


@pytest.mark.parametrize(
    "line, message, col",
    [
        ("G = grad(Y, Z)", "'Z' does not occur in 'Y'", 13),
        ("G = grad(Y, Q)", "unknown input 'Q'", 13),
        ("G = vmap(Y, j, A)", "vmap leg 'j' clashes", 13),
        ("G = vjp(Y, A, Z)", "do not match", 15),
        ("G = jvp(Y, A, V)", "do not match", 15),
        ("G = grad(Y)", "takes 2 arguments", 5),
        ("G = grad(A, A)", "must be a definition", 10),
        ("G = grad(Y, P)", "is a pattern", 13),
        ("G[x] = grad(Y, A)", "3 labels", None),
    ],
)
def test_positioned_errors(line, message, col):
    src = "input A[i, j]\ninput B[j]\ninput Z[q, r]\ninput V[i]\npattern P = conv()\nY[i] = A[i, j] * B[j]\n" + line + "\n"
    with pytest.raises(tndsl.TnError) as info:
        tndsl.compile(src, "t.tn")
    text = str(info.value)
    assert message in text or (message == "3 labels" and "labels were given" in text), text
    assert text.startswith("t.tn:7:"), text
    if col is not None:
        assert text.startswith(f"t.tn:7:{col}:"), text


def test_unfixed_removed_leg_needs_size():
    src = """
    input X[n, c_in, i1, i2]
    input W[c_out, c_in, k1, k2]
    input V[n, c_out, o1, o2]
    pattern P = conv(stride=2)
    Y[n, c_out, o1, o2] = X[n, c_in, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[c_out, c_in, k1, k2]
    G = vjp(Y, W, V)
    """
    with pytest.raises(tndsl.TnSizeError, match="size k1"):
        tndsl.compile(src, "t.tn")
    p = tndsl.compile(src.replace("pattern P", "size k1 = 3\nsize k2 = 2\npattern P"))
    x, w = rand(2, 3, 9, 8, grad=True), rand(4, 3, 3, 2, grad=True)
    y = F.conv2d(x, w, stride=2)
    v = torch.randn_like(y)
    (gw,) = torch.autograd.grad(y, w, v)
    torch.testing.assert_close(p.G(x, v), gw)


# -- property tests -------------------------------------------------------------------------

LABEL_SIZES = {"a": 2, "b": 3, "c": 2, "d": 3}
NAMES = ("A", "B", "C")


@st.composite
def networks(draw):
    """A random program: inputs with declared sizes, one definition Y (sums, scalars, diagonals)."""
    shapes = {name: [draw(st.sampled_from((2, 3))) for _ in range(draw(st.integers(1, 3)))] for name in NAMES}
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        factors = []
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from(NAMES))
            labels = [draw(st.sampled_from([l for l, s in LABEL_SIZES.items() if s == size])) for size in shapes[name]]
            factors.append(f"{name}[{', '.join(labels)}]")
        coeff = draw(st.sampled_from(["", "2 * ", "-1 * ", "0.5 * ", "|a| * "]))
        terms.append(coeff + " * ".join(factors))
    used = sorted({l for t in terms for l in LABEL_SIZES if f"{l}," in t or f"{l}]" in t or f"[{l}" in t})
    output = draw(st.lists(st.sampled_from(used), unique=True, max_size=3))
    lines = [f"size {l} = {s}" for l, s in LABEL_SIZES.items()]
    for name in NAMES:
        decl = [f"{name.lower()}{i}" for i in range(len(shapes[name]))]
        lines.append(f"input {name}[{', '.join(decl)}]")
        lines += [f"size {d} = {s}" for d, s in zip(decl, shapes[name])]
    lines.append(f"Y[{', '.join(output)}] = " + " + ".join(terms))
    return "\n".join(lines) + "\n", shapes


def _args(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g, dtype=DT) for name, shape in shapes.items()}


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(networks())
def test_grad_by_removal_equals_autograd(case):
    src, shapes = case
    y = tndsl.compile(src).Y
    args = _args(shapes)
    for wrt in y.inputs:
        g = Function(rewrite.grad(y.network, wrt))
        others = {k: v for k, v in args.items() if k in g.inputs}
        f = lambda w_: y(**{**{k: args[k] for k in y.inputs}, wrt: w_})  # noqa: E731
        torch.testing.assert_close(g(**others), torch.autograd.functional.jacobian(f, args[wrt]), check_dtype=False)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(networks(), st.data())
def test_vmap_equals_python_loop(case, data):
    src, shapes = case
    y = tndsl.compile(src).Y
    mapped = data.draw(st.lists(st.sampled_from(y.inputs), unique=True, min_size=1))
    net = rewrite.vmap(y.network, "z", mapped)
    fn = Function(net)
    args = _args(shapes)
    batched = {k: (torch.randn(4, *v.shape, dtype=DT) if k in mapped else v) for k, v in args.items()}
    expected = torch.stack([y(**{k: (batched[k][t] if k in mapped else batched[k]) for k in y.inputs}) for t in range(4)])
    torch.testing.assert_close(fn(**{k: batched[k] for k in fn.inputs}), expected)
