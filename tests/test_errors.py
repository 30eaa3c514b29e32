"""Every static and call-time error: class, exact position, and what it names."""

from __future__ import annotations

import pytest
import torch

import tndsl
from tndsl.ir import (
    TnArityError,
    TnCallError,
    TnDefinitionError,
    TnNameError,
    TnPatternError,
    TnSizeError,
    TnSyntaxError,
)

STATIC = [
    # (source, error class, line, col, fragment)
    ("input A[i, j]\nB[i] = A[i, j] * Q[j]", TnNameError, 2, 18, "unknown tensor 'Q'"),
    ("input A[i, j]\nB[i] = A[i]", TnArityError, 2, 8, "has 2 legs [i, j] but 1 labels"),
    ("input A[i, j]\npattern P = conv()\nB[i] = A[i, j] * P[j, o]", TnArityError, 3, 18, "pattern P has 3 legs"),
    ("input A[i, j]\nB[i, j] = A[i, j]\nC[i] = B[i]", TnArityError, 3, 8, "B has 2 legs"),
    ("input A[i, j]\nB[i, k] = A[i, j]", TnNameError, 2, 6, "output label 'k' does not occur"),
    ("input A[i, j]\nB[(i k)] = A[i, j]", TnNameError, 2, 6, "output label 'k'"),
    ("input A[i, j]\nB[i, i] = A[i, j]", TnDefinitionError, 2, 6, "label 'i' appears twice"),
    ("input A[i]\nsize i = 3\nsize j = 4\nB[i] = A[i] * delta[i, j]", TnSizeError, 4, 1, "size mismatch for leg"),
    ("input A[i]\nsize k\nsize k = 2\nB[i] = A[i]", TnDefinitionError, 3, 6, "duplicate size declaration"),
    ("input A[i]\nB[i, k] = A[i] * delta[k]", TnSizeError, 2, 6, "cannot infer the size of leg 'k'"),
    ("input A[i]\npattern P = conv(stride=2)\nB[o] = A[i] * P[i, o, k]", TnSizeError, 3, 23, "cannot infer the size of leg 'k'"),
    ("input A[i]\ninput A[j]", TnDefinitionError, 2, 7, "duplicate definition of 'A'"),
    ("input A[i]\nB[i] = A[i]\nB[i] = 2 * A[i]", TnDefinitionError, 3, 1, "duplicate definition of 'B'"),
    ("input A[i]\nB[i] = C[i]\nC[i] = B[i]", TnDefinitionError, 3, 8, "cyclic definition: B -> C -> B"),
    ("input A[i]\nB[i] = B[i] * A[i]", TnDefinitionError, 2, 8, "cyclic definition: B -> B"),
    ("pattern P = conv(stride=0)", TnPatternError, 1, 18, "stride must be a positive integer"),
    ("pattern P = conv(dilation=0)", TnPatternError, 1, 18, "dilation must be a positive integer"),
    ("pattern P = conv(padding='full')", TnPatternError, 1, 18, "padding must be"),
    ("pattern P = conv(stride=2, padding='same')", TnPatternError, 1, 28, "'same' needs stride=1"),
    ("pattern P = conv(stride=2, output_padding=2)", TnPatternError, 1, 28, "output_padding must be smaller"),
    ("pattern P = conv(strides=2)", TnPatternError, 1, 18, "unknown parameter 'strides'"),
    ("pattern P = conv(stride=1, stride=2)", TnPatternError, 1, 28, "given twice"),
    ("pattern P = pool(stride=2)", TnPatternError, 1, 13, "unknown pattern kind 'pool'"),
    ("input A[i]\nB[i] = A[i] / A[i]", TnDefinitionError, 2, 15, "divides by numbers and sizes only"),
    ("input A[i]\nB[i] = A[i] / (2 - 2)", TnDefinitionError, 2, 16, "division by zero"),
    ("input A[i]\nB = A", TnSyntaxError, 2, 6, "unexpected end of line"),
    ("input A[i]\nB = foo(A, A)", TnNameError, 2, 5, "unknown function 'foo'"),
    ("input delta[i]", TnDefinitionError, 1, 7, "'delta' is the built-in"),
    ("input A[i, i]", TnDefinitionError, 1, 12, "label 'i' appears twice in the declaration of A"),
    ("input A[(i j)]\nB[i] = A[i, j]", TnSizeError, 2, 3, "cannot infer the size of leg 'i'"),
]


@pytest.mark.parametrize("source, error, line, col, fragment", STATIC)
def test_static_errors(source, error, line, col, fragment):
    with pytest.raises(error) as info:
        tndsl.compile(source, "prog.tn")
    message = str(info.value)
    assert message.startswith(f"prog.tn:{line}:{col}: "), message
    assert fragment in message, message
    lines = message.splitlines()
    assert lines[1].strip() == source.splitlines()[line - 1].strip()
    assert lines[2].index("^") == 4 + col - 1


def test_unknown_tensor_suggests_a_close_name():
    with pytest.raises(TnNameError, match="did you mean 'Weight'"):
        tndsl.compile("input Weight[i]\nB[i] = Wieght[i]")


def test_errors_all_derive_from_tnerror():
    for _, error, *_ in STATIC:
        assert issubclass(error, tndsl.TnError)


PROGRAM = """input A[i, j]
input B[j, k]
input G[(g c)]
size q
size g
C[i, k] = A[i, j] * B[j, k]
D[g, c] = G[g, c] * delta[q]
"""


@pytest.fixture(scope="module")
def program():
    return tndsl.compile(PROGRAM, "call.tn")


def _call_error(function, *args, **kwargs) -> str:
    with pytest.raises(TnCallError) as info:
        function(*args, **kwargs)
    return str(info.value)


def test_call_size_mismatch_names_tensor_leg_and_sizes(program):
    message = _call_error(program.C, torch.ones(2, 3), torch.ones(4, 5))
    assert message.startswith("call.tn:6:1: ")
    assert "leg 'j'" in message and "B" in message and "A" in message and "4" in message and "3" in message


def test_call_wrong_rank(program):
    message = _call_error(program.C, torch.ones(2, 3, 1), torch.ones(3, 5))
    assert "argument 'A' must have 2 axes [i, j], got shape (2, 3, 1)" in message


def test_call_wrong_number_and_kind(program):
    assert "takes 2 tensor arguments" in _call_error(program.C, torch.ones(2, 3), torch.ones(3, 5), torch.ones(1))
    assert "missing tensor argument(s): B" in _call_error(program.C, torch.ones(2, 3))
    assert "must be a torch.Tensor, not list" in _call_error(program.C, [[1.0]], torch.ones(3, 5))
    assert "given twice" in _call_error(program.C, torch.ones(2, 3), torch.ones(3, 5), A=torch.ones(2, 3))
    assert "unexpected argument 'X'" in _call_error(program.C, torch.ones(2, 3), torch.ones(3, 5), X=1)


def test_call_keyword_sizes(program):
    assert "missing size keyword argument(s): g=, q=" in _call_error(program.D, torch.ones(6))
    assert "must be a positive integer" in _call_error(program.D, torch.ones(6), g=0, q=1)
    message = _call_error(program.D, torch.ones(6), g=4, q=1)
    assert "axis 0 of G has size 6" in message and "do not divide" in message
    assert program.D(torch.ones(6), g=2, q=3).shape == (2, 3)


def test_call_pattern_empty_output():
    program = tndsl.compile("input X[i]\nsize k\npattern P = conv()\nY[o] = X[i] * P[i, o, k]", "p.tn")
    message = _call_error(program.Y, torch.ones(2), k=5)
    assert message.startswith("p.tn:4:1: ") and "empty output" in message


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    from tndsl.tools.cli import main

    bad = tmp_path / "bad.tn"
    bad.write_text("input A[i]\nB[i] = A[i] * Q[i]\n")
    assert main(["compile", str(bad), "-o", str(tmp_path / "x.py")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:2:15: unknown tensor 'Q'") and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        main(["compile"])
    assert info.value.code == 2
