"""The fuzz oracle: what every ``.tn`` text must do, and how to call what compiles.

:func:`check_text` compiles a text and accepts only two outcomes:

- a :class:`tndsl.TnError` whose message starts ``fuzz.tn:LINE:COL:`` at its span;
- a program whose every definition, called on arguments that fit it (:func:`arguments`),
  gives the same value — dtype, shape and numbers — with lowering on (twice: planned, then
  cached), with lowering off and from the dense reference, in int64, float64 and
  complex128; whose ``derive`` output compiles and gives the same values; and whose exported
  module holds only the calls the exporter writes.

Any other exception, or a text that runs longer than :data:`BUDGET_S`, is a finding.
"""

from __future__ import annotations

import ast
import math
import random
import signal
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import torch

import tndsl
from tndsl.ir import Kind, Network
from tndsl.tools.derive import derive_text
from tndsl.tools.export import export_module
from tndsl.tools.reference import dense_reference

FILENAME = "fuzz.tn"
#: Seconds one text may take (compile, calls, derive, export) before it counts as a runaway.
BUDGET_S = 30
#: Largest tensor (elements) a call may make: arguments, dense Π and deltas, the output.
MAX_ELEMENTS = 200_000
#: Most tensors (deltas aside) in one term of a network the fuzz calls: planning is
#: bounded (exhaustive up to 7 operands, greedy beyond), so this only keeps the dense
#: reference's single ``opt_einsum.contract`` from building huge intermediates.
MAX_OPERANDS = 40
DTYPES = (torch.int64, torch.float64, torch.complex128)

#: What happened to the texts checked so far (reported by the long run).
STATS: Counter = Counter()


class Runaway(Exception):
    """A text that took longer than :data:`BUDGET_S`."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Raise :class:`Runaway` after ``seconds`` (main thread only; elsewhere a no-op)."""

    def expire(signum, frame):
        raise Runaway(f"ran longer than {seconds} s")

    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_positioned(error: tndsl.TnError) -> None:
    """A TnError from a text must say where: ``fuzz.tn:LINE:COL: message``."""
    assert error.span is not None, f"{type(error).__name__} without a position: {error}"
    prefix = f"{FILENAME}:{error.span.line}:{error.span.col}: "
    assert str(error).startswith(prefix), f"{type(error).__name__} not positioned: {error}"


def check_text(text: str, seed: int = 0) -> None:
    """Compile ``text`` and check everything it defines (see the module docstring)."""
    with budget(BUDGET_S):
        try:
            program = tndsl.compile(text, FILENAME)
        except tndsl.TnError as error:
            assert_positioned(error)
            STATS["static error"] += 1
            return
        STATS["compiled"] += 1
        off = tndsl.compile(text, FILENAME, lowering=False)
        derived = _derived(text)
        _check_export(program)
        rng = random.Random(seed)
        for name in program:
            _check_definition(program, off, derived, name, rng)


def _derived(text: str) -> tndsl.Program | None:
    try:
        derived = derive_text(text, filename=FILENAME)
    except tndsl.TnError as error:
        assert_positioned(error)
        STATS["derive error"] += 1
        return None
    try:
        return tndsl.compile(derived, "derived.tn")
    except tndsl.TnError as error:
        raise AssertionError(f"derive printed a program that does not compile:\n{derived}\n{error}") from None


def _check_export(program: tndsl.Program) -> None:
    tree = ast.parse(export_module(program))
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            calls.add(ast.unparse(func.value if isinstance(func, ast.Subscript) else func))
    assert calls <= {"_tndsl.compile", "_program"}, calls


# -- arguments that fit a network ------------------------------------------------------------


class _Classes:
    """Union-find over labels and the places that force equal sizes."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        root = item
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        self.parent[item] = root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def arguments(network: Network, rng: random.Random) -> tuple[list[tuple[int, ...]], dict[str, int]] | None:
    """Argument shapes and keyword sizes that fit ``network`` (None if none were found):
    legs at the same axis of an input and the legs of a delta share a size; declared sizes
    hold; a pattern's out-leg follows its in- and kernel legs; other legs are 1…3."""
    classes = _Classes()
    patterns = []
    for term in network.terms:
        for tensor in term.tensors:
            if tensor.kind is Kind.INPUT:
                for position, leg in enumerate(tensor.legs):
                    classes.union(f"{tensor.name}#{position}", leg)
            elif tensor.kind is Kind.DELTA:
                for leg in tensor.legs[1:]:
                    classes.union(tensor.legs[0], leg)
            elif tensor.kind is Kind.PATTERN:
                patterns.append((network.spec_of(tensor), *tensor.legs))
    if any(spec.target for spec in network.inputs):
        return None  # index arguments need integers in range: the index tests cover them
    fixed: dict[str, int] = {}
    for label, size in network.sizes:
        if isinstance(size, str):
            classes.union(f"keyword#{size}", label)
    for label, size in network.sizes:
        if isinstance(size, int):
            root = classes.find(label)
            if fixed.setdefault(root, size) != size:
                return None
    for _ in range(20):
        values = _attempt(classes, fixed, patterns, rng)
        if values is not None:
            break
    else:
        return None
    size = lambda label: values.setdefault(classes.find(label), rng.randint(1, 3))  # noqa: E731
    shapes = []
    for spec in network.inputs:
        use = next(t for term in network.terms for t in term.tensors if t.kind is Kind.INPUT and t.name == spec.name)
        legs, shape = iter(use.legs), []
        for axis in spec.axes:
            shape.append(math.prod(size(next(legs)) for _ in axis))
        shapes.append(tuple(shape))
    keywords = {size_: size(f"keyword#{size_}") for _, size_ in network.sizes if isinstance(size_, str)}
    return shapes, keywords


def _attempt(classes: _Classes, fixed: dict[str, int], patterns, rng: random.Random) -> dict[str, int] | None:
    values = dict(fixed)
    for spec, i, o, k in patterns:
        vi = values.setdefault(classes.find(i), rng.randint(1, 6))
        vk = values.setdefault(classes.find(k), rng.randint(1, 3))
        out = spec.out_size(vi, vk)
        if out < 1 or values.setdefault(classes.find(o), out) != out:
            return None
    return values


def _elements(network: Network, sizes: dict[str, int]) -> int:
    """The largest tensor a dense evaluation makes (an upper bound on one operand)."""
    largest = math.prod(sizes.get(leg, 1) for leg in network.output_legs)
    for term in network.terms:
        for tensor in term.tensors:
            largest = max(largest, math.prod(sizes.get(leg, 1) for leg in tensor.legs))
    return largest


# -- values -------------------------------------------------------------------------------------


def _random(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, dtype=dtype, generator=generator)
    return torch.randint(-3, 4, shape, dtype=dtype, generator=generator)


def _check_definition(program, off, derived, name: str, rng: random.Random) -> None:
    network = program.networks[name]
    found = arguments(network, rng)
    if found is None:
        STATS["no arguments found"] += 1
        return
    shapes, keywords = found
    try:
        sizes, _ = tndsl.ir.solve(network, shapes, keywords)
    except tndsl.TnError as error:
        assert_positioned(error)
        STATS["arguments rejected"] += 1
        return
    if _elements(network, sizes) > MAX_ELEMENTS:
        STATS["too large to call"] += 1
        return
    if max(sum(t.kind is not Kind.DELTA for t in term.tensors) for term in network.terms) > MAX_OPERANDS:
        STATS["too many operands to call"] += 1
        return
    generator = torch.Generator().manual_seed(rng.randrange(2**31))
    for dtype in DTYPES:
        args = [_random(shape, dtype, generator) for shape in shapes]
        _check_call(program, off, derived, name, args, keywords, sizes)


def _outcome(function, *args, **keywords):
    try:
        return function(*args, **keywords)
    except tndsl.TnError as error:
        assert_positioned(error)
        return error


def _check_call(program, off, derived, name: str, args: list[torch.Tensor], keywords: dict[str, int], solved=None) -> None:
    function = program[name]
    first = _outcome(function, *args, **keywords)
    if isinstance(first, tndsl.TnError):
        STATS[f"call error {type(first).__name__}"] += 1
        assert isinstance(_outcome(off[name], *args, **keywords), type(first)), f"lowering off disagrees: {first}"
        return
    STATS["calls"] += 1
    values = {
        "cached": function(*args, **keywords),
        "lowering off": off[name](*args, **keywords),
        "dense": dense_reference(program.networks[name], args, keywords),
    }
    if derived is not None and name in derived.functions:
        by_name, again = dict(zip(function.inputs, args)), derived[name]
        # a leg whose size only an argument's shape gave prints as a keyword size (named by the leg)
        known = {**{k: int(v) for k, v in (solved or {}).items() if isinstance(v, int)}, **keywords}
        # derive names such a keyword by its leg, with a suffix where the label is used elsewhere
        sizes = {k: known.get(k, known.get(k.rsplit("_", 1)[0])) for k in again.keywords}
        legs = again.network.output_legs  # an output leg's size is also the result's axis
        if len(legs) == first.dim():
            sizes.update({k: int(first.shape[legs.index(k)]) for k in again.keywords if k in legs})
        sizes = {k: v for k, v in sizes.items() if v is not None}
        values["derived"] = again(*[by_name[n] for n in again.inputs], **sizes)
    for what, value in values.items():
        assert_same(first, value, what)


def assert_same(value: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Equal dtype and shape; equal integers; floats within a tolerance relative to the
    largest magnitude (sums of many terms in different orders)."""
    assert value.dtype == expected.dtype, f"{what}: dtype {value.dtype} != {expected.dtype}"
    assert value.shape == expected.shape, f"{what}: shape {tuple(value.shape)} != {tuple(expected.shape)}"
    if not (value.dtype.is_floating_point or value.dtype.is_complex):
        assert torch.equal(value, expected), f"{what}: integer values differ"
        return
    scale = expected.abs().max().item() if expected.numel() else 0.0
    scale = scale if math.isfinite(scale) else 1.0
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-9 * max(1.0, scale), equal_nan=True, msg=lambda m: f"{what}: {m}")
