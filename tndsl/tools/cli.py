"""The ``tndsl`` command line: compile, check, render, derive.

Exit status: 0 on success, 1 on a :class:`TnError` (message printed, no traceback),
2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..backend.program import load
from ..ir import TnError, TnNameError
from .export import export_module

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tndsl", description="Tensor-network diagrams compiled to PyTorch.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_ = commands.add_parser("compile", help="write a Python module with one function per definition")
    compile_.add_argument("file", help=".tn program")
    compile_.add_argument("-o", "--output", required=True, help="the .py file to write")

    check = commands.add_parser("check", help="compare every definition with an independent reference")
    check.add_argument("files", nargs="+", help=".tn programs")

    render = commands.add_parser("render", help="draw definitions as a diagram")
    render.add_argument("file", help=".tn program")
    render.add_argument("-n", "--name", action="append", default=[], help="definition to draw (repeatable; default all)")
    render.add_argument("-o", "--output", required=True, help="the file to write")
    render.add_argument("--format", choices=("svg", "png", "dot"), default=None, help="default: from the file suffix")

    derive = commands.add_parser("derive", help="print the program with derived definitions expanded")
    derive.add_argument("file", help=".tn program")
    derive.add_argument("names", nargs="*", help="definitions to print (default all)")
    derive.add_argument("--simplify", action="store_true", help="apply the Π simplifications")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except TnError as error:
        print(f"tndsl: error: {error}" if error.span is None else str(error), file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "compile":
        program = load(args.file)
        Path(args.output).write_text(export_module(program), encoding="utf-8")
        print(f"wrote {args.output}: {', '.join(program.functions)}")
        return 0
    if args.command == "check":
        from .check import check_main

        return check_main(args.files)
    if args.command == "render":
        from .render import render_program

        program = load(args.file)
        names = args.name or list(program.networks)
        unknown = [name for name in names if name not in program.networks]
        if unknown:
            raise TnNameError(f"{args.file}: no definition named {', '.join(unknown)}; defined: {', '.join(program.networks)}")
        fmt = args.format or (Path(args.output).suffix.lstrip(".") or "svg")
        if fmt not in ("svg", "png", "dot"):
            raise TnError(f"unknown output format '{fmt}' (use --format svg|png|dot)")
        data = render_program([program.networks[name] for name in names], fmt)
        Path(args.output).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        print(f"wrote {args.output}")
        return 0
    from .derive import derive_text

    program = load(args.file)
    sys.stdout.write(derive_text(program.text, args.names, args.simplify, filename=program.filename))
    return 0
