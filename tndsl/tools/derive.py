"""``tndsl derive``: a program with its derived definitions expanded into plain ``.tn``.

Every derived definition (one whose expression holds ``grad``, ``vjp``, ``jvp`` or
``vmap``) is printed as the network it builds (``str(network)``); declarations stay, and
inputs made by ``vmap`` get their declarations after the input they extend.
"""

from __future__ import annotations

from dataclasses import replace
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


def _reparsed_sizes(network: Network, decls) -> dict[str, int | str]:
    """The sizes that re-parsing the printed definition will give its labels: ``size``
    declarations by label, and declared sizes of the input axes the labels sit on."""
    table: dict[str, int | str] = {}
    for label in network.labels:
        if label in decls.sizes:
            table[label] = decls.declared_size(label)
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is Kind.INPUT:
                for declared, leg in zip(decls.inputs[tensor.name].legs, tensor.legs):
                    if decls.sizes.get(declared) is not None:
                        table[leg] = decls.sizes[declared]
    return table


def _renamed(network: Network, mapping: dict[str, str]) -> Network:
    """``network`` with labels renamed everywhere: terms, output and size table."""
    if not mapping:
        return network
    terms = tuple(term.renamed(mapping) for term in network.terms)
    output = tuple(tuple(mapping.get(label, label) for label in group) for group in network.output)
    sizes = tuple(sorted((mapping.get(label, label), size) for label, size in network.sizes))
    return replace(network, output=output, terms=terms, sizes=sizes)


def _printable(
    network: Network, decls, fresh: FreshNames, span: Span | None, elsewhere: frozenset[str] = frozenset()
) -> tuple[Network, list[ast.SizeDecl]]:
    """The network with labels renamed so that its printed text means the same, and the
    ``size`` declarations that text needs:

    - a label a ``size`` declaration would give another size than it has gets a fresh name;
    - a label whose fixed size the text would not fix (it would be inferred, or unknown)
      gets a fresh name and a ``size`` declaration;
    - a label whose size is a keyword the text cannot infer is named after the keyword.

    A label whose size text cannot state is an error at ``span``.
    """
    table = dict(network.sizes)
    clash = [label for label in network.labels if label in decls.sizes and decls.declared_size(label) != table.get(label)]
    network = _renamed(network, {label: fresh(label) for label in clash})
    table = dict(network.sizes)
    reparsed = _reparsed_sizes(network, decls)
    probe = replace(network, sizes=tuple(reparsed.items()))
    values, unknown = solve(probe, None)
    guessed = set(solve(probe, None, strict=True)[1]) - set(unknown)  # only a strided Π's guess gives these
    mapping: dict[str, str] = {}
    new_sizes: list[ast.SizeDecl] = []
    for label in network.labels:
        size = table.get(label)
        if isinstance(size, int) and values.get(label) != size:
            mapping[label] = fresh(label)
            new_sizes.append(ast.SizeDecl(mapping[label], size))
        elif label not in unknown and not (label in guessed and isinstance(size, (str, ShapeOf))):
            continue
        elif isinstance(size, (str, ShapeOf)) and (size if isinstance(size, str) else label) not in mapping.values() and (
            isinstance(size, ShapeOf) or size == label or size not in network.labels
        ):
            # a keyword size, or an input's leg (text cannot say that): a keyword named after the
            # leg — a fresh name where other definitions use the label (a declaration is global)
            keyword = size if isinstance(size, str) else (fresh(label) if label in elsewhere else label)
            if keyword != label:
                mapping[label] = keyword
            if keyword not in decls.sizes and all(d.name != keyword for d in new_sizes):
                new_sizes.append(ast.SizeDecl(keyword, None))
        else:
            raise TnNotSupportedError(
                f"cannot print '{network.name}' as .tn text: the size of its leg '{label}' has no source in text", span
            )
    return _renamed(network, mapping), new_sizes


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
            others = frozenset(l for n, other in networks.items() if n != statement.name for l in other.labels)
            network, sizes = _printable(network, decls, fresh, statement.span, others)
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
