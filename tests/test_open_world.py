"""Networks nobody put in the gallery: derived shapes, keyword sizes, language growth."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

import tndsl

STRIDED = """
input X[n, i]
input W[k]
pattern P = conv(stride=2)
Y[n, o] = X[n, i] * P[i, o, k] * W[k]
L[] = Y[n, o] * Y[n, o]
GX = grad(L, X)
"""


def test_gradient_of_a_strided_conv_has_the_input_shape():
    """The issue's example: (2, 6) came back as (2, 5) without an error."""
    program = tndsl.compile(STRIDED)
    x, w = torch.randn(2, 6, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    y = F.conv1d(xr[:, None], w[None, None], stride=2)[:, 0]
    (expected,) = torch.autograd.grad((y * y).sum(), xr)
    assert program.GX(x, w).shape == (2, 6)
    torch.testing.assert_close(program.GX(x, w), expected)


GGN = """
input X[n, c, i]
input W[d, c, k]
input T[n, c, i]
input V[n, d, o]
pattern P = conv(stride={s}, padding={p}, dilation={dil})
size k = {k}
Y[n, d, o] = X[n, c, i] * P[i, o, k] * W[d, c, k]
JT = jvp(Y, X, T)
GT = vjp(Y, X, JT)
GX = vjp(Y, X, V)
JW = jvp(Y, W, W)
"""


def _conv(x, w, s, p, dil):
    left, right = p if isinstance(p, tuple) else (p, p)
    return F.conv1d(F.pad(x, (left, right)), w, stride=s, dilation=dil)


@pytest.mark.parametrize("seed", range(12))
def test_derivatives_of_random_convolutions_match_autograd(seed):
    rng = random.Random(seed)
    s, dil, k = rng.choice([1, 2, 3]), rng.choice([1, 2]), rng.choice([1, 2, 3])
    p = rng.choice([0, 1, (1, 0), (0, 2)])
    i = rng.randint(dil * (k - 1) + 1 + s, 13)
    text = GGN.format(s=s, p=p if isinstance(p, int) else f"({p[0]}, {p[1]})", dil=dil, k=k)
    program = tndsl.compile(text)
    g = torch.Generator().manual_seed(seed)
    x, t = torch.randn(2, 3, i, generator=g, dtype=torch.float64), torch.randn(2, 3, i, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, k, generator=g, dtype=torch.float64)
    y = _conv(x, w, s, p, dil)
    v = torch.randn(y.shape, generator=g, dtype=torch.float64)
    # the Gauss-Newton product: its input size comes from the tangent T
    _, jt = torch.func.jvp(lambda x_: _conv(x_, w, s, p, dil), (x,), (t,))
    (gt,) = torch.autograd.grad(_conv(x.requires_grad_(), w, s, p, dil), x, jt)
    assert program.GT(w, t).shape == t.shape
    torch.testing.assert_close(program.GT(w, t), gt)
    # the input VJP without X: the size is asked for when the stride leaves it open
    (gx,) = torch.autograd.grad(_conv(x, w, s, p, dil), x, v)
    keywords = {"i": i} if "i" in program.GX.required else {}
    if s > 1:
        assert "i" in program.GX.required
        with pytest.raises(tndsl.TnCallError, match="strided pattern only bounds it"):
            program.GX(w, v)
    torch.testing.assert_close(program.GX(w, v, **keywords), gx)
    torch.testing.assert_close(program.JW(x.detach(), w), y.detach())


def test_a_size_keyword_is_asked_for_only_when_no_argument_fixes_it():
    program = tndsl.compile("size i\ninput A[i, j]\nB[i] = A[i, j]\nO[i] = delta[i]\n")
    a = torch.randn(3, 4)
    torch.testing.assert_close(program.B(a), a.sum(1))  # A fixes i: no keyword needed
    torch.testing.assert_close(program.B(a, i=3), a.sum(1))  # still accepted, and checked
    with pytest.raises(tndsl.TnCallError, match="size mismatch"):
        program.B(a, i=4)
    assert program.O.required and not program.B.required
    with pytest.raises(tndsl.TnCallError, match="missing size keyword argument"):
        program.O()
    assert torch.equal(program.O(i=2), torch.ones(2))


HESSIAN = """
input X[n, c, i1, i2]
input W[d, c, k1, k2]
pattern P = conv(stride=(2, 1), padding=(1, 0))
size k1 = 3
size k2 = 2
size d
Y[n, d, o1, o2] = X[n, c, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[d, c, k1, k2]
L[] = Y[n, d, o1, o2] * Y[n, d, o1, o2]
H = grad(grad(L, W), W)
"""


def test_nested_derived_forms_and_per_dimension_patterns():
    program = tndsl.compile(HESSIAN)
    x, w = torch.randn(2, 3, 9, 8, dtype=torch.float64), torch.randn(4, 3, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(program.Y(x, w), F.conv2d(x, w, stride=(2, 1), padding=(1, 0)))
    expected = torch.autograd.functional.hessian(lambda w_: (F.conv2d(x, w_, stride=(2, 1), padding=(1, 0)) ** 2).sum(), w)
    torch.testing.assert_close(program.H(x, d=4), expected)
    # printing names each use's dimension, so the printed program means the same
    assert "P.0[i1, o1, k1] * P.1[i2, o2, k2]" in str(program.Y.network)
    again = tndsl.compile(tndsl.format_program(tndsl.parse(HESSIAN)))
    torch.testing.assert_close(again.Y(x, w), program.Y(x, w))


def test_explicit_dimensions_and_their_errors():
    text = "input X[i, j]\npattern P = conv(stride=(2, 1), padding=((1, 0), 1))\nsize k = 2\nsize l = 3\n"
    program = tndsl.compile(text + "Y[o, p] = X[i, j] * P.1[j, p, l] * P.0[i, o, k]\n")
    x = torch.randn(7, 6, dtype=torch.float64)
    expected = F.conv2d(F.pad(x[None, None], (1, 1, 1, 0)), torch.ones(1, 1, 2, 3, dtype=torch.float64), stride=(2, 1))[0, 0]
    torch.testing.assert_close(program.Y(x), expected)
    cases = [
        ("Y[o, p, q] = X[i, j] * P[i, o, k] * P[j, p, l] * P[i, q, k]", "has 2 dimensions but this product uses it 3 times", 5, 50),
        ("Y[o] = X[i, j] * P.2[i, o, k]", "'P.2' is not one", 5, 18),
        ("Y[i] = X.1[i, j]", "only a per-dimension pattern has dimensions", 5, 8),
    ]
    for line, message, row, col in cases:
        with pytest.raises(tndsl.TnPatternError, match=message) as info:
            tndsl.compile(text + line, "p.tn")
        assert str(info.value).startswith(f"p.tn:{row}:{col}:"), str(info.value)
    with pytest.raises(tndsl.TnPatternError, match="one value per dimension"):
        tndsl.compile("pattern P = conv(stride=(2, 1), dilation=(1, 1, 1))")


def test_output_padding_below_stride_or_dilation_as_torch():
    text = """
input V[n, d, o]
input W[d, c, k]
pattern P = conv(stride=1, dilation=2, output_padding=1)
Y[n, c, i] = V[n, d, o] * P[i, o, k] * W[d, c, k]
"""
    v, w = torch.randn(2, 3, 5, dtype=torch.float64), torch.randn(3, 4, 3, dtype=torch.float64)
    expected = F.conv_transpose1d(v, w, stride=1, dilation=2, output_padding=1)
    torch.testing.assert_close(tndsl.compile(text).Y(v, w), expected)
    with pytest.raises(tndsl.TnPatternError, match="smaller than stride or dilation"):
        tndsl.compile("pattern P = conv(stride=2, dilation=2, output_padding=2)")


def test_unicode_names():
    program = tndsl.compile("input Ω[α, β]\ninput v[β]\nμ[α] = Ω[α, β] * v[β]\n")
    a, v = torch.randn(3, 4), torch.randn(4)
    torch.testing.assert_close(program["μ"](a, v), a @ v)
    assert "μ" in tndsl.compile(tndsl.format_program(tndsl.parse("input Ω[α]\nμ[α] = Ω[α]"))).functions


@pytest.mark.parametrize("text", ["Y[n, i] = relu(X[n, i])", "Y[n] = X[n, i] * exp(X[n, i])[n, i]", "Y[n, i] = sigmoid(X)"])
def test_non_linear_functions_say_what_to_do(text):
    with pytest.raises(tndsl.TnNameError, match="multilinear") as info:
        tndsl.compile("input X[n, i]\n" + text, "f.tn")
    assert str(info.value).startswith("f.tn:2:") and "apply the function in PyTorch" in str(info.value)


def test_new_syntax_round_trips_through_the_printer():
    text = (
        "pattern P = conv(stride=(2, 1), padding=((1, 0), 2))\ninput A[i, j]\n"
        "Y[o] = P.1[i, o, k] * A[i, k]\nG = grad(grad(Y, A), A)\nZ[α] = A[α, β]\n"
    )
    tree = tndsl.parse(text)
    assert tndsl.parse(tndsl.format_program(tree)) == tree


def test_an_empty_batch_gives_empty_results():
    from pathlib import Path

    gallery = Path(__file__).resolve().parent.parent / "gallery"
    conv = tndsl.load(gallery / "conv.tn")
    x, w, b = torch.randn(0, 3, 9, 7), torch.randn(4, 3, 3, 2), torch.randn(4)
    torch.testing.assert_close(conv.Y2(x, w, b), F.conv2d(x, w, b, stride=2, padding=1))
    assert conv.Y2(x, w, b).shape == (0, 4, 5, 4)
    gram = tndsl.compile("input A[n, a]\nG[a, b] = A[n, a] * A[n, b] / |n|\nS[a, b] = A[n, a] * A[n, b]")
    empty = torch.randn(0, 3)
    assert torch.equal(gram.S(empty), torch.zeros(3, 3))
    assert gram.G(empty).isnan().all()  # an average over no samples, as torch.mean gives
    with pytest.raises(tndsl.TnCallError, match="empty output"):
        conv.Y1(torch.randn(2, 3, 0), torch.randn(4, 3, 3), b)  # a spatial size 0 is still an error


def test_index_selection_is_indexing_not_a_one_hot():
    # separated target axes: advanced indexing
    text = "index J[s -> (a b)]\ninput V[a, n, b]\nY[n, s] = V[a, n, b] * J[s, a, b]\n"
    v, j = torch.randn(3, 2, 4), torch.tensor([0, 5, 11])
    program = tndsl.compile(text)
    assert program.Y.plan(j, v).count("take") == 1
    torch.testing.assert_close(program.Y(j, v), v.permute(1, 0, 2).reshape(2, 12)[:, j])
    text = "index J[s -> (o1 o2)]\ninput V[n, d, o1, o2]\nY[n, d, s] = V[n, d, o1, o2] * J[s, o1, o2]\n"
    v, j = torch.randn(2, 3, 4, 5), torch.tensor([0, 7, 19, 3, 7])
    expected = v.reshape(2, 3, 20)[:, :, j]
    program = tndsl.compile(text)
    plan = program.Y.plan(j, v)
    assert plan.count("select_flat") == 1 and plan.count("one_hot") == 0
    torch.testing.assert_close(program.Y(j, v), expected)
    torch.testing.assert_close(tndsl.compile(text, lowering=False).Y(j, v), expected)  # the one-hot way
    from tndsl.tools.reference import dense_reference

    torch.testing.assert_close(dense_reference(program.Y.network, [j, v]), expected)
    with pytest.raises(tndsl.TnCallError, match="'J' is an index: it must hold integers"):
        program.Y(j.float(), v)


def test_randomized_vjp_reads_only_the_sampled_windows():
    from pathlib import Path

    program = tndsl.load(Path(__file__).resolve().parent.parent / "gallery" / "randomized_vjp.tn")
    x, v = torch.randn(2, 3, 9, 8, dtype=torch.float64), torch.randn(2, 4, 5, 4, dtype=torch.float64)
    everything = torch.arange(20)
    full = torch.nn.grad.conv2d_weight(x, (4, 3, 3, 3), v, stride=2, padding=1)
    torch.testing.assert_close(program.RW2(x, v, everything), full)  # all positions once: the exact VJP
    plan = program.RW2.plan(x, v, torch.tensor([1, 5]))
    assert plan.count("gather_windows") == 1 and plan.count("select_flat") == 1  # X's windows, V's entries
    assert plan.count("one_hot") == 0 and plan.count("conv_weight") == 0 and plan.count("unfold") == 0


SAMPLED = """
input X[n, c, {ins}]
input V[n, d, {outs}]
index J[s -> ({outs_flat})]
pattern P = conv(stride={stride}, padding={padding}, dilation={dilation})
{sizes}
G[d, c, {kernels}] = X[n, c, {ins}] * {windows} * J[s, {qs}] * V[n, d, {outs}] * J[s, {outs}]
"""


def _sampled_program(dims: int, stride: int, padding: int, dilation: int, kernel: tuple[int, ...]) -> str:
    ins = ", ".join(f"i{m}" for m in range(dims))
    outs = ", ".join(f"o{m}" for m in range(dims))
    return SAMPLED.format(
        ins=ins, outs=outs, outs_flat=" ".join(f"o{m}" for m in range(dims)), stride=stride, padding=padding,
        dilation=dilation, sizes="\n".join(f"size k{m} = {kernel[m]}" for m in range(dims)),
        kernels=", ".join(f"k{m}" for m in range(dims)), qs=", ".join(f"q{m}" for m in range(dims)),
        windows=" * ".join(f"P[i{m}, q{m}, k{m}]" for m in range(dims)),
    )


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (1, 1, 1), (2, 1, 1), (1, 2, 2), (3, 0, 2)])
@pytest.mark.parametrize("channels", [1, 6])
def test_sampled_weight_vjps_match_the_masked_vjp(dims, stride, padding, dilation, channels):
    """Both layouts of the gathered windows and of the selected entries (entry by entry, and
    channels-last rows, chosen by cost) give the weight VJP of V masked to the samples."""
    kernel = (3, 2, 3)[:dims]
    ins = (9, 8, 7)[:dims]
    text = _sampled_program(dims, stride, padding, dilation, kernel)
    x = torch.randn(2, channels, *ins, dtype=torch.float64)
    outs = [(i + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for i, k in zip(ins, kernel)]
    v = torch.randn(2, 5, *outs, dtype=torch.float64)
    positions = int(torch.tensor(outs).prod())
    j = torch.randint(positions, (max(1, positions // 3),))
    j[-1] = j[0]  # a repeated sample counts twice
    mask = torch.bincount(j, minlength=positions).reshape(outs).to(v.dtype)
    conv_weight = getattr(torch.nn.grad, f"conv{dims}d_weight")
    expected = conv_weight(x, (5, channels, *kernel), v * mask, stride, padding, dilation)
    torch.testing.assert_close(tndsl.compile(text).G(x, v, j), expected)
    torch.testing.assert_close(tndsl.compile(text, lowering=False).G(x, v, j), expected)


def test_selected_entries_are_copied_as_rows_where_that_is_cheaper():
    """Many samples of a tensor with legs only it has (d): one copy of V with those legs
    last, then one row per index; legs contracted with another operand stay in front."""
    text = "index J[s -> o]\ninput V[n, m, d, o]\ninput W[n, m]\nY[d, s] = V[n, m, d, o] * J[s, o] * W[n, m]\n"
    v, w = torch.randn(3, 2, 400, 60, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    j = torch.randint(60, (200,))
    program = tndsl.compile(text, lowering="always")  # by cost, W·V first and a one-hot would do
    (select,) = [op for op in program.Y.plan(j, v, w).ops if op.prim == "select_flat"]
    assert select.param("first") == 2 and select.param("trail") == 1  # [n, m, s, d]
    torch.testing.assert_close(program.Y(j, v, w), torch.einsum("nmds,nm->ds", v[..., j], w))


def test_sampled_windows_are_gathered_channels_last_where_that_is_cheaper():
    """Many channels: one copy of X, channels last (padded in the same pass), so that each
    of the 9 indices per sample copies a row; V's sampled entries (a quarter of V) are
    cheaper to pick one by one than to copy V for."""
    text = _sampled_program(2, 1, 1, 1, (3, 3))
    x, v = torch.empty(8, 64, 56, 56), torch.empty(8, 64, 56, 56)
    plan = tndsl.compile(text).G.plan(x, v, torch.arange(784))
    (gather,) = [op for op in plan.ops if op.prim == "gather_windows"]
    (select,) = [op for op in plan.ops if op.prim == "select_flat"]
    assert gather.param("first") == 1 and select.param("trail") == 0  # [n, samples, kernel, c], [n, d, samples]
    assert plan.ops[0].prim == "permute" and plan.ops[1].prim == "pad"
    few = tndsl.compile(text).G.plan(torch.empty(2, 1, 9, 9), torch.empty(2, 1, 9, 9), torch.arange(5))
    assert [op.param("first") for op in few.ops if op.prim == "gather_windows"] == [2]  # one channel: no copy


FOLD_CHECK = """# check: Y = myrefs:my_fold(Z, output_size=(8, 7), kernel_size=(3, 2), stride=2, padding=1) with Z[2, 3, 3, 2, 4, 4], i1=8, i2=7
input Z[n, c, k1, k2, o1, o2]
pattern P = conv(stride=2, padding=1)
size i1
size i2
Y[n, c, i1, i2] = Z[n, c, k1, k2, o1, o2] * P[i1, o1, k1] * P[i2, o2, k2]
"""

MYREFS = """import torch.nn.functional as F
def my_fold(z, *, output_size, kernel_size, stride=1, padding=0):
    n, c, k1, k2, o1, o2 = z.shape
    return F.fold(z.reshape(n, c * k1 * k2, o1 * o2), output_size, kernel_size, padding=padding, stride=stride)
"""


def test_check_lines_name_user_references_from_allowed_modules(tmp_path):
    from tndsl.tools.check import check_file, parse_check_lines

    (tmp_path / "fold.tn").write_text(FOLD_CHECK)
    (tmp_path / "myrefs_check.py").write_text(MYREFS)
    text = FOLD_CHECK.replace("myrefs:", "myrefs_check:")
    (tmp_path / "fold.tn").write_text(text)
    assert parse_check_lines(text)[0].reference == "myrefs_check:my_fold"
    (refused,) = check_file(tmp_path / "fold.tn")
    assert not refused.passed and "may not import" in refused.message  # nothing is imported unasked
    (row,) = check_file(tmp_path / "fold.tn", modules=["myrefs_check"])
    assert row.passed and row.error is not None and row.error < 1e-12, row


def test_cli_check_imports_only_named_modules(tmp_path, capsys):
    from tndsl.tools.cli import main

    (tmp_path / "fold.tn").write_text(FOLD_CHECK.replace("myrefs:", "myrefs_cli:"))
    (tmp_path / "myrefs_cli.py").write_text(MYREFS)
    assert main(["check", str(tmp_path / "fold.tn")]) == 1
    assert "--import myrefs_cli" in capsys.readouterr().out  # the hint says how
    assert main(["check", "--import", "myrefs_cli", str(tmp_path / "fold.tn")]) == 0
