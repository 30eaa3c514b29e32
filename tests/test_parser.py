"""Parser: round trips through the printer, positioned syntax errors, and fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tndsl
from tndsl.frontend import ast
from tndsl.ir import TnError, TnSyntaxError
from tndsl.frontend.parser import parse
from tndsl.frontend.printer import format_program

PROGRAM = """
# conv2d.tn - comments run to the end of the line
input X[n, c_in, i1, i2]            # an argument
input W[c_out, c_in, k1, k2]
input G[n, (g c), i]
size g = 2
size k
pattern P = conv(stride=2, padding=1, dilation=1)
pattern Q = conv(padding='same')
pattern R = conv(padding=(0, 1), output_padding=0)

Y[n, c_out, o1, o2] = X[n, c_in, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[c_out, c_in, k1, k2]
K[a, b] = U[n, a] * U[n, b] / |n|
Z[n, (c k)] = (A[n, c] +
   B[n, c]) * 2.5 - -C[k] * 1e-3
t[] = A[i, i]
M[a] = A[a, b] - (B[a, b] - C[a, b]) - D[a] / (2 * |b|)
G2 = vjp(Y, W, V)
G3[a, b] = vjp(Y, W, V)[a, b] + grad(Y, W)[a, b]
"""


def test_round_trip_keeps_the_ast():
    program = parse(PROGRAM, "x.tn")
    text = format_program(program)
    assert parse(text) == program
    assert format_program(parse(text)) == text


def test_ast_shapes():
    program = parse(PROGRAM)
    kinds = [type(s).__name__ for s in program.statements]
    assert kinds[:4] == ["InputDecl", "InputDecl", "InputDecl", "SizeDecl"]
    group = program.statements[2].axes[1]
    assert group.grouped and [label.name for label in group.labels] == ["g", "c"]
    params = {p.name: p.value for p in program.statements[7].params}
    assert params == {"padding": (0, 1), "output_padding": 0}
    z = next(s for s in program.statements if isinstance(s, ast.Definition) and s.name == "Z")
    assert z.output[1].grouped
    g2 = next(s for s in program.statements if isinstance(s, ast.Definition) and s.name == "G2")
    assert g2.output is None and isinstance(g2.expr, ast.Call) and g2.expr.labels is None


def test_positions_are_kept():
    program = parse("input A[i, j]\nB[i] = A[i, j]\n", "p.tn")
    definition = program.statements[1]
    assert (definition.span.line, definition.span.col) == (2, 1)
    factor = definition.expr
    assert (factor.span.line, factor.span.col) == (2, 8)
    assert (factor.labels[1].span.line, factor.labels[1].span.col) == (2, 13)


def test_expressions_continue_inside_brackets():
    text = "input A[i,\n  j]\nB[i] = (A[i, j]\n  * 2)\n"
    assert len(parse(text).statements) == 2


@pytest.mark.parametrize(
    "text, line, col, fragment",
    [
        ("Y[a] = A[a", 1, 11, "unexpected end of input"),
        ("input X[", 1, 9, "unexpected end of input"),
        ("Y[a] = A[a] * * B[a]", 1, 15, "unexpected '*'"),
        ("Y[a] = A[a] $ 3", 1, 13, "unexpected character '$'"),
        ("input A[i]\npattern P = conv(stride=)", 2, 25, "unexpected ')'"),
        ("input A[i]\n\nY[a] = A[a] A[a]", 3, 13, "unexpected 'A'"),
        ("size n = x", 1, 10, "an integer"),
        ("Y[a] = A[a] * 1e999", 1, 15, "too large"),
    ],
)
def test_syntax_errors_are_positioned(text, line, col, fragment):
    with pytest.raises(TnSyntaxError) as info:
        parse(text, "bad.tn")
    message = str(info.value)
    assert message.startswith(f"bad.tn:{line}:{col}:"), message
    assert fragment in message
    assert "^" in message.splitlines()[-1]


def test_expected_tokens_are_readable():
    with pytest.raises(TnSyntaxError) as info:
        parse("Y[a] = A[a] * * B[a]", "bad.tn")
    message = str(info.value)
    assert "a name" in message and "NAME" not in message and "LSQB" not in message


_TOKENS = [
    "input", "size", "pattern", "conv", "X", "Y", "a", "b", "[", "]", "(", ")", ",", "=", "*", "+", "-", "/",
    "|", "1", "2.5", "'same'", "#c", "\n", " ", "vjp", "delta", "$", "\\\n", "1e3", "@",
]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_fuzz_random_tokens_give_success_or_tnerror(tokens):
    try:
        tndsl.compile(" ".join(tokens))
    except TnError:
        pass


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, 10**6))
def test_fuzz_mutated_programs_give_success_or_tnerror(seed):
    rng = random.Random(seed)
    chars = list(PROGRAM)
    for _ in range(rng.randint(1, 6)):
        position = rng.randrange(len(chars))
        action = rng.random()
        if action < 0.4:
            del chars[position]
        elif action < 0.8:
            chars.insert(position, rng.choice("[](),=*+-/|#\n abXY0'"))
        else:
            chars[position], chars[-position] = chars[-position], chars[position]
    try:
        tndsl.compile("".join(chars))
    except TnError:
        pass


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=60))
def test_fuzz_arbitrary_text(text):
    try:
        tndsl.compile(text)
    except TnError:
        pass
