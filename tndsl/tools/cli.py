"""The ``tndsl`` command line: compile, check, render, derive — many files in one run.

Exit status: 0 on success, 1 when a file has an error (a :class:`TnError`, or a file
that cannot be read or written: the message is printed, never a traceback), 2 on a
usage error. With several files, every file is processed and each error reported.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from .. import __version__
from ..backend.program import Program, load
from ..ir import TnError, TnNameError
from .export import export_module
from .standalone import export_standalone, parse_shapes

__all__ = ["main"]

_EXAMPLES = {
    "compile": (
        "examples:\n  tndsl compile gallery/conv.tn -o conv.py\n  tndsl compile gallery/*.tn -o out/      # one module per file\n"
        "  tndsl compile gallery/conv.tn -o conv.py --shapes 'Y2:2x3x9x7,4x3x3x2,4' --shapes 'Y1:2x3x11,4x3x3,4:float64'"
        "   # standalone: planned code, torch only"
    ),
    "check": (
        "examples:\n  tndsl check gallery/conv.tn\n  tndsl check gallery/*.tn                # one table for all files\n"
        "  tndsl check --import myrefs fold.tn     # lets '# check: Y = myrefs:my_fold(...)' import myrefs"
    ),
    "render": (
        "examples:\n  tndsl render gallery/conv.tn -o conv.svg\n"
        "  tndsl render gallery/conv.tn -n Y2 --plan -o conv_plan.svg   # shapes from the # check: line\n"
        "  tndsl render gallery/conv.tn -n Y2 --plan --shapes 'X2[8, 3, 32, 32] W2[16, 3, 3, 3] b[16]' -o y2.svg\n"
        "  tndsl render gallery/*.tn -o gallery/    # one picture per file"
    ),
    "derive": "examples:\n  tndsl derive gallery/derived_conv2d.tn\n  tndsl derive gallery/derived_ggn.tn GGNV --simplify",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tndsl",
        description="Tensor-network diagrams compiled to PyTorch, checked, drawn and rewritten.",
        epilog="Run 'tndsl COMMAND -h' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"tndsl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                   epilog=_EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)

    compile_ = command("compile", "write a Python module with one function per definition")
    compile_.add_argument("files", nargs="+", metavar="FILE", help=".tn programs")
    compile_.add_argument("-o", "--output", required=True,
                          help="the .py file to write (one FILE), or an existing directory (FILE.py in it)")
    compile_.add_argument("--shapes", action="append", default=None, metavar="'NAME:2x3,4x5[:float64]'",
                          help="plan definition NAME for these argument shapes (dtype float32 unless given) and write "
                               "its straight-line torch code: the module then needs tndsl only for other shapes "
                               "(repeatable)")

    check = command("check", "compare every definition with an independent reference")
    check.add_argument("files", nargs="+", metavar="FILE", help=".tn programs")
    check.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                       help="a module whose functions check lines may name as module:function (repeatable)")

    render = command("render", "draw definitions as a diagram, optionally with the plan for given shapes")
    render.add_argument("files", nargs="+", metavar="FILE", help=".tn programs")
    render.add_argument("-n", "--name", action="append", default=[], help="definition to draw (repeatable; default all)")
    render.add_argument("-o", "--output", required=True,
                        help="the file to write (one FILE), or an existing directory (FILE.svg in it)")
    render.add_argument("--format", choices=("svg", "png", "dot"), default=None,
                        help="default: the output file's suffix, else svg")
    render.add_argument("--plan", action="store_true",
                        help="draw each definition's plan: contraction steps, torch ops, FLOPs and bytes")
    render.add_argument("--shapes", type=_shapes, default=None, metavar="'X[2, 3] k=3 ...'",
                        help="argument shapes and sizes for --plan (default: the file's # check: lines)")
    render.add_argument("--max-terms", type=int, default=None, metavar="N",
                        help="draw at most N terms of a sum (default 8; 0: all)")

    derive = command("derive", "print the program with derived definitions expanded")
    derive.add_argument("file", metavar="FILE", help=".tn program")
    derive.add_argument("names", nargs="*", help="definitions to print (default all)")
    derive.add_argument("--simplify", action="store_true", help="apply the Π simplifications")
    return parser


_SHAPE = re.compile(r"\s*(?P<name>[^\W\d]\w*)\s*(?:\[(?P<dims>[\d\s,]*)\]|=\s*(?P<size>\d+))\s*,?")


def _shapes(text: str) -> dict[str, tuple[int, ...] | int]:
    """``'X[2, 3] W[3, 4] k=3'`` → ``{'X': (2, 3), 'W': (3, 4), 'k': 3}`` (for ``--shapes``)."""
    shapes: dict[str, tuple[int, ...] | int] = {}
    position = 0
    while text[position:].strip():
        match = _SHAPE.match(text, position)
        if match is None:
            raise argparse.ArgumentTypeError(f"cannot read {text[position:].strip()!r}: expected NAME[d0, d1, ...] or NAME=INT")
        if match["size"] is not None:
            shapes[match["name"]] = int(match["size"])
        else:
            shapes[match["name"]] = tuple(int(d) for d in match["dims"].replace(",", " ").split())
        position = match.end()
    return shapes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "max_terms", None) is not None and args.max_terms != 0 and args.max_terms < 2:
        _parser().error("--max-terms must be 0 (all terms) or at least 2")
    try:
        return _COMMANDS[args.command](args)
    except TnError as error:
        _report(error)
        return 1


def _report(error: TnError) -> None:
    print(f"tndsl: error: {error}" if error.span is None else str(error), file=sys.stderr)


def _each(files: Sequence[str], output: str, suffix: str, work: Callable[[Program, Path], None]) -> int:
    """Run ``work(program, target)`` for each file; report errors and go on; 0 if none."""
    targets = _targets(files, output, suffix)
    failed = False
    for file, target in zip(files, targets):
        try:
            work(load(file), target)
        except TnError as error:
            _report(error)
            failed = True
    return 1 if failed else 0


def _targets(files: Sequence[str], output: str, suffix: str) -> list[Path]:
    """Where each file's output goes: ``output`` itself, or ``output/STEM.suffix``."""
    out = Path(output)
    if len(files) == 1 and not out.is_dir() and not output.endswith(("/", "\\")):
        return [out]
    if not out.is_dir():
        raise TnError(f"output directory '{output}' does not exist" if len(files) == 1 or output.endswith(("/", "\\"))
                      else f"with {len(files)} files, -o must be an existing directory; '{output}' is not")
    stems = [Path(file).stem for file in files]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice:
        raise TnError(f"two input files would write the same output: {', '.join(s + suffix for s in twice)}")
    return [out / f"{stem}{suffix}" for stem in stems]


def _write(target: Path, data: str | bytes) -> None:
    try:
        target.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    except OSError as error:
        raise TnError(f"cannot write {target}: {error.strerror or error}") from None


def _compile(args: argparse.Namespace) -> int:
    signatures = [parse_shapes(text) for text in args.shapes or ()]

    def work(program: Program, target: Path) -> None:
        _write(target, export_standalone(program, signatures) if signatures else export_module(program))
        print(f"wrote {target}: {', '.join(program.functions)}")

    return _each(args.files, args.output, ".py", work)


def _check(args: argparse.Namespace) -> int:
    from .check import check_main

    return check_main(args.files, modules=args.modules)


def _render(args: argparse.Namespace) -> int:
    from .render import MAX_TERMS, plans_for, render_program

    single = len(args.files) == 1 and not Path(args.output).is_dir()
    fmt = args.format or ((Path(args.output).suffix.lstrip(".") or "svg") if single else "svg")
    if fmt not in ("svg", "png", "dot"):
        raise TnError(f"unknown output format '{fmt}' (use --format svg|png|dot)")
    max_terms = MAX_TERMS if args.max_terms is None else (args.max_terms or None)

    def work(program: Program, target: Path) -> None:
        names = args.name or list(program.networks)
        unknown = [name for name in names if name not in program.networks]
        if unknown:
            raise TnNameError(f"{program.filename}: no definition named {', '.join(unknown)}; "
                              f"defined: {', '.join(program.networks)}")
        plans = {}
        if args.plan:
            wanted = {name: program[name] for name in names}
            if args.shapes is None:
                plans = plans_for(program, wanted, True)
                missing = [name for name in args.name if name not in plans]
                if missing:
                    raise TnError(f"{program.filename}: no '# check:' line gives the shapes of {', '.join(missing)}; "
                                  "give them with --shapes")
            else:
                plans = plans_for(program, wanted, {name: _subset(program, name, args.shapes) for name in names})
        _write(target, render_program([program.networks[name] for name in names], fmt, plans, max_terms))
        print(f"wrote {target}")

    return _each(args.files, args.output, f".{fmt}", work)


def _subset(program: Program, name: str, shapes: dict[str, tuple[int, ...] | int]) -> dict[str, tuple[int, ...] | int]:
    """The shapes and sizes that definition ``name`` takes, out of all given ones."""
    function = program[name]
    return {key: value for key, value in shapes.items() if key in function.inputs or key in function.keywords}


def _derive(args: argparse.Namespace) -> int:
    from .derive import derive_text

    program = load(args.file)
    sys.stdout.write(derive_text(program.text, args.names, args.simplify, filename=program.filename))
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "compile": _compile,
    "check": _check,
    "render": _render,
    "derive": _derive,
}
