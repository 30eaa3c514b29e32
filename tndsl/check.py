"""``tndsl check``: run each definition of a ``.tn`` file against an independent reference.

A file says how to check a definition in a comment line (the grammar ignores comments)::

    # check: Y = conv2d(X, W, b, stride=2, padding=1, groups=2) with X[2, 4, 7, 9], W[6, 2, 3, 3], b[6]
    # check: U = unfold2d(X, kernel_size=3, padding='same') with X[2, 3, 5, 6], k1=3, k2=3
    # check: K = dense() with X[3, 4]

- ``Y`` is the definition to check;
- ``conv2d`` names a reference registered in :data:`REFERENCES` (a Python function that
  computes the op with PyTorch); ``dense`` means "no PyTorch op": the definition is compared
  with :func:`tndsl.reference.dense_reference` only;
- positional arguments name the file's inputs passed to the reference, in its order;
  keyword arguments are the reference's parameters: integers, tuples of integers (a
  ``padding`` pair is ``(left, right)`` for every dimension, as in ``.tn``) and quoted strings;
- after ``with``: ``NAME[d0, d1, ...]`` is the shape of a random input, ``NAME=INT`` a
  keyword size of the definition.

Nothing from the file is ever evaluated: the line is tokenized and parsed here, the
reference name is looked up in a fixed table, and parameter values are plain literals.
Every definition is also compared with the dense reference. Errors are max-norm relative:
``max|y - r| / max|r|``.
"""

from __future__ import annotations

import math
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import Source, Span, TnError
from .program import Program, load
from .reference import dense_reference

__all__ = [
    "Row",
    "CheckSpec",
    "REFERENCES",
    "check_file",
    "check_main",
    "format_table",
    "parse_check_lines",
    "relative_error",
    "TOLERANCE",
    "TnCheckError",
]

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}

Value = int | str | tuple[int, ...]
Reference = Callable[..., torch.Tensor]


# ---------------------------------------------------------------------------------------
# PyTorch references. Each takes tensors positionally and parameters as keywords.
# ``padding``: an int, a pair (left, right) for every spatial dimension, 'same' or 'valid'.
# ---------------------------------------------------------------------------------------
def _pads(padding: Value, kernel: int, dilation: int) -> tuple[int, int]:
    """Left and right padding of one spatial dimension (the Π rules, DESIGN §3)."""
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    if padding == "valid":
        return 0, 0
    if isinstance(padding, tuple):
        if len(padding) != 2:
            raise ValueError(f"padding pair must be (left, right), not {padding!r}")
        return int(padding[0]), int(padding[1])
    return int(padding), int(padding)


def _ntuple(value: Value, n: int, what: str) -> tuple[int, ...]:
    if isinstance(value, tuple):
        if len(value) != n:
            raise ValueError(f"{what} needs {n} values, not {value!r}")
        return tuple(int(v) for v in value)
    if isinstance(value, str):
        raise ValueError(f"{what} must be an integer or a tuple, not {value!r}")
    return (int(value),) * n


def _conv_fn(n: int):
    return (F.conv1d, F.conv2d, F.conv3d)[n - 1]


def _conv_transpose_fn(n: int):
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]


def conv(x, w, b=None, *, stride=1, padding: Value = 0, dilation=1, groups=1):
    """``F.conv{N}d``; an asymmetric pair pads with ``F.pad`` first."""
    n = x.dim() - 2
    fn = _conv_fn(n)
    if padding == "same" or padding == "valid" or isinstance(padding, int):
        return fn(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    left, right = _pads(padding, 1, dilation)
    if left == right:
        return fn(x, w, b, stride=stride, padding=left, dilation=dilation, groups=groups)
    return fn(F.pad(x, [left, right] * n), w, b, stride=stride, padding=0, dilation=dilation, groups=groups)


def conv_transpose(x, w, b=None, *, stride=1, padding: Value = 0, output_padding=0, dilation=1, groups=1):
    """``F.conv_transpose{N}d``; other paddings crop the unpadded result (torch has no such option)."""
    n = x.dim() - 2
    fn = _conv_transpose_fn(n)
    if isinstance(padding, int):
        return fn(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    kernel = w.shape[2:]
    full = fn(x, w, None, stride=stride, padding=0, output_padding=0, groups=groups, dilation=dilation)
    index = [slice(None), slice(None)]
    extra = []
    for d in range(n):
        left, right = _pads(padding, kernel[d], dilation)
        size = full.shape[2 + d] - left - right + output_padding
        if size < 1:
            raise ValueError("empty transpose-convolution output")
        index.append(slice(left, left + size))
        extra.append(max(0, left + size - full.shape[2 + d]))
    pad = []
    for e in reversed(extra):
        pad += [0, e]
    result = F.pad(full, pad)[tuple(index)]
    if b is not None:
        result = result + b.view(1, -1, *([1] * n))
    return result


def _one_hot_weight(channels: int, kernel: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Weight ``[channels·K, 1, *kernel]`` picking kernel position ``k`` for channel ``c``
    at output channel ``c·K + k`` (grouped with groups = channels)."""
    total = math.prod(kernel)
    eye = torch.eye(total, dtype=like.dtype, device=like.device).reshape(total, 1, *kernel)
    return eye.repeat(channels, 1, *([1] * len(kernel)))


def unfold(x, *, kernel_size, stride=1, padding: Value = 0, dilation=1):
    """im2col ``[N, C·K1·K2…, O1·O2…]`` in ``F.unfold``'s layout; ``F.unfold`` itself for N = 2."""
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    pads = [_pads(padding, k, dilation) for k in kernel]
    if n == 2 and all(l == r for l, r in pads):
        return F.unfold(x, kernel, dilation=dilation, padding=tuple(l for l, _ in pads), stride=stride)
    pad = [p for left_right in reversed(pads) for p in left_right]
    channels = x.shape[1]
    y = _conv_fn(n)(F.pad(x, pad), _one_hot_weight(channels, kernel, x), stride=stride, dilation=dilation, groups=channels)
    return y.flatten(2)


def conv_transpose_unfold(x, *, kernel_size, stride=1, padding: Value = 0, output_padding=0, dilation=1):
    """The transpose convolution's unfolded input ``[N, C·K1·K2…, I1·I2…]``:
    ``conv_transpose(X, W) = W_mat @ U`` with ``W_mat[co, (c k)] = W[c, co, k]``."""
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    channels = x.shape[1]
    weight = _one_hot_weight(channels, kernel, x).reshape(channels, math.prod(kernel), *kernel)
    y = conv_transpose(
        x, weight, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=channels
    )
    return y.flatten(2)


def conv_input_vjp(v, w, *, input_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """∂⟨V, conv(X, W)⟩/∂X by ``torch.autograd.grad``; X has spatial size ``input_size``."""
    n = v.dim() - 2
    size = _ntuple(input_size, n, "input_size")
    x = torch.zeros(v.shape[0], w.shape[1] * groups, *size, dtype=v.dtype, device=v.device, requires_grad=True)
    y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.shape != v.shape:
        raise ValueError(f"V has shape {tuple(v.shape)} but the convolution output is {tuple(y.shape)}")
    (grad,) = torch.autograd.grad(y, x, v)
    return grad


def conv_weight_vjp(x, v, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """∂⟨V, conv(X, W)⟩/∂W by ``torch.autograd.grad``; W has spatial size ``kernel_size``."""
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    w = torch.zeros(v.shape[1], x.shape[1] // groups, *kernel, dtype=x.dtype, device=x.device, requires_grad=True)
    y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.shape != v.shape:
        raise ValueError(f"V has shape {tuple(v.shape)} but the convolution output is {tuple(y.shape)}")
    (grad,) = torch.autograd.grad(y, w, v)
    return grad


def conv_input_jvp(w, t, *, stride=1, padding: Value = 0, dilation=1, groups=1):
    """``torch.func.jvp`` of ``X ↦ conv(X, W)`` at X = T in direction T."""
    fn = lambda x: conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)  # noqa: E731
    return torch.func.jvp(fn, (t,), (t,))[1]


def conv_weight_jvp(x, t, *, stride=1, padding: Value = 0, dilation=1, groups=1):
    """``torch.func.jvp`` of ``W ↦ conv(X, W)`` at W = T in direction T."""
    fn = lambda w: conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)  # noqa: E731
    return torch.func.jvp(fn, (t,), (t,))[1]


def _grouped(u: torch.Tensor, groups: int) -> torch.Tensor:
    """``[N, (g a), L]`` → ``[N, g, a, L]``."""
    return u.reshape(u.shape[0], groups, u.shape[1] // groups, u.shape[2])


def kfc(x, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """KFC / KFAC-expand input factor ``[g, c·K, c·K]``: ``Σ_{n,o} u uᵀ / N`` with u = unfold."""
    u = _grouped(unfold(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation), groups)
    return torch.einsum("ngal,ngbl->gab", u, u) / x.shape[0]


def kfac_reduce(x, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """KFAC-reduce input factor ``[g, c·K, c·K]``: ``Σ_n ū ūᵀ / N`` with ū the column mean of unfold."""
    u = _grouped(unfold(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation), groups)
    mean = u.mean(dim=3)
    return torch.einsum("nga,ngb->gab", mean, mean) / x.shape[0]


def conv_transpose_kfac_reduce(x, *, kernel_size, stride=1, padding: Value = 0, output_padding=0, dilation=1, groups=1):
    """KFAC-reduce input factor of a transpose convolution, from its unfolded input."""
    u = conv_transpose_unfold(
        x, kernel_size=kernel_size, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    mean = _grouped(u, groups).mean(dim=3)
    return torch.einsum("nga,ngb->gab", mean, mean) / x.shape[0]


def ggn_diagonal(x, s, *, kernel_size, stride=1, padding: Value = 0, dilation=1, groups=1):
    """diag(Σ_{c,n} J_nᵀ S_{c,n} S_{c,n}ᵀ J_n) for the weight, by per-sample autograd.

    ``S[c, n, co, o…]`` is a backpropagated square-root factor of the loss Hessian w.r.t. Y.
    """
    n = x.dim() - 2
    kernel = _ntuple(kernel_size, n, "kernel_size")
    w = torch.zeros(s.shape[2], x.shape[1] // groups, *kernel, dtype=x.dtype, device=x.device, requires_grad=True)
    diagonal = torch.zeros_like(w)
    for sample in range(x.shape[0]):
        y = conv(x[sample : sample + 1], w, stride=stride, padding=padding, dilation=dilation, groups=groups)
        for column in range(s.shape[0]):
            (grad,) = torch.autograd.grad(y, w, s[column, sample : sample + 1], retain_graph=True)
            diagonal = diagonal + grad**2
    return diagonal.detach()


def _for_dims(fn: Reference, n: int) -> Reference:
    def reference(*tensors: torch.Tensor, **params: Value) -> torch.Tensor:
        if tensors and tensors[0].dim() != 2 + n:
            raise ValueError(f"a {n}d reference needs {2 + n}-d tensors, got shape {tuple(tensors[0].shape)}")
        return fn(*tensors, **params)

    reference.__doc__ = fn.__doc__
    return reference


_FAMILIES: dict[str, Reference] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "unfold": unfold,
    "conv_transpose_unfold": conv_transpose_unfold,
    "conv_input_vjp": conv_input_vjp,
    "conv_weight_vjp": conv_weight_vjp,
    "conv_input_jvp": conv_input_jvp,
    "conv_weight_jvp": conv_weight_jvp,
    "kfc": kfc,
    "kfac_reduce": kfac_reduce,
    "conv_transpose_kfac_reduce": conv_transpose_kfac_reduce,
    "ggn_diagonal": ggn_diagonal,
}

#: Reference name (as written in a ``# check:`` line) → PyTorch function.
REFERENCES: dict[str, Reference] = {
    f"{family}{n}d": _for_dims(fn, n) for family, fn in _FAMILIES.items() for n in (1, 2, 3)
}
DENSE = "dense"


# ---------------------------------------------------------------------------------------
# The check line
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckSpec:
    """One parsed ``# check:`` line."""

    definition: str
    reference: str
    arguments: tuple[str, ...]
    params: tuple[tuple[str, Value], ...]
    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    keywords: tuple[tuple[str, int], ...]
    span: Span | None = None


class TnCheckError(TnError):
    """A malformed ``# check:`` line."""


_CHECK = re.compile(r"^\s*#\s*check\s*:(.*)$")
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>-?[0-9]+)|(?P<string>'[^']*'|\"[^\"]*\")|(?P<punct>[=(),\[\]]))")


class _Tokens:
    def __init__(self, text: str, line: int, col: int, source: Source):
        self.items: list[tuple[str, str, int]] = []
        self.line, self.source = line, source
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                start = position + len(text[position:]) - len(text[position:].lstrip())
                raise TnCheckError("unexpected character in check line", self.span(col + start))
            kind = match.lastgroup or "punct"
            start = match.start(kind)
            self.items.append((kind, match.group(kind), col + start))
            position = match.end()
        self.index = 0
        self.end_col = col + len(text)

    def span(self, col: int) -> Span:
        return Span(self.line, col, self.line, col + 1, self.source)

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def next(self, kind: str | None = None, value: str | None = None, what: str = "") -> tuple[str, str, int]:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value is not None and token[1] != value):
            col = token[2] if token else self.end_col
            found = f"'{token[1]}'" if token else "the end of the line"
            raise TnCheckError(f"check line: expected {what or value or kind}, found {found}", self.span(col))
        self.index += 1
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token is not None and token[0] in ("punct", "name") and token[1] == value:
            self.index += 1
            return True
        return False


def _value(tokens: _Tokens) -> Value:
    token = tokens.peek()
    if token is not None and token[0] == "int":
        return int(tokens.next("int")[1])
    if token is not None and token[0] == "string":
        return tokens.next("string")[1][1:-1]
    if tokens.accept("("):
        values = [int(tokens.next("int", what="an integer")[1])]
        while tokens.accept(","):
            values.append(int(tokens.next("int", what="an integer")[1]))
        tokens.next("punct", ")", "')'")
        return tuple(values)
    tokens.next("int", what="an integer, a tuple of integers or a quoted string")
    raise AssertionError  # unreachable


def parse_check_lines(text: str, filename: str = "<string>") -> list[CheckSpec]:
    """All ``# check:`` lines of a program text, parsed (never evaluated)."""
    source = Source(text, filename)
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _CHECK.match(line)
        if not match:
            continue
        tokens = _Tokens(match.group(1), number, match.start(1) + 1, source)
        _, definition, col = tokens.next("name", what="a definition name")
        tokens.next("punct", "=", "'='")
        reference = tokens.next("name", what="a reference name")
        if reference[1] != DENSE and reference[1] not in REFERENCES:
            raise TnCheckError(
                f"unknown reference '{reference[1]}'; expected 'dense' or one of {', '.join(sorted(REFERENCES))}",
                tokens.span(reference[2]),
            )
        tokens.next("punct", "(", "'('")
        arguments: list[str] = []
        params: dict[str, Value] = {}
        if not tokens.accept(")"):
            while True:
                name = tokens.next("name", what="an input name or a parameter")
                if tokens.accept("="):
                    if name[1] in params:
                        raise TnCheckError(f"parameter '{name[1]}' given twice", tokens.span(name[2]))
                    params[name[1]] = _value(tokens)
                else:
                    if params:
                        raise TnCheckError("positional argument after a parameter", tokens.span(name[2]))
                    arguments.append(name[1])
                if tokens.accept(")"):
                    break
                tokens.next("punct", ",", "',' or ')'")
        shapes: dict[str, tuple[int, ...]] = {}
        keywords: dict[str, int] = {}
        if tokens.accept("with"):
            while True:
                name = tokens.next("name", what="an input shape NAME[...] or a size NAME=INT")
                if tokens.accept("["):
                    dims = [int(tokens.next("int", what="an integer")[1])]
                    while tokens.accept(","):
                        dims.append(int(tokens.next("int", what="an integer")[1]))
                    tokens.next("punct", "]", "']'")
                    if any(d < 1 for d in dims):
                        raise TnCheckError(f"shape of {name[1]} must be positive", tokens.span(name[2]))
                    shapes[name[1]] = tuple(dims)
                else:
                    tokens.next("punct", "=", "'[' or '='")
                    size = int(tokens.next("int", what="an integer")[1])
                    if size < 1:
                        raise TnCheckError(f"size {name[1]} must be positive", tokens.span(name[2]))
                    keywords[name[1]] = size
                if not tokens.accept(","):
                    break
        if tokens.peek() is not None:
            raise TnCheckError(f"check line: unexpected '{tokens.peek()[1]}'", tokens.span(tokens.peek()[2]))
        specs.append(
            CheckSpec(
                definition,
                reference[1],
                tuple(arguments),
                tuple(params.items()),
                tuple(shapes.items()),
                tuple(keywords.items()),
                tokens.span(col),
            )
        )
    return specs


# ---------------------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------------------
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
) -> list[Row]:
    """Check every definition of a ``.tn`` file; one :class:`Row` per definition."""
    path = Path(path)
    tol = TOLERANCE.get(dtype, 1e-5) if tolerance is None else tolerance
    try:
        program = load(path)
        specs = parse_check_lines(program.text, str(path))
    except TnError as error:
        return [Row(str(path), "-", "-", "-", None, None, False, str(error).splitlines()[0])]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool only costs time
    try:
        return _check_program(program, specs, path, dtype, tol, device)
    finally:
        torch.set_num_threads(threads)


def _check_program(program: Program, specs: list[CheckSpec], path: Path, dtype, tol: float, device) -> list[Row]:
    rows = []
    by_name = {}
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
        spec = by_name.get(name)
        if spec is None:
            rows.append(Row(str(path), name, "-", "-", None, None, False, "no '# check:' line for this definition"))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: "padding='same' ... zero-padded copy"
            rows.append(_check_one(program, spec, str(path), dtype, tol, torch.device(device)))
    return rows


def _check_one(program: Program, spec: CheckSpec, file: str, dtype, tol: float, device) -> Row:
    function = program[spec.definition]
    network = program.networks[spec.definition]
    shapes = dict(spec.shapes)
    row = Row(file, spec.definition, spec.reference, _format_shapes(spec), None, None, False)
    needed = set(function.inputs) | set(spec.arguments)
    missing = sorted(needed - set(shapes))
    if missing:
        row.message = f"no shape given for {', '.join(missing)}"
        return row
    generator = torch.Generator().manual_seed(zlib.crc32(f"{file}:{spec.definition}".encode()) & 0x7FFFFFFF)
    tensors = {
        name: torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
        for name, shape in shapes.items()
    }
    keywords = dict(spec.keywords)
    try:
        value = function(**{name: tensors[name] for name in function.inputs}, **keywords)
        dense = dense_reference(network, {name: tensors[name] for name in function.inputs}, keywords)
        row.dense_error = relative_error(value, dense)
        if spec.reference != DENSE:
            reference = REFERENCES[spec.reference](*(tensors[name] for name in spec.arguments), **dict(spec.params))
            row.error = relative_error(value, reference)
            if value.shape != reference.shape:
                row.message = f"shape {tuple(value.shape)} but {spec.reference} gives {tuple(reference.shape)}"
    except TnError as error:
        row.message = str(error).splitlines()[0]
        return row
    except (RuntimeError, ValueError, TypeError) as error:
        row.message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return row
    errors = [e for e in (row.error, row.dense_error) if e is not None]
    row.passed = all(e <= tol for e in errors)
    if not row.passed and not row.message:
        row.message = f"error above tolerance {tol:g}"
    return row


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table: file, op, reference, shapes, errors, status."""
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
    for r in [header, *body]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(r, widths)) + "  " + r[-1])
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1]))
    passed = sum(row.passed for row in rows)
    lines.append(f"{passed}/{len(rows)} passed")
    return "\n".join(line.rstrip() for line in lines)


def check_main(paths: Sequence[str], dtype: torch.dtype = torch.float64) -> int:
    """Check files, print the table; 0 if every row passed, else 1."""
    rows: list[Row] = []
    for path in paths:
        rows.extend(check_file(path, dtype=dtype))
    print(format_table(rows))
    return 0 if rows and all(row.passed for row in rows) else 1
