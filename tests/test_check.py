"""``tndsl check`` (check lines, rows, table, exit code) and the dense reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tndsl
from tndsl.tools.check import (
    REFERENCES,
    TnCheckError,
    check_file,
    check_main,
    format_table,
    parse_check_lines,
    relative_error,
)
from tndsl.backend.constants import dense_delta
from tndsl.tools.reference import dense_reference

CONV = """\
# check: Y = conv2d(X, W, b, stride=2, padding=(0, 1), dilation=1, groups=2) with X[2, 4, 7, 6], W[6, 2, 3, 2], b[6]
input X[n, (g c), i1, i2]
input W[(g d), c, k1, k2]
input b[(g d)]
pattern P = conv(stride=2, padding=(0, 1))
Y[n, (g d), o1, o2] = X[n, g, c, i1, i2] * P[i1, o1, k1] * P[i2, o2, k2] * W[g, d, c, k1, k2] + b[g, d]
"""



def _write(tmp_path: Path, text: str, name: str = "t.tn") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the check line -------------------------------------------------------------------------
def test_parse_check_line():
    (spec,) = parse_check_lines(CONV)
    assert spec.definition == "Y"
    assert spec.reference == "conv2d"
    assert spec.arguments == ("X", "W", "b")
    assert dict(spec.params) == {"stride": 2, "padding": (0, 1), "dilation": 1, "groups": 2}
    assert dict(spec.shapes) == {"X": (2, 4, 7, 6), "W": (6, 2, 3, 2), "b": (6,)}
    assert spec.keywords == ()


def test_parse_strings_keywords_and_dense():
    text = (
        "#check: U = unfold1d(X, kernel_size=3, padding='same') with X[2, 3, 5], k=3\n"
        "  #   check :  K = dense()   with A[3, 4]\n"
        "# a comment that mentions check: but is not one\n"
    )
    first, second = parse_check_lines(text)
    assert dict(first.params) == {"kernel_size": 3, "padding": "same"}
    assert first.keywords == (("k", 3),)
    assert second.reference == "dense" and second.arguments == () and dict(second.shapes) == {"A": (3, 4)}


@pytest.mark.parametrize(
    "line, col, words",
    [
        ("# check: Y = conv9d(X) with X[1, 2, 3]", 14, "unknown reference 'conv9d'"),
        ("# check: Y = __import__('os') with X[1]", 14, "unknown reference '__import__'"),
        ("# check: Y = conv1d(X, stride=2+1) with X[1, 2, 3]", 32, "unexpected character"),
        ("# check: Y = conv1d(X, stride=2 1) with X[1, 2, 3]", 33, "expected ',' or ')'"),
        ("# check: Y = conv1d(X, stride=eval) with X[1, 2, 3]", 31, "expected an integer, a tuple"),
        ("# check: Y = conv1d(X; stride=2) with X[1, 2, 3]", 22, "unexpected character"),
        ("# check: Y = conv1d(stride=2, X) with X[1, 2, 3]", 31, "positional argument after a parameter"),
        ("# check: Y = conv1d(X, stride=1, stride=2) with X[1, 2, 3]", 34, "parameter 'stride' given twice"),
        ("# check: Y = conv1d(X) with X[1, 0, 3]", 29, "shape of X must be positive"),
        ("# check: Y = conv1d(X) with X[1, 2, 3] extra", 40, "unexpected 'extra'"),
        ("# check: Y conv1d(X)", 12, "expected '='"),
    ],
)
def test_malformed_check_lines_are_positioned(line, col, words):
    with pytest.raises(TnCheckError) as info:
        parse_check_lines("input X[i]\n" + line + "\n", "c.tn")
    message = str(info.value)
    assert message.startswith(f"c.tn:2:{col}: "), message
    assert words in message


def test_nothing_is_evaluated(tmp_path, monkeypatch):
    """Parameter values are literals; names are only looked up in the fixed table."""
    called = []
    monkeypatch.setattr("builtins.eval", lambda *a, **k: called.append(a))
    path = _write(tmp_path, "# check: Y = dense(X, note='__import__(\"os\").system(\"false\")') with X[2]\ninput X[i]\nY[i] = X[i]\n")
    rows = check_file(path)
    assert rows[0].passed and not called
    assert set(REFERENCES) >= {f"{op}{n}d" for op in ("conv", "conv_transpose", "unfold", "kfc") for n in (1, 2, 3)}


# -- rows -----------------------------------------------------------------------------------
def test_check_file_passes(tmp_path):
    rows = check_file(_write(tmp_path, CONV))
    assert len(rows) == 1
    row = rows[0]
    assert row.passed, row
    assert row.op == "Y" and row.reference == "conv2d"
    assert row.error is not None and row.error <= 1e-10
    assert row.dense_error is not None and row.dense_error <= 1e-10
    assert "X[2,4,7,6]" in row.shapes


def test_wrong_reference_parameters_fail(tmp_path):
    rows = check_file(_write(tmp_path, CONV.replace("padding=(0, 1), dilation=1", "padding=(1, 0), dilation=1")))
    assert not rows[0].passed
    assert rows[0].error > 1e-3 and rows[0].dense_error <= 1e-10


def test_shape_mismatch_with_reference_fails(tmp_path):
    rows = check_file(_write(tmp_path, CONV.replace("stride=2, padding=(0, 1), dilation=1", "stride=1, padding=(0, 1), dilation=1")))
    assert not rows[0].passed and "shape" in rows[0].message


def test_missing_check_line_and_unknown_definition_fail(tmp_path):
    text = CONV + "Z[n] = X[n, g, c, i1, i2] * W[g, d, c, k1, k2]\n# check: Q = dense() with X[1]\n"
    rows = check_file(_write(tmp_path, text))
    by_op = {row.op: row for row in rows}
    assert by_op["Y"].passed
    assert not by_op["Z"].passed and "no '# check:' line" in by_op["Z"].message
    assert not by_op["Q"].passed and "no definition named 'Q'" in by_op["Q"].message


def test_missing_shapes_and_call_errors_fail(tmp_path):
    rows = check_file(_write(tmp_path, CONV.replace(", b[6]", "")))
    assert not rows[0].passed and "no shape given for b" in rows[0].message
    rows = check_file(_write(tmp_path, CONV.replace("b[6]", "b[5]")))
    assert not rows[0].passed and "calling 'Y'" in rows[0].message or "size" in rows[0].message


def test_broken_file_is_one_failing_row(tmp_path):
    rows = check_file(_write(tmp_path, "input X[i\n"))
    assert len(rows) == 1 and not rows[0].passed and "t.tn:1:" in rows[0].message
    rows = check_file(tmp_path / "missing.tn")
    assert len(rows) == 1 and not rows[0].passed and "cannot read" in rows[0].message


def test_dense_only_check(tmp_path):
    text = "# check: G = dense() with A[3, 4]\ninput A[n, a]\nG[a, b] = A[n, a] * A[n, b] / |n|\n"
    (row,) = check_file(_write(tmp_path, text))
    assert row.passed and row.error is None and row.dense_error <= 1e-12


def test_float32(tmp_path):
    (row,) = check_file(_write(tmp_path, CONV), dtype=torch.float32)
    assert row.passed and row.error <= 1e-5


# -- table and exit code ------------------------------------------------------------------
def test_format_table_and_check_main(tmp_path, capsys):
    good = _write(tmp_path, CONV, "good.tn")
    bad = _write(tmp_path, CONV.replace("conv2d(X, W, b, stride=2", "conv2d(X, W, b, stride=3"), "bad.tn")
    table = format_table(check_file(good) + check_file(bad))
    lines = table.splitlines()
    assert lines[0].split() == ["file", "op", "reference", "shapes", "rel.err", "vs", "dense", "status"]
    assert "good.tn" in lines[2] and lines[2].rstrip().endswith("ok")
    assert "bad.tn" in lines[3] and "FAIL" in lines[3]
    assert lines[-1] == "1/2 passed"
    assert check_main([str(good)]) == 0
    assert "1/1 passed" in capsys.readouterr().out
    assert check_main([str(good), str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert check_main([]) == 1  # nothing checked is not a pass


def test_relative_error():
    a = torch.tensor([1.0, 2.0, -4.0], dtype=torch.float64)
    assert relative_error(a, a) == 0.0
    assert relative_error(a + 1e-3, a) == pytest.approx(1e-3 / 4)
    assert relative_error(a, torch.zeros(2, dtype=torch.float64)) == float("inf")
    assert relative_error(torch.full((2,), 1e-3), torch.zeros(2)) == pytest.approx(1e-3)


# -- the dense reference --------------------------------------------------------------------
def _dense(text: str, name: str, *tensors, **keywords):
    program = tndsl.compile(text, promote=True)
    return program[name](*tensors, **keywords), dense_reference(program.networks[name], list(tensors), keywords)


def test_dense_reference_conv_with_groups_matches_torch():
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 2, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    program = tndsl.compile(CONV)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), w, b, stride=2, groups=2)
    torch.testing.assert_close(dense_reference(program.networks["Y"], [x, w, b]), expected, rtol=1e-12, atol=1e-12)
    by_name = dense_reference(program.networks["Y"], {"X": x, "W": w, "b": b})
    torch.testing.assert_close(by_name, expected, rtol=1e-12, atol=1e-12)


def test_dense_reference_traces_deltas_sums_and_coefficients():
    a = torch.randn(3, 3, dtype=torch.float64)
    text = (
        "input A[i, j]\n"
        "t[] = A[i, i]\n"
        "D[i, j] = A[i, j] * delta[i, j, k] + 2 * delta[k] / |k|\n"
        "E[a, b] = delta[a, c] * A[c, b] * 3 - A[b, a]\n"
        "R[i] = delta[i] * A[i, j]\n"
        "S[(i j)] = A[i, j] * |i| + A[j, i]\n"
    )
    program = tndsl.compile(text)
    expected = {
        "t": torch.trace(a),
        "D": torch.diag(torch.diag(a)) + 2,
        "E": 3 * a - a.T,
        "R": a.sum(1),
        "S": (a * 3 + a.T).reshape(9),
    }
    for name, value in expected.items():
        torch.testing.assert_close(dense_reference(program.networks[name], [a]), value, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(program[name](a), value, rtol=1e-12, atol=1e-12)


def test_dense_reference_split_inputs_keywords_and_broadcast():
    text = "size g\ninput X[(g c), t]\ninput b[c]\nY[t, g, c] = X[g, c, t] + b[c]\n"
    x = torch.randn(6, 5, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    value, dense = _dense(text, "Y", x, b, g=2)
    expected = x.reshape(2, 3, 5).permute(2, 0, 1) + b
    torch.testing.assert_close(dense, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)


def test_dense_reference_promotes_dtypes():
    text = "input A[i, j]\ninput v[j]\ny[i] = A[i, j] * v[j]\n"
    value, dense = _dense(text, "y", torch.ones(2, 3, dtype=torch.float32), torch.ones(3, dtype=torch.float64))
    assert dense.dtype == torch.float64 == value.dtype


def test_dense_reference_argument_errors():
    program = tndsl.compile(CONV)
    with pytest.raises(tndsl.TnCallError):
        dense_reference(program.networks["Y"], [torch.ones(2, 4, 7, 6)])
    with pytest.raises(tndsl.TnCallError):
        dense_reference(program.networks["Y"], {"X": torch.ones(2, 4, 7, 6)})
    with pytest.raises(tndsl.TnCallError):
        dense_reference(program.networks["Y"], [torch.ones(2, 4, 7), torch.ones(6, 2, 3, 2), torch.ones(6)])


def test_dense_delta():
    d = dense_delta(3, 2, torch.float64)
    assert d.shape == (2, 2, 2) and d.sum() == 2 and d[1, 1, 1] == 1 and d[0, 1, 1] == 0
    assert torch.equal(dense_delta(1, 3, torch.float64), torch.ones(3, dtype=torch.float64))


def test_dense_reference_does_not_use_the_planner():
    import ast

    import tndsl.tools.reference as reference

    tree = ast.parse(Path(reference.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if "plan" in name or "lower" in name or "codegen" in name}
