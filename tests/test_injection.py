"""No user text becomes code: exported modules and generated functions, read with ``ast``.

Hostile file names, definition and input names, comments, ``# check:`` lines and network
names go through compile, export and derive; the generated Python must parse, hold only
the statements and calls the compiler emits, and behave.
"""

from __future__ import annotations

import ast
import importlib.util
import keyword
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tndsl
from tndsl.backend.pysource import Namespace, identifier, is_identifier, literal
from tndsl.tools.derive import derive_text
from tndsl.tools.export import export_module, parameter_names, python_names

PAYLOAD = 'x""";__import__("os").system("touch PWNED");"""'
HOSTILE_TEXTS = [
    PAYLOAD,
    "x''';__import__('os').system('touch PWNED');'''",
    'a"b\'c\\d\ne\rf\x00g\u2028h\\',
    "}{; exec('1') #",
    "\udcff surrogate",
]

#: Call targets the exporter emits; ``_program[...]`` is a subscript call.
EXPORT_CALLS = {"_tndsl.compile", "_program[]"}
#: Methods and functions the code generator emits (:mod:`tndsl.backend.emit`).
TENSOR_METHODS = {
    "to", "reshape", "permute", "sum", "squeeze", "movedim", "unfold", "narrow", "expand",
    "contiguous", "transpose", "new_zeros", "as_strided", "copy_", "baddbmm_", "flatten", "index_select", "unflatten",
    "add", "long", "diagonal",
}
MODULE_FUNCTIONS = {"torch.einsum", "torch.baddbmm", "F.pad", "F.fold", "F.one_hot", "range", "min", "float"} | {
    f"{prefix}{n}d" for n in (1, 2, 3) for prefix in ("F.conv", "F.conv_transpose", "torch.nn.grad.conv")
} | {f"torch.nn.grad.conv{n}d_weight" for n in (1, 2, 3)}


def _target(func: ast.expr) -> str:
    """A call target as dotted text; a method on a local variable reads ``<var>.method``."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = _target(func.value)
        return f"{base}.{func.attr}"
    if isinstance(func, ast.Subscript):
        return _target(func.value) + "[]"
    return f"<{type(func).__name__}>"


def _calls(tree: ast.AST) -> set[str]:
    return {_target(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def assert_export_is_clean(text: str) -> ast.Module:
    """The exported module's statements and calls are exactly those the exporter writes."""
    tree = ast.parse(text)
    assert _calls(tree) <= EXPORT_CALLS, _calls(tree) - EXPORT_CALLS
    body = tree.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert len(imports) == 1 and [a.name for a in imports[0].names] == ["tndsl"]
    assigned = [t.id for node in body if isinstance(node, ast.Assign) for t in node.targets]
    assert assigned == ["__all__", "SOURCE", "_program"]
    functions = [node for node in body if isinstance(node, ast.FunctionDef)]
    assert len(body) == 5 + len(functions)
    for function in functions:
        assert not function.decorator_list and not function.args.defaults
        doc, ret = function.body
        assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)
        assert isinstance(ret, ast.Return) and isinstance(ret.value, ast.Call)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"__import__", "exec", "eval", "os", "open", "getattr", "compile", "globals"}
    return tree


def assert_function_is_clean(text: str) -> None:
    """A generated function: one def, a docstring, then only emitted calls."""
    tree = ast.parse(text)
    (function,) = tree.body
    assert isinstance(function, ast.FunctionDef) and function.name.startswith("tn_")
    doc = function.body[0]
    assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
    for target in _calls(tree):
        head, _, method = target.rpartition(".")
        assert target in MODULE_FUNCTIONS or (head.isidentifier() and method in TENSOR_METHODS), target
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"__import__", "exec", "eval", "os", "open", "getattr", "compile", "globals"}


def _import(text: str, tmp_path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


# -- the two functions every generated string goes through ------------------------------


def test_literal_round_trips_any_string():
    for text in HOSTILE_TEXTS:
        assert ast.literal_eval(literal(text)) == text
        assert isinstance(ast.parse(literal(text), mode="eval").body, ast.Constant)
    with pytest.raises(TypeError):
        literal(3)


def test_identifier_rejects_keywords_non_ascii_and_non_identifiers():
    for bad in ("lambda", "None", "a b", "x)", "é", "1a", "", 'a"'):
        assert not is_identifier(bad)
        with pytest.raises(ValueError):
            identifier(bad)
    assert identifier("t12") == "t12"


def test_namespace_renames_collisions_deterministically():
    names = Namespace().assign(["_x", "tn_x", "lambda", "x", "_", "tn_lambda"])
    assert names == {"_x": "tn_x_2", "tn_x": "tn_x", "lambda": "tn_lambda_2", "x": "x", "_": "tn_", "tn_lambda": "tn_lambda"}
    assert len(set(names.values())) == len(names)
    assert Namespace(["SOURCE"]).assign(["SOURCE"]) == {"SOURCE": "tn_SOURCE"}


# -- export ---------------------------------------------------------------------------------


def test_hostile_file_name_stays_inside_a_literal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    program = tndsl.compile("input A[i]\nY[i] = A[i]\n", filename=f"{PAYLOAD}.tn")
    text = export_module(program)
    assert_export_is_clean(text)
    module = _import(text, tmp_path, "hostile_name")
    assert not (tmp_path / "PWNED").exists()
    assert torch.equal(module.Y(torch.arange(3.0)), torch.arange(3.0))
    assert PAYLOAD in module.__doc__


def test_export_renames_collisions_and_stays_callable(tmp_path):
    text = (
        "input _A[i]\ninput tn_A[i]\ninput k[i]\nsize k\n"
        "_x[i] = _A[i]\ntn_x[i] = tn_A[i]\n"
        "Y[i, k] = _A[i] * tn_A[i] * k[i] * delta[k]\n"
        "lambda[i] = k[i]\nSOURCE[i] = k[i]\n"
    )
    program = tndsl.compile(text)
    names = python_names(program)
    assert names == {"_x": "tn_x_2", "tn_x": "tn_x", "Y": "Y", "lambda": "tn_lambda", "SOURCE": "tn_SOURCE"}
    assert parameter_names(program.Y) == ({"_A": "tn_A_2", "tn_A": "tn_A", "k": "k"}, {"k": "size_k"})
    module_text = export_module(program)
    assert_export_is_clean(module_text)
    module = _import(module_text, tmp_path, "collide")
    a, b, c = torch.ones(3), 2 * torch.ones(3), 3 * torch.ones(3)
    assert torch.equal(module.tn_x_2(a), a) and torch.equal(module.tn_x(b), b)
    assert module.Y(a, b, c, size_k=2).shape == (3, 2)
    assert torch.equal(module.Y(a, b, c, size_k=2)[:, 0], a * b * c)
    assert torch.equal(module.tn_SOURCE(c), c) and isinstance(module.SOURCE, str)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(filename=st.text(max_size=40), comment=st.text(max_size=40).map(lambda s: s.replace("\n", " ")))
def test_any_file_name_and_comment_export_cleanly(filename, comment):
    text = f"# {comment}\n# check: Y = dense() with A[3]\ninput A[i]\nY[i] = A[i] * 2  # {comment}\n"
    program = tndsl.compile(text, filename=filename)
    module_text = export_module(program)
    tree = assert_export_is_clean(module_text)
    source = [node for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "SOURCE"][0]
    assert source.value.value == text
    assert ast.get_docstring(tree, clean=False) == f"Generated by tndsl from {filename}; edit the .tn file instead."


KEYWORD_PROGRAM = "".join(f"input {k}_in[i]\n" for k in ("a",)) + "".join(
    f"{name}[i] = a_in[i]\n" for name in sorted(set(keyword.kwlist) - {"True", "False", "None"})[:6]
)


def test_keyword_and_dunder_names_export_cleanly(tmp_path):
    text = (
        "# check: import = dense() with __import__[2]\n"
        "# check: Y = dense(); __import__('os').system('touch PWNED') with A[2]\n"
        "input __import__[i]\ninput _program[i]\ninput _tndsl[i]\n"
        "import[i] = __import__[i] * _program[i] * _tndsl[i]\n"
        "class[i] = __import__[i]\n__all__[i] = _tndsl[i]\n"
    ) + KEYWORD_PROGRAM
    program = tndsl.compile(text, filename="evil.tn")
    module_text = export_module(program)
    assert_export_is_clean(module_text)
    module = _import(module_text, tmp_path, "keywords")
    x = torch.arange(1.0, 3.0)
    assert torch.equal(module.tn_import(x, x, x), x**3)
    assert torch.equal(module.tn_class(x), x) and torch.equal(module.tn_all__(x), x)
    assert isinstance(module.__all__, list) and "tn_all__" in module.__all__
    assert not (tmp_path / "PWNED").exists()


def test_derived_program_with_hostile_header_exports_cleanly(tmp_path):
    text = (
        f"# {PAYLOAD}\n# check: H = dense() with C[3]  \"\"\" ''' \\\n"
        "input C[a]\nE[] = C[a] * C[a] * 3\nH = grad(E, C)\n"
    )
    derived = derive_text(text, filename=PAYLOAD)
    assert derived.startswith(f"# {PAYLOAD}\n")
    module_text = export_module(tndsl.compile(derived, filename=PAYLOAD))
    assert_export_is_clean(module_text)
    module = _import(module_text, tmp_path, "derived")
    c = torch.arange(3.0)
    assert torch.equal(module.H(c), 6 * c)


# -- generated functions ----------------------------------------------------------------------


def test_network_name_reaches_the_docstring_as_a_literal():
    program = tndsl.compile("input X[i]\ninput W[i]\nE[] = X[i] * W[i] * W[i]\n")
    network = tndsl.rewrite.grad(program.networks["E"], "W", name=PAYLOAD)
    function = tndsl.Function(network)
    x, w = torch.arange(3.0), torch.ones(3)
    text = function.source(x, w)
    assert_function_is_clean(text)
    assert PAYLOAD in ast.get_docstring(ast.parse(text).body[0])
    assert torch.equal(function(x, w), 2 * x * w)


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path(__file__).resolve().parent.parent.joinpath("gallery").glob("*.tn")), ids=lambda p: p.name)
def test_gallery_sources_hold_only_emitted_calls(path):
    from tndsl.tools.check import parse_check_lines

    text = path.read_text(encoding="utf-8")
    program = tndsl.compile(text, filename=PAYLOAD)
    for spec in parse_check_lines(text):
        function = program[spec.definition]
        shapes = dict(spec.shapes)
        args = [
            torch.zeros(shapes[spec.name], dtype=torch.long) if spec.target else torch.ones(shapes[spec.name], dtype=torch.float64)
            for spec in function.network.inputs
        ]
        assert_function_is_clean(function.source(*args, **dict(spec.keywords)))
