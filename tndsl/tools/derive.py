"""``tndsl derive``: a program with its derived definitions expanded into plain ``.tn``.

Every derived definition (one whose expression holds ``grad``, ``vjp``, ``jvp`` or
``vmap``) is printed as the network it builds (``str(network)``); declarations stay, and
inputs made by ``vmap`` get their declarations after the input they extend.
"""

from __future__ import annotations

from typing import Sequence

from ..frontend import ast
from ..frontend.builder import build
from ..frontend.limits import Limits
from ..frontend.parser import parse
from ..frontend.printer import format_axes, format_statement
from ..ir import FreshNames, Kind, Network, ShapeOf, Source, Span, TnNameError, TnNotSupportedError, format_network, solve
from ..transforms.simplify import prune_deltas

__all__ = ["derive_text"]


def _contains_call(expr: ast.Expr) -> bool:
    return any(isinstance(node, ast.Call) for node in ast.walk(expr))


def _printable(network: Network, decls, fresh: FreshNames, span: Span | None) -> tuple[Network, list[ast.SizeDecl]]:
    """Rename labels whose size only the size table knows; declare their sizes. A label
    whose size is a keyword that text cannot give it is an error at ``span``."""
    # the sizes that re-parsing the printed definition will find
    table: dict[str, int | str] = {}
    for label in network.labels:
        if label in decls.sizes:
            value = decls.sizes[label]
            table[label] = label if value is None else value
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is Kind.INPUT:
                for declared, leg in zip(decls.inputs[tensor.name].legs, tensor.legs):
                    if decls.sizes.get(declared) is not None:
                        table[leg] = decls.sizes[declared]
    probe = Network(network.name, network.output, network.terms, network.inputs, network.patterns, tuple(table.items()))
    _, loose = solve(probe, None, strict=True)  # what re-parsing cannot fix exactly
    _, guessed = solve(probe, None)
    original = dict(network.sizes)
    mapping: dict[str, str] = {}
    new_sizes: list[ast.SizeDecl] = []
    for label in loose:
        size = original.get(label)
        if isinstance(size, int):
            mapping[label] = fresh(label)
            new_sizes.append(ast.SizeDecl(mapping[label], size))
        elif isinstance(size, (str, ShapeOf)):
            # a keyword size (an input's leg cannot be written in .tn: it becomes a keyword)
            keyword = size if isinstance(size, str) else label
            if keyword != label:
                if keyword in network.labels or keyword in mapping.values():
                    raise TnNotSupportedError(
                        f"cannot print '{network.name}' as .tn text: the size of its leg '{label}' is the keyword "
                        f"size '{keyword}', whose label names another leg",
                        span,
                        f"use another label for the leg of size '{keyword}' in the definitions it derives from",
                    )
                mapping[label] = keyword
            if keyword not in decls.sizes and all(d.name != keyword for d in new_sizes):
                new_sizes.append(ast.SizeDecl(keyword, None))
        elif label not in guessed:
            continue  # guessed by a strided pattern here and in the original alike
        else:
            raise TnNotSupportedError(
                f"cannot print '{network.name}' as .tn text: the size of its leg '{label}' has no source in text", span
            )
    if not mapping and not new_sizes:
        return network, []
    terms = tuple(term.renamed(mapping) for term in network.terms)
    output = tuple(tuple(mapping.get(l, l) for l in group) for group in network.output)
    return Network(network.name, output, terms, network.inputs, network.patterns, network.sizes), new_sizes


def derive_text(
    text: str, names: Sequence[str] = (), simplify: bool = False, filename: str = "<string>", limits: Limits | None = None
) -> str:
    """The program with derived definitions expanded into plain ``.tn`` definitions.

    ``names`` restricts the expansion to those definitions (all derived ones by default).
    With ``simplify``, shape-independent simplifications (:func:`tndsl.simplify.prune_deltas`)
    are applied first. Declarations are kept; vmapped inputs get their declarations. The
    file's header comment (the comment lines before its first statement, with any
    ``# check:`` lines) is kept, so a derived gallery program still checks itself.
    """
    program = parse(text, filename, limits)
    decls, networks = build(program, limits)
    for wanted in names:
        if wanted not in decls.definitions:
            raise TnNameError(f"no definition named '{wanted}'; defined: {', '.join(decls.definitions)}")
    fresh = FreshNames(_all_names(program, networks))
    declared = {s.name for s in program.statements if isinstance(s, (ast.InputDecl, ast.IndexDecl))}
    # inputs created by vmap follow, in declaration order, the declared input they extend
    added: dict[str, list[str]] = {}
    anchor = None
    for input_name in decls.inputs:
        if input_name in declared:
            anchor = input_name
        elif anchor is not None:
            added.setdefault(anchor, []).append(input_name)
    lines: list[str] = []
    for line in Source(text).lines():  # lines as the parser counts them
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line.rstrip())
    for statement in program.statements:
        if isinstance(statement, ast.Definition) and _contains_call(statement.expr) and (not names or statement.name in names):
            network = networks[statement.name]
            if simplify:
                network = prune_deltas(network)
            network, sizes = _printable(network, decls, fresh, statement.span)
            lines.extend(format_statement(s) for s in sizes)
            lines.append(format_network(network, statement.name))
        else:
            lines.append(format_statement(statement))
        if isinstance(statement, ast.InputDecl):
            for new in added.get(statement.name, []):
                spec = decls.inputs[new]
                axes = tuple(ast.Axis(tuple(ast.Label(l) for l in axis), len(axis) > 1) for axis in spec.axes)
                lines.append(f"input {new}{format_axes(axes)}")
    return "".join(line + "\n" for line in lines)


def _all_names(program: ast.Program, networks: dict[str, Network]) -> set[str]:
    used: set[str] = set()
    for network in networks.values():
        used.update(network.labels)
    for statement in program.statements:
        used.add(statement.name)
        if isinstance(statement, ast.IndexDecl):
            used.update(label.name for label in statement.target.labels)
        if isinstance(statement, (ast.InputDecl, ast.IndexDecl)):
            used.update(label.name for axis in statement.axes for label in axis.labels)
    return used
