"""Grammar-aware fuzzing: random programs, token soups, mutated gallery files, deep nesting
and long literals, each checked by :func:`fuzzing.check_text` (success with values that
agree three ways and in three dtypes, or a positioned TnError; nothing else).

Seeded and derandomized, sized for CI (about a minute on two cores with ``-n 2``).
``make fuzz`` runs many more examples with fresh seeds before a release:
``TNDSL_FUZZ_SCALE`` multiplies every test's number of examples (and turns
derandomization off), ``TNDSL_FUZZ_SEED`` fixes the seed of such a run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fuzzing import STATS, check_text

GALLERY = sorted((Path(__file__).resolve().parent.parent / "gallery").glob("*.tn"))
TEXTS = [path.read_text(encoding="utf-8") for path in GALLERY]

LONG_RUN = "TNDSL_FUZZ_SCALE" in os.environ
SCALE = float(os.environ.get("TNDSL_FUZZ_SCALE", 1))


def _fuzz(examples: int):
    """Hypothesis settings for one fuzz test: ``examples`` in CI, scaled in a long run."""
    configured = settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )
    if "TNDSL_FUZZ_SEED" in os.environ:
        return lambda test: seed(int(os.environ["TNDSL_FUZZ_SEED"]))(configured(test))
    return configured


@pytest.fixture(autouse=True)
def _float64_default():
    """``int_tensor * 0.5`` gives the default dtype: float64 keeps comparisons tight."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


@pytest.fixture(autouse=True, scope="module")
def _report():
    """In a long run, each worker's tally of outcomes, appended to ``TNDSL_FUZZ_REPORT``."""
    yield
    path = os.environ.get("TNDSL_FUZZ_REPORT")
    if LONG_RUN and path:
        with open(path, "a", encoding="utf-8") as report:
            report.write(f"{dict(sorted(STATS.items()))}\n")


# -- random programs -------------------------------------------------------------------------

INPUTS = ["A", "B", "X", "W", "V"]
LABELS = ["a", "b", "c", "i", "j", "k", "n", "o"]
DEFINITIONS = ["Y", "Z", "G", "H"]
NUMBERS = st.sampled_from(["2", "0.5", "3", "1e-3", "0", "1.5e2", ".25", "7"])


@st.composite
def pattern_params(draw) -> str:
    params = []
    stride = draw(st.integers(1, 3))
    if draw(st.booleans()):
        params.append(f"stride={stride}")
    padding = draw(st.sampled_from(["", "1", "2", "(0, 1)", "(2, 1)", "'valid'"] + (["'same'"] if stride == 1 else [])))
    if padding:
        params.append(f"padding={padding}")
    if draw(st.booleans()):
        params.append(f"dilation={draw(st.integers(1, 3))}")
    if stride > 1 and draw(st.integers(0, 3)) == 0:
        params.append(f"output_padding={draw(st.integers(0, stride - 1))}")
    return ", ".join(params)


class _Context:
    """What a random program has declared so far: leg counts by name."""

    def __init__(self) -> None:
        self.inputs: dict[str, int] = {}
        self.patterns: list[str] = []
        self.definitions: dict[str, int] = {}


def _labels(draw, count: int) -> list[str]:
    return [draw(st.sampled_from(LABELS)) for _ in range(count)]


def _use(name: str, labels: list[str]) -> str:
    return f"{name}[{', '.join(labels)}]"


def derived_call(draw, ctx: _Context) -> tuple[str, int] | None:
    """``func(args)`` and the number of legs it has, for a random derived form."""
    if not ctx.definitions:
        return None
    y = draw(st.sampled_from(sorted(ctx.definitions)))
    w = draw(st.sampled_from(sorted(ctx.inputs)))
    legs_y, legs_w = ctx.definitions[y], ctx.inputs[w]
    func = draw(st.sampled_from(["grad", "vjp", "jvp", "vmap"]))
    if func == "grad":
        return f"grad({y}, {w})", legs_y + legs_w
    if func == "vmap":
        return f"vmap({y}, {draw(st.sampled_from(LABELS))}, {w})", legs_y + 1
    rank = legs_y if func == "vjp" else legs_w
    others = [n for n, legs in {**ctx.inputs, **ctx.definitions}.items() if legs == rank and n != y] or [w]
    other = draw(st.sampled_from(sorted(others)))
    return f"{func}({y}, {w}, {other})", legs_w if func == "vjp" else legs_y


def atom(draw, ctx: _Context) -> tuple[str, set[str]]:
    choice = draw(st.integers(0, 11))
    if choice <= 4 or not (ctx.patterns or ctx.definitions):
        name = draw(st.sampled_from(sorted(ctx.inputs)))
        labels = _labels(draw, ctx.inputs[name])
        return _use(name, labels), set(labels)
    if choice == 5 and ctx.patterns:
        labels = _labels(draw, 3)
        return _use(draw(st.sampled_from(ctx.patterns)), labels), set(labels)
    if choice == 6:
        labels = _labels(draw, draw(st.integers(1, 3)))
        return _use("delta", labels), set(labels)
    if choice == 7 and ctx.definitions:
        name = draw(st.sampled_from(sorted(ctx.definitions)))
        labels = _labels(draw, ctx.definitions[name])
        return _use(name, labels), set(labels)
    if choice == 8:
        return draw(NUMBERS), set()
    if choice == 9:
        label = draw(st.sampled_from(LABELS))
        return f"|{label}|", {label}
    call = derived_call(draw, ctx)
    if call is None:
        return draw(NUMBERS), set()
    text, legs = call
    labels = _labels(draw, legs)
    return text + f"[{', '.join(labels)}]", set(labels)


def expression(draw, ctx: _Context, depth: int) -> tuple[str, set[str]]:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return atom(draw, ctx)
    op = draw(st.sampled_from(["*", "*", "+", "-", "neg", "/", "()"]))
    left, used = expression(draw, ctx, depth - 1)
    if op == "neg":
        return f"-{left}", used
    if op == "()":
        return f"({left})", used
    if op == "/":
        divisor = draw(st.one_of(NUMBERS, st.sampled_from([f"|{label}|" for label in LABELS])))
        return f"{left} / {divisor}", used
    right, more = expression(draw, ctx, depth - 1)
    return f"{left} {op} {right}", used | more


def _axes(draw, labels: list[str]) -> str:
    axes, index = [], 0
    while index < len(labels):
        if index + 1 < len(labels) and draw(st.integers(0, 5)) == 0:
            axes.append(f"({labels[index]} {labels[index + 1]})")
            index += 2
        else:
            axes.append(labels[index])
            index += 1
    return "[" + ", ".join(axes) + "]"


@st.composite
def programs(draw) -> str:
    """A random program over a few names and labels: mostly well-formed, sometimes not."""
    ctx, lines = _Context(), []
    for name in draw(st.lists(st.sampled_from(INPUTS), min_size=1, max_size=3, unique=True)):
        legs = draw(st.lists(st.sampled_from(LABELS), max_size=4, unique=True))
        ctx.inputs[name] = len(legs)
        lines.append(f"input {name}{_axes(draw, legs)}")
    for label in draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True)):
        lines.append(f"size {label} = {draw(st.integers(1, 4))}" if draw(st.booleans()) else f"size {label}")
    for name in draw(st.lists(st.sampled_from(["P", "Q"]), max_size=2, unique=True)):
        ctx.patterns.append(name)
        lines.append(f"pattern {name} = conv({draw(pattern_params())})")
    for name in draw(st.lists(st.sampled_from(DEFINITIONS), min_size=1, max_size=3, unique=True)):
        whole = derived_call(draw, ctx) if draw(st.integers(0, 4)) == 0 else None
        if whole is not None:
            lines.append(f"{name} = {whole[0]}")
            ctx.definitions[name] = whole[1]
            continue
        expr, used = expression(draw, ctx, draw(st.integers(0, 4)))
        output = draw(st.lists(st.sampled_from(sorted(used) or LABELS), max_size=3, unique=True))
        lines.append(f"{name}{_axes(draw, output)} = {expr}")
        ctx.definitions[name] = len(output)
    lines = draw(st.permutations(lines)) if draw(st.integers(0, 9)) == 0 else lines
    return "\n".join(lines) + "\n"


@_fuzz(2000)
@given(text=programs(), seed_=st.integers(0, 2**16))
def test_random_programs(text, seed_):
    check_text(text, seed_)


# -- token soups -----------------------------------------------------------------------------

TOKENS = [
    "input", "size", "pattern", "conv", "grad", "vjp", "jvp", "vmap", "delta", "stride", "padding",
    "dilation", "output_padding", "A", "B", "X", "Y", "Z", "a", "i", "j", "k", "n", "_", "[", "]", "(",
    ")", ",", "=", "+", "-", "*", "/", "|", "\n", "\n", "1", "2", "0", "3.5", "1e3", ".5", "'same'",
    "'valid'", "'x", "\"", "#", "# c", "\\\n", "\t", "\f", "\v", "\r", "\u2028", "é", "\x00", "9" * 120,
    "1e999", "A[i]", "Y[i] =", "input A[i]\n", "size k\n", "Y[i] = A[i]\n",
]


@_fuzz(1000)
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=40), glue=st.sampled_from(["", " ", "\n"]))
def test_token_soups(tokens, glue):
    check_text(glue.join(tokens))


@_fuzz(500)
@given(text=st.text(max_size=80))
def test_arbitrary_text(text):
    check_text(text)


# -- mutated gallery files ----------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+|\S")


@st.composite
def mutated(draw) -> str:
    """A gallery file with a few random edits: deletions, duplications, swaps, replaced or
    inserted tokens, changed numbers."""
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        tokens = list(_TOKEN.finditer(text))
        lines = text.split("\n")
        edit = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert", "number"]))
        if edit in ("duplicate", "swap") and len(lines) > 1:
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if edit == "duplicate":
                lines.insert(b, lines[a])
            else:
                lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        elif tokens:
            match = tokens[draw(st.integers(0, len(tokens) - 1))]
            start, end = match.span()
            if edit == "delete":
                text = text[:start] + text[end:]
            elif edit == "replace":
                text = text[:start] + tokens[draw(st.integers(0, len(tokens) - 1))].group() + text[end:]
            elif edit == "insert":
                text = text[:start] + draw(st.sampled_from(TOKENS)) + " " + text[start:]
            elif match.group().isdigit():
                text = text[:start] + str(draw(st.integers(0, 40))) + text[end:]
    return text


@_fuzz(800)
@given(text=mutated(), seed_=st.integers(0, 2**16))
def test_mutated_gallery_files(text, seed_):
    check_text(text, seed_)


# -- deep nesting, long sums, long literals ----------------------------------------------------


@st.composite
def extremes(draw) -> str:
    """Programs near and over the limits: nesting, terms, digits, labels."""
    kind = draw(st.sampled_from(["neg", "parens", "sum", "digits", "float", "labels", "product"]))
    n = draw(st.integers(1, 320))
    head = "input A[i]\ninput B[i, j]\n"
    if kind == "neg":
        return head + f"Y[i] = {'-' * n}A[i]\n"
    if kind == "parens":
        return head + "Y[i] = " + "(A[i] * " * n + "A[i]" + ")" * n + "\n"
    if kind == "sum":
        return head + "Y[i] = " + " - ".join(["A[i]"] * (n * 3)) + "\n"
    if kind == "digits":
        return head + f"size j = {'1' * (n // 2)}\nY[i] = A[i] * {'7' * n}\n"
    if kind == "float":
        return head + f"Y[i] = A[i] * 0.{'0' * n}1e{draw(st.integers(-400, 400))} * {draw(st.integers(0, 9))}e{n}\n"
    if kind == "labels":
        return head + "Y[] = " + " * ".join(f"B[i, l{k}]" for k in range(n // 4 + 1)) + "\n"
    return head + "Y[i] = A[i]" + " * (1 + |i|)" * (n // 20) + "\n"


@_fuzz(80)
@given(text=extremes())
def test_extremes(text):
    check_text(text)


@pytest.mark.parametrize("path", GALLERY, ids=lambda p: p.name)
def test_gallery_files_pass_the_oracle(path):
    check_text(path.read_text(encoding="utf-8"))
