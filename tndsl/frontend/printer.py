"""Printing the AST back as canonical ``.tn`` text (``parse(format(p)) == p``)."""

from __future__ import annotations

from ..ir.text import format_axes as _format_axes
from ..ir.text import format_labels, format_param
from . import ast

__all__ = ["format_program", "format_statement", "format_expr", "format_axes"]

_UNARY = 3
_ATOM = 4


def format_program(program: ast.Program) -> str:
    return "".join(format_statement(statement) + "\n" for statement in program.statements)


def format_axes(axes: tuple[ast.Axis, ...]) -> str:
    return _format_axes([(tuple(label.name for label in axis.labels), axis.grouped) for axis in axes])


def _labels(labels: tuple[ast.Label, ...]) -> str:
    return format_labels([label.name for label in labels])


def format_statement(statement: ast.Statement) -> str:
    if isinstance(statement, ast.InputDecl):
        return f"input {statement.name}{format_axes(statement.axes)}"
    if isinstance(statement, ast.IndexDecl):
        return f"index {statement.name}{format_axes(statement.axes)[:-1]} -> {format_axes((statement.target,))[1:]}"
    if isinstance(statement, ast.SizeDecl):
        return f"size {statement.name}" + ("" if statement.value is None else f" = {statement.value}")
    if isinstance(statement, ast.ParamDecl):
        return f"param {statement.name} = {format_param(statement.value)}"
    if isinstance(statement, ast.PatternDecl):
        params = ", ".join(
            f"{p.name}={p.value.name if isinstance(p.value, ast.ParamRef) else format_param(p.value)}" for p in statement.params
        )
        return f"pattern {statement.name} = {statement.kind}({params})"
    output = "" if statement.output is None else format_axes(statement.output)
    return f"{statement.name}{output} = {format_expr(statement.expr)}"


def _precedence(expr: ast.Expr) -> int:
    if isinstance(expr, ast.BinOp):
        return ast.PRECEDENCE[expr.op]
    if isinstance(expr, ast.Neg):
        return _UNARY
    return _ATOM


def format_expr(expr: ast.Expr) -> str:
    """An expression as canonical text, parenthesized where precedence needs it."""
    return ast.fold(expr, _format_node)


def _format_node(expr: ast.Expr, inner: tuple[str, ...]) -> str:
    """One node's text from its children's texts (see :func:`ast.fold`)."""
    if isinstance(expr, ast.Factor):
        return expr.name + ("" if expr.dim is None else f".{expr.dim}") + _labels(expr.labels)
    if isinstance(expr, ast.Call):
        args = (arg.name if isinstance(arg, ast.Label) else format_expr(arg) for arg in expr.args)
        text = f"{expr.func}({', '.join(args)})"
        return text + ("" if expr.labels is None else _labels(expr.labels))
    if isinstance(expr, ast.Number):
        return repr(expr.value)
    if isinstance(expr, ast.SizeRef):
        return f"|{expr.label.name}|"
    if isinstance(expr, ast.Neg):
        (operand,) = inner
        return "-" + (operand if _precedence(expr.operand) >= _UNARY else f"({operand})")
    level = ast.PRECEDENCE[expr.op]
    left, right = inner
    if _precedence(expr.left) < level:
        left = f"({left})"
    if _precedence(expr.right) <= level:
        right = f"({right})"
    return f"{left} {expr.op} {right}"
