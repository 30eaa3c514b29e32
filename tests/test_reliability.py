"""Issue 14 regressions: no silent wrong value, no raw traceback, no runaway.

Each test failed before its fix; the fuzz test (tests/test_fuzz.py) covers the same ground
at random.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import tndsl
from tndsl.backend import program as program_module
from tndsl.tools.reference import dense_reference

GRAM = "input A[n, a]\nG[a, b] = A[n, a] * A[n, b] / |n|\n"
MM = "input A[i, j]\ninput B[j, k]\nC[i, k] = A[i, j] * B[j, k]\n"


def _three_ways(text: str, name: str, *args, **keywords):
    """The compiled value, the value with lowering off, and the dense reference."""
    on = tndsl.compile(text)
    off = tndsl.compile(text, lowering=False)
    return on[name](*args, **keywords), off[name](*args, **keywords), dense_reference(on.networks[name], args, keywords)


# -- wrong values ----------------------------------------------------------------------------


def test_integer_gram_step_is_not_truncated():
    a = torch.arange(12).reshape(3, 4)
    expected = (a.T.double() @ a.double()) / 3
    for value in _three_ways(GRAM, "G", a):
        torch.testing.assert_close(value.double(), expected)


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_integer_and_bool_arguments_compute_in_int64(dtype):
    a = (torch.arange(6).reshape(2, 3) % 3).to(dtype)
    b = (torch.arange(12).reshape(3, 4) % 2).to(dtype)
    expected = a.long() @ b.long()
    for value in _three_ways(MM, "C", a, b):
        assert value.dtype == torch.int64
        assert torch.equal(value, expected)


def test_integral_coefficients_keep_integer_dtypes():
    text = "input A[a]\nG[] = A[b] * delta[a, a] + A[a] * delta[b, a]\nH[a] = 2 * A[a] - A[a] * |a|\nK[a] = A[a] / 2\n"
    a = torch.arange(3)
    expected = {"G": torch.tensor(9 + 3), "H": 2 * a - 3 * a, "K": a / 2}
    for name, value in expected.items():
        for result in _three_ways(text, name, a):
            assert result.dtype == value.dtype and torch.equal(result, value), name


def test_int32_through_a_summed_pattern_and_a_sum():
    text = (
        "input X[n, c, i]\npattern P = conv(stride=2)\nsize k = 3\nsize l = 3\n"
        "U[c, k, d, l] = X[n, c, i] * P[i, o, k] * X[n, d, j] * P[j, p, l] / |o|\n"
        "T[] = X[n, c, i] * X[n, c, i]\n"
    )
    x = torch.randint(-3, 4, (2, 2, 7), dtype=torch.int32)
    for name in ("U", "T"):
        values = _three_ways(text, name, x)
        for value in values[1:]:
            assert value.dtype == values[0].dtype
            torch.testing.assert_close(value, values[0])


def test_complex_arguments_match_the_reference():
    text = "input X[n, c, i]\ninput W[d, c, k]\npattern P = conv(stride=2, padding=1)\nY[n, d, o] = X[n, c, i] * P[i, o, k] * W[d, c, k]\n" + GRAM
    x = torch.randn(2, 3, 9, dtype=torch.complex128)
    w = torch.randn(4, 3, 3, dtype=torch.complex128)
    for name, args in (("Y", (x, w)), ("G", (x[0],))):
        on, off, dense = _three_ways(text, name, *args)
        torch.testing.assert_close(on, dense)
        torch.testing.assert_close(off, dense)


def test_cached_call_checks_keyword_types():
    program = tndsl.compile("input x[i]\nsize k\nY[i, k] = x[i] * delta[k]\n")
    x = torch.ones(3)
    assert program.Y(x, k=2).shape == (3, 2)
    assert program.Y(x, k=1).shape == (3, 1)
    for bad in (2.0, True, 1.0, "2"):
        with pytest.raises(tndsl.TnCallError, match="positive integer"):
            program.Y(x, k=bad)


def test_cached_call_checks_argument_types():
    program = tndsl.compile(MM)
    a, b = torch.ones(2, 3), torch.ones(3, 4)
    program.C(a, b)

    class Fake:
        shape, dtype, device = a.shape, a.dtype, a.device

    with pytest.raises(tndsl.TnCallError, match="torch.Tensor"):
        program.C(Fake(), b)


def test_an_input_and_a_size_keyword_may_share_a_name():
    program = tndsl.compile("input k[i]\nsize k\nY[i, k] = k[i] * delta[k]\n")
    x = torch.arange(3.0)
    assert torch.equal(program.Y(x, k=2), x[:, None].expand(3, 2))
    with pytest.raises(tndsl.TnCallError, match="missing"):
        program.Y(k=x)


def test_plan_eviction_drops_fast_keys(monkeypatch):
    monkeypatch.setattr(program_module, "MAX_PLANS", 2)
    function = tndsl.compile("input x[i]\nY[i] = x[i] * 2\n").Y
    for n in range(1, 6):
        function(torch.ones(n))
    assert len(function._cache) == 2
    assert len(function._fast) == 2


def test_missing_torch_kernel_is_a_call_error():
    program = tndsl.compile(MM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = torch.ones(2, 3, dtype=torch.complex32)
        b = torch.ones(3, 4, dtype=torch.complex32)
    for _ in range(2):  # planned, then cached
        with pytest.raises(tndsl.TnCallError, match=r"^<string>:3:1: calling 'C': torch cannot compute .*complex32"):
            program.C(a, b)


# -- raw tracebacks → positioned TnError ----------------------------------------------------


def _error(text: str, error: type = tndsl.TnError, **kwargs) -> tndsl.TnError:
    with pytest.raises(error) as info:
        tndsl.compile(text, "prog.tn", **kwargs)
    return info.value


def test_long_sums_and_products_compile_without_recursion():
    x = torch.arange(3.0)
    program = tndsl.compile("input A[i]\nY[i] = " + " + ".join(["A[i]"] * 500) + "\n")
    assert torch.equal(program.Y(x), 500 * x)
    program = tndsl.compile("input A[i]\nY[i] = A[i]" + " * 1" * 1000 + "\n")
    assert torch.equal(program.Y(x), x)
    program = tndsl.compile("input A[i]\nY[i] = " + " - ".join(["A[i]"] * 1001) + "\n")
    assert torch.equal(program.Y(x), -999 * x)


def test_deep_nesting_is_a_limit_error():
    error = _error("input A[i]\nY[i] = " + "-" * 1000 + "A[i]\n", tndsl.TnNotSupportedError)
    message = str(error)
    assert message.startswith("prog.tn:2:") and "max_depth=200" in message
    assert "tndsl.Limits(max_depth=N)" in message and "TNDSL_MAX_DEPTH" in message
    nested = "input A[i]\nY[i] = " + "(A[i] * " * 300 + "A[i]" + ")" * 300 + "\n"
    assert "max_depth" in str(_error(nested))
    deep = tndsl.compile("input A[i]\nY[i] = " + "-" * 1000 + "A[i]\n", limits=tndsl.Limits(max_depth=1000))
    assert torch.equal(deep.Y(torch.ones(2)), torch.ones(2))
    assert tndsl.compile(nested, limits=tndsl.Limits(max_depth=300)).Y(torch.ones(2)).shape == (2,)


def test_long_chains_and_cycles_of_definitions():
    chain = "input A[i]\nD0[i] = A[i]\n" + "".join(f"D{k}[i] = D{k - 1}[i] * 1\n" for k in range(1, 1500))
    assert torch.equal(tndsl.compile(chain).D1499(torch.ones(2)), torch.ones(2))
    cycle = "input A[i]\n" + "".join(f"D{k}[i] = D{k + 1}[i]\n" for k in range(1500)) + "D1500[i] = D0[i]\n"
    message = str(_error(cycle, tndsl.TnDefinitionError))
    assert message.startswith("prog.tn:1502:12: cyclic definition: D0 -> D1 -> D2 -> … (1496 more) -> D1499 -> D1500 -> D0")


def test_number_literals_over_the_digit_limit():
    message = str(_error("input A[i]\nY[i] = A[i] * " + "9" * 5000 + "\n", tndsl.TnNotSupportedError))
    assert message.startswith("prog.tn:2:15: digits in a number literal: 5000 is over the limit max_digits=100")
    message = str(_error("input A[n]\nsize n = " + "9" * 400 + "\nY[] = A[n] / |n|\n"))
    assert message.startswith("prog.tn:2:10: digits in an integer literal: 400")
    assert "max_digits" in str(_error("pattern P = conv(stride=" + "1" * 200 + ")\n"))


def test_number_literals_that_overflow():
    wide = tndsl.Limits(max_digits=1000)
    message = str(_error("input A[n]\nsize n = " + "9" * 400 + "\nY[] = A[n] / |n|\n", tndsl.TnSizeError, limits=wide))
    assert message.startswith("prog.tn:2:6: size n is larger than torch's largest size 2**63 - 1")
    message = str(_error("input A[i]\nY[i] = A[i] * " + "9" * 400 + "\n", tndsl.TnSyntaxError, limits=wide))
    assert message.startswith("prog.tn:2:15: number 99999999…99999999 is too large")
    message = str(_error("input A[i]\nY[i] = A[i] * 1e308 * 10\n", tndsl.TnDefinitionError))
    assert message.startswith("prog.tn:2:8: the numbers in this expression overflow a float64")
    assert "overflow" in str(_error("input A[i]\nY[i] = A[i] / 1e-320\n"))
    huge = tndsl.Limits(max_digits=10_000)
    assert "longer than Python converts" in str(_error("input A[i]\nY[i] = A[i] * " + "9" * 5000 + "\n", limits=huge))
    assert "longer than Python converts" in str(_error("size n = " + "9" * 5000 + "\n", limits=huge))
    program = tndsl.compile("input x[i]\nsize k\nY[i, k] = x[i] * delta[k]\n")
    with pytest.raises(tndsl.TnCallError, match="up to 2"):
        program.Y(torch.ones(2), k=2**63)


def test_term_explosion_is_a_limit_error():
    message = str(_error("input A[i]\nY[i] = A[i]" + " * (1 + 1)" * 20 + "\n"))
    assert "terms of a product of sums: 8192 is over the limit max_terms=4096" in message
    grads = "input W[]\nE[] = " + " * ".join(["W[]"] * 6) + "\n" + "".join(
        f"G{k}[] = grad({'E' if k == 1 else f'G{k - 1}'}, W)\n" for k in range(1, 7)
    )
    message = str(_error(grads, tndsl.TnNotSupportedError, limits=tndsl.Limits(max_terms=100)))
    assert message.startswith("prog.tn:5:8: terms of grad(...): 120 is over the limit max_terms=100")
    assert tndsl.compile(grads).G6().item() == 720  # 6! terms of W**0, no input left


def test_label_count_is_limited():
    text = "input A[i]\nY[] = " + " * ".join(f"A[l{k}]" for k in range(60)) + "\n"
    assert "distinct labels of 'Y': 60 is over the limit max_labels=50" in str(_error(text, limits=tndsl.Limits(max_labels=50)))
    assert tndsl.compile(text).Y(torch.ones(1)).item() == 1


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("TNDSL_MAX_TERMS", "3")
    assert "max_terms=3" in str(_error("input A[i]\nY[i] = A[i] + A[i] + A[i] + A[i]\n"))
    monkeypatch.setenv("TNDSL_MAX_TERMS", "many")
    with pytest.raises(tndsl.TnError, match="TNDSL_MAX_TERMS must be a positive integer"):
        tndsl.compile("input A[i]\nY[i] = A[i]\n")
    with pytest.raises(tndsl.TnError, match="max_depth must be a positive integer"):
        tndsl.Limits(max_depth=0)


def test_stale_size_entries_do_not_break_inlining():
    text = (
        "input A[(l o), m]\nsize l\npattern P = conv(stride=2, padding='valid', dilation=3)\n"
        "M[l] = P[l, j, m] * A[l, o, b] * A[l, o, m]\nY[] = A[l, o, m] * vjp(M, A, M)[o, j, a]\n"
    )
    program = tndsl.compile(text)  # was: KeyError 'l_1'
    with pytest.raises(tndsl.TnCallError, match="axis 0 of A has size 12"):
        program.Y(torch.ones(12, 7), l=3)  # l = o and l * o = 12 cannot both hold


def test_more_than_52_legs_with_a_diagonal():
    """Was a ValueError from einsum_equation: the diagonal is now a view, then a sum."""
    legs = [f"x{k}" for k in range(54)]
    use = ", ".join(legs[:-1] + legs[:1])
    program = tndsl.compile(f"input A[{', '.join(legs)}]\nY[] = A[{use}]\nZ[x3, x0] = A[{use}]\n", lowering=False)
    a = torch.randn([2, 1, 1, 3] + [1] * 49 + [2], dtype=torch.float64)
    expected = torch.einsum(a.reshape(2, 3, 2), [0, 1, 0], [1, 0])
    torch.testing.assert_close(program.Z(a), expected)
    torch.testing.assert_close(program.Y(a), expected.sum())
    pair = tndsl.compile(f"input A[{', '.join(legs)}]\ninput B[x1, x3]\nZ[x3, x0] = A[{use}] * B[x1, x3]\n", lowering=False)
    a, b = torch.randn([2, 4, 1, 3] + [1] * 49 + [2], dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(pair.Z(a, b), torch.einsum(a.reshape(2, 4, 3, 2), [0, 2, 1, 0], b, [2, 1], [1, 0]))


@pytest.mark.parametrize("separator", ["\f", "\v", "\u2028", "\r", "\x1c", "\x85"])
def test_caret_is_under_the_right_line(separator):
    message = str(_error(f"# a{separator}b\ninput A[i]\nY[i] = B[i]\n", tndsl.TnNameError))
    assert message.split("\n")[:3] == ["prog.tn:3:8: unknown tensor 'B'", "    Y[i] = B[i]", "           ^^^^"]


def test_control_characters_in_the_shown_line_are_blanked():
    message = str(_error("input A[i]\nY[i] = B[i]  # \x1b[2J\tx\n", tndsl.TnNameError))
    assert "\x1b" not in message and message.split("\n")[1] == "    Y[i] = B[i]  #  [2J x"


def test_kernel_size_inference_does_not_loop_over_sizes():
    from tndsl.ir import PatternSpec

    assert PatternSpec.create().kernel_size(10**12, 1) == 10**12
    assert PatternSpec.create(stride=2, dilation=3, padding=1).kernel_size(10**15, 10**12) is None
    spec = PatternSpec.create(stride=2, dilation=3, padding=1)
    kernel = spec.kernel_size(10**15, 10**14 + 1)
    assert kernel == 266666666666668 and spec.out_size(10**15, kernel) == 10**14 + 1


# -- derive ------------------------------------------------------------------------------------


def test_derive_prints_a_zero_network_that_compiles():
    from tndsl.tools.derive import derive_text

    text = "input C[a]\nE[] = C[a] * (0 * C[a])\nH = grad(E, C)\n"
    derived = derive_text(text)
    assert derived.splitlines()[-1] == "H[a] = 0 * C[a]"
    c = torch.arange(3.0)
    assert torch.equal(tndsl.compile(derived).H(c), tndsl.compile(text).H(c))
    assert tndsl.compile(derived).H.inputs == ("C",)


def test_zero_terms_keep_the_inputs_of_a_printed_network():
    program = tndsl.compile("input A[i]\ninput B[i]\nY[i] = 0 * A[i] + B[i]\nZ[i] = 0 * A[i] + 0 * B[i]\n")
    assert str(program.networks["Y"]) == "Y[i] = 0 * A[i] + B[i]"
    assert str(program.networks["Z"]) == "Z[i] = 0 * A[i] + 0 * B[i]"


def test_derive_error_has_a_position():
    from tndsl.tools.derive import derive_text

    text = "input A[i]\nsize k\nM[i] = A[i] * |k|\nN[k] = M[k]\nG = grad(N, A)\n"
    with pytest.raises(tndsl.TnNotSupportedError) as info:
        derive_text(text, filename="d.tn")
    assert str(info.value).startswith("d.tn:5:1: cannot print 'G' as .tn text: the size of its leg 'k_1'")


# -- found by the fuzz test ----------------------------------------------------------------------


def test_grad_renaming_chain_keeps_each_label_its_own_size():
    # grad renames the summed a -> b and b -> c at once; c used to get a's keyword size
    program = tndsl.compile("input A[(b c)]\nsize a\nsize c\nY[] = A[a, b]\nZ = grad(Y, A)\n")
    assert program.Z.keywords == ("a", "c")
    assert torch.equal(program.Z(a=2, c=3), torch.ones(6))


def test_declared_axis_sizes_hold_for_uses_a_rewrite_makes():
    text = "input A[b, o]\nsize o\nsize b = 1\nY[a, b] = A[b, a] * 2\nZ[] = vjp(Y, A, A)[a, c]\n"
    program = tndsl.compile(text)
    assert program.Z(torch.full((1, 1), 3.0)).item() == 6.0
    with pytest.raises(tndsl.TnCallError, match="size mismatch"):
        program.Z(torch.ones(2, 1))  # axis 0 of A is b, and size b = 1


def test_derive_renames_labels_a_size_declaration_would_change():
    from tndsl.tools.derive import derive_text

    text = "input A[(b c)]\nsize b\nsize c = 1\nY[] = A[a, a] * A[a, a]\nZ = grad(Y, A)\n"
    derived = derive_text(text)
    assert "Z[(b_1 c)] = A[b_1, b_1] * delta[b_1, c]" in derived
    a = torch.full((1,), 3.0)
    assert torch.equal(tndsl.compile(derived).Z(a), tndsl.compile(text).Z(a))
    text = "input A[b, o]\nsize o\nsize b = 1\nY[a, b] = A[b, a] * 2\nZ[] = vjp(Y, A, A)[a, c]\n"
    derived = derive_text(text)
    assert derived.endswith("size a_1 = 1\nZ[] = 2 * A[c, a_1]\n")
    with pytest.raises(tndsl.TnCallError):
        tndsl.compile(derived).Z(torch.ones(1, 2))  # as the original: a = 1


def test_derive_output_of_a_large_derivation_parses_again():
    from tndsl.tools.derive import derive_text

    text = "input W[]\nE[] = " + " * ".join(["W[]"] * 7) + "\n" + "".join(
        f"G{k}[] = grad({'E' if k == 1 else f'G{k - 1}'}, W)\n" for k in range(1, 5)
    )
    derived = derive_text(text)
    assert derived.count(" + ") >= 839  # G4: 7 * 6 * 5 * 4 terms
    w = torch.tensor(1.5, dtype=torch.float64)
    torch.testing.assert_close(tndsl.compile(derived).G4(w), tndsl.compile(text).G4(w))


def test_pattern_matrix_on_a_vector():
    """Found by the long fuzz run: a Π folded into a matrix and applied to a 1-d operand
    (``torch.matmul`` of a vector) broke the cost model's shape rule (IndexError)."""
    from tndsl.tools.reference import dense_reference

    program = tndsl.compile("input A[a]\npattern P = conv(padding=1)\nZ[] = -A[a] * A[j] * P[a, a, j]\nW[j] = A[a] * P[a, a, j]\n")
    x = torch.randn(3, dtype=torch.float64)
    for name in ("Z", "W"):
        torch.testing.assert_close(program[name](x), dense_reference(program[name].network, [x]))
