"""Running the checks of ``.tn`` files and printing the report table."""

from __future__ import annotations

import importlib
import math
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ...backend.program import Program, load
from ...ir import TnError, sizes_of, solve
from ..reference import dense_reference
from .lines import CheckSpec, parse_check_lines
from .references import DENSE, REFERENCES

__all__ = ["Row", "TOLERANCE", "MAX_ELEMENTS", "check_file", "check_main", "format_table", "relative_error"]

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
#: The most input elements one check line may ask for (random tensors are allocated).
MAX_ELEMENTS = 10_000_000


@dataclass
class Row:
    """One line of the report."""

    file: str
    op: str
    reference: str
    shapes: str
    error: float | None  # vs the registered PyTorch reference (None: 'dense' only)
    dense_error: float | None  # vs dense_reference
    passed: bool
    message: str = ""
    hint: str = ""


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """``max|value − reference| / max|reference|`` (absolute where the reference is 0)."""
    if value.shape != reference.shape:
        return math.inf
    if value.numel() == 0:
        return 0.0
    diff = (value.to(torch.float64) - reference.to(torch.float64)).abs().max().item()
    scale = reference.to(torch.float64).abs().max().item()
    return diff / scale if scale > 0 else diff


def _format_shapes(spec: CheckSpec) -> str:
    parts = [f"{name}[{','.join(map(str, shape))}]" for name, shape in spec.shapes]
    parts += [f"{name}={value}" for name, value in spec.keywords]
    return " ".join(parts)


def check_file(
    path: str | Path,
    dtype: torch.dtype = torch.float64,
    tolerance: float | None = None,
    device: str | torch.device = "cpu",
    modules: Sequence[str] = (),
) -> list[Row]:
    """Check every definition of a ``.tn`` file; one :class:`Row` per definition.

    A check line may name a reference in a user module (``mymod:my_fold``); only the
    ``modules`` listed here are imported (from the file's folder first), so checking a file
    never runs code its author did not ask to trust.
    """
    path = Path(path)
    tol = TOLERANCE.get(dtype, 1e-5) if tolerance is None else tolerance
    try:
        program = load(path)
        specs = parse_check_lines(program.text, str(path))
    except TnError as error:
        return [Row(str(path), "-", "-", "-", None, None, False, str(error).splitlines()[0], error.hint or "")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool only costs time
    try:
        return _check_program(program, specs, path, dtype, tol, device, tuple(modules))
    finally:
        torch.set_num_threads(threads)


def _check_program(
    program: Program, specs: list[CheckSpec], path: Path, dtype: torch.dtype, tol: float, device: str | torch.device,
    modules: tuple[str, ...],
) -> list[Row]:
    rows: list[Row] = []
    by_name: dict[str, CheckSpec] = {}
    for spec in specs:
        if spec.definition not in program.functions:
            rows.append(Row(str(path), spec.definition, spec.reference, _format_shapes(spec), None, None, False,
                            f"line {spec.span.line if spec.span else '?'}: no definition named '{spec.definition}'"))
            continue
        if spec.definition in by_name:
            rows.append(Row(str(path), spec.definition, spec.reference, _format_shapes(spec), None, None, False,
                            "more than one check line"))
            continue
        by_name[spec.definition] = spec
    for name in program:
        found = by_name.get(name)
        if found is None:
            rows.append(Row(str(path), name, "-", "-", None, None, False, "no '# check:' line for this definition",
                            f"add a line such as '# check: {name} = dense() with NAME[d0, d1], ...' to the file"))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: "padding='same' ... zero-padded copy"
            rows.append(_check_one(program, found, str(path), dtype, tol, torch.device(device), modules))
    return rows


def _check_one(
    program: Program, spec: CheckSpec, file: str, dtype: torch.dtype, tol: float, device: torch.device,
    modules: tuple[str, ...],
) -> Row:
    function = program[spec.definition]
    network = program.networks[spec.definition]
    shapes = dict(spec.shapes)
    row = Row(file, spec.definition, spec.reference, _format_shapes(spec), None, None, False)
    needed = set(function.inputs) | set(spec.arguments)
    missing = sorted(needed - set(shapes))
    if missing:
        row.message = f"no shape given for {', '.join(missing)}"
        row.hint = f"add {', '.join(f'{name}[...]' for name in missing)} after 'with' in the '# check:' line"
        return row
    elements = sum(math.prod(shape) for shape in shapes.values())
    if elements > MAX_ELEMENTS:
        row.message = f"the shapes ask for {elements:,} elements; a check allocates at most {MAX_ELEMENTS:,}"
        row.hint = "use smaller shapes in the '# check:' line"
        return row
    generator = torch.Generator().manual_seed(zlib.crc32(f"{file}:{spec.definition}".encode()) & 0x7FFFFFFF)
    tensors = {
        name: torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
        for name, shape in shapes.items()
    }
    keywords = dict(spec.keywords)
    try:
        tensors.update(_random_indices(network, shapes, keywords, generator, device))
        value = function(**{name: tensors[name] for name in function.inputs}, **keywords)
        dense = dense_reference(network, {name: tensors[name] for name in function.inputs}, keywords)
        row.dense_error = relative_error(value, dense)
        if spec.reference != DENSE:
            function_ = _reference(spec.reference, Path(file), modules)
            reference = function_(*(tensors[name] for name in spec.arguments), **dict(spec.params))
            row.error = relative_error(value, reference)
            if value.shape != reference.shape:
                row.message = f"shape {tuple(value.shape)} but {spec.reference} gives {tuple(reference.shape)}"
    except TnError as error:
        row.message = str(error).splitlines()[0]
        row.hint = error.hint or ""
        return row
    except (RuntimeError, ValueError, TypeError, MemoryError) as error:
        row.message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return row
    errors = [e for e in (row.error, row.dense_error) if e is not None]
    row.passed = all(e <= tol for e in errors)
    if not row.passed and not row.message:
        row.message = f"error above tolerance {tol:g}"
    return row


def _reference(name: str, path: Path, modules: Sequence[str]) -> Callable[..., torch.Tensor]:
    """A built-in reference, or ``module:function`` from an allowed user module."""
    if ":" not in name:
        return REFERENCES[name]
    module_name, function_name = name.split(":")
    if module_name not in modules:
        raise TnError(
            f"reference '{name}' is in module '{module_name}', which this check may not import",
            hint=f"allow it with `tndsl check --import {module_name} ...` (or check_file(..., modules=['{module_name}']))",
        )
    sys.path.insert(0, str(path.resolve().parent))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TnError(f"cannot import '{module_name}' for reference '{name}': {error}") from None
    finally:
        sys.path.pop(0)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TnError(f"module '{module_name}' has no function '{function_name}'")
    return function


def _random_indices(network, shapes: dict, keywords: dict, generator, device) -> dict[str, torch.Tensor]:
    """Random integers for the index inputs, in range for the legs they select."""
    specs = [spec for spec in network.inputs if spec.target]
    if not specs:
        return {}
    values = sizes_of(solve(network, [shapes[spec.name] for spec in network.inputs], keywords)[0])
    indices = {}
    for spec in specs:
        use = next(t for term in network.terms for t in term.tensors if t.name == spec.name)
        high = math.prod(values[leg] for leg in use.legs[len(use.legs) - len(spec.target) :])
        indices[spec.name] = torch.randint(0, high, shapes[spec.name], generator=generator).to(device)
    return indices


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: file, op, reference, shapes, errors, status; a failing row's
    hint on the line below it."""
    def err(value: float | None) -> str:
        return "-" if value is None else f"{value:.1e}"

    header = ("file", "op", "reference", "shapes", "rel.err", "vs dense", "status")
    body = [
        (
            Path(row.file).name,
            row.op,
            row.reference,
            row.shapes,
            err(row.error),
            err(row.dense_error),
            "ok" if row.passed else "FAIL" + (f" ({row.message})" if row.message else ""),
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header) - 1)]
    lines = []
    for r, row in zip([header, *body], [None, *rows]):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(r, widths)) + "  " + r[-1])
        if row is not None and not row.passed and row.hint:
            lines.append(f"    hint: {row.hint}")
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1]))
    passed = sum(row.passed for row in rows)
    lines.append(f"{passed}/{len(rows)} passed")
    return "\n".join(line.rstrip() for line in lines)


def check_main(paths: Sequence[str], dtype: torch.dtype = torch.float64, modules: Sequence[str] = ()) -> int:
    """Check files, print the table; 0 if every row passed, else 1."""
    rows: list[Row] = []
    for path in paths:
        rows.extend(check_file(path, dtype=dtype, modules=modules))
    print(format_table(rows))
    return 0 if rows and all(row.passed for row in rows) else 1
