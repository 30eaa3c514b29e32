"""Programs and their compiled functions: argument checks, plan caching, calling."""

from __future__ import annotations

import functools
import os
import weakref
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Union

import torch

from ..frontend import ast
from ..frontend.builder import build, build_each
from ..frontend.limits import MAX_SIZE, Limits
from ..frontend.parser import parse
from ..ir import Network, Source, Span, TnCallError, TnError, TnNotSupportedError, TnSyntaxError, sizes_of, solve
from .constants import ConstantCache
from .dtypes import autocast_dtype, autocast_key, mixed_floats
from .dynamic import Axis, free_groups, parametric
from .einsum import MAX_LETTERS, TooManyLegs
from .emit import compile_plan, function_name
from .fx import graph_module
from .ops import Plan
from .params import Unbuilt, Variants, normalize
from .plan import plan
from .signature import Signature, promote
from .tracing import (
    hint, jit_traced_sizes, new_handle, outside_modes, publish, specialise, standin, symbolic, traced_call, under_mode, with_constants,
    withdraw,
)

__all__ = ["Program", "Function", "compile", "load"]


#: How many call signatures one function keeps planned (least recently planned out first).
MAX_PLANS = 64


Lowering = Union[bool, str]  # True: by cost; False: never; "always": every lowering that matches


def _lowering(value: Lowering | None) -> Lowering:
    """The lowering mode: the argument, else ``TNDSL_LOWERING`` (``1``/``0``/``always``)."""
    if value is None:
        text = os.environ.get("TNDSL_LOWERING", "1").lower()
        value = "always" if text == "always" else text not in ("0", "false", "off", "no")
    if value not in (True, False, "always"):
        raise TnError(f"lowering must be True (by cost), False or 'always', not {value!r}")
    return value


def _with_keyword_sizes(network: Network) -> Network:
    """``network`` with a keyword size for each leg nothing else fixes.

    Programs are checked statically, so this changes nothing for them; a network made in
    Python (e.g. by :func:`tndsl.rewrite.grad`) may have such legs, and then its function
    takes their sizes as keywords named by the label (as few as fix all the others).
    """
    _, unknown = solve(network, None)
    while unknown:
        network = replace(network, sizes=tuple(sorted((*network.sizes, (unknown[0], unknown[0])))))
        _, unknown = solve(network, None)
    return network


def _required_keywords(network: Network) -> dict[str, str]:
    """The keyword sizes no argument can fix, each with the reason (for the error)."""
    table = network.size_table
    _, unknown = solve(network, None, use_keywords=False, strict=True)
    _, guessed = solve(network, None, use_keywords=False)
    required: dict[str, str] = {}
    for label in unknown:
        keyword = table.get(label)
        if isinstance(keyword, str) and keyword not in required:
            why = "a strided pattern only bounds it" if label not in guessed else "nothing else fixes it"
            required[keyword] = f"the size of leg '{label}' ({why})"
    return required


class Function:
    """A compiled definition: call it with torch tensors (positional or by input name)."""

    def __init__(self, network: Network, lowering: Lowering | None = None, promote: bool = False):
        self.network = _with_keyword_sizes(network)
        self.lowering = _lowering(lowering)
        self.promote = promote  # mixed float dtypes: promoted (True) or refused, as torch does
        self.keywords = self.network.size_table.keywords()
        self.required = _required_keywords(self.network)
        self.params: frozenset[str] = frozenset()  # program parameters a call may bind (set by Program)
        self._program: Program | None = None  # the root program that builds the other bindings (set by Program)
        self._reset_caches()

    # -- pickling and copying: the plan caches hold exec'd code, so they are rebuilt; the
    # root program (for per-call parameters) pickles by its text and is rebuilt with it
    _CACHES = ("_constants", "_cache", "_fast", "_handle", "_dynamic", "_published")

    def _reset_caches(self) -> None:
        self._constants = ConstantCache()  # plan-time constants (folded Π), freed with the function
        self._cache: OrderedDict[tuple, tuple[Any, str]] = OrderedDict()  # signature -> (code, source)
        self._fast: dict[tuple, Any] = {}  # call signature -> (function, argument order)
        # signature with symbolic batch sizes -> code reading them from its arguments, or
        # None where the plan depends on them (see dynamic.py)
        self._dynamic: OrderedDict[tuple, Any] = OrderedDict()
        # static signature seen by dynamo -> the name tracing.publish holds its code under
        self._published: OrderedDict[tuple, str] = OrderedDict()
        weakref.finalize(self, withdraw, self._published.values())
        self._handle = new_handle(self)  # what torch.compile sees of this function

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHES}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_caches()

    @property
    def name(self) -> str:
        return self.network.name

    @functools.cached_property
    def _free_groups(self) -> list[tuple[Axis, ...]]:
        """The argument axes whose sizes may stay symbolic under torch.compile (dynamic.py)."""
        return free_groups(self.network)

    @property
    def __name__(self) -> str:  # noqa: A003 - what torch.jit.trace and profilers name a callable by
        return function_name(self.name)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.network.inputs)

    def __repr__(self) -> str:
        args = ", ".join(self.inputs + tuple(f"{k}=" if k in self.required else f"{k}=None" for k in self.keywords))
        return f"<tndsl function {self.name}({args})>"

    def _for_params(self, kwargs: dict[str, Any]) -> tuple[Function, dict[str, Any]]:
        """The function built for the program parameters among ``kwargs``, and the rest."""
        given = {k: v for k, v in kwargs.items() if k in self.params}
        if not given or self._program is None or self._program.bindings is None:
            return self, kwargs
        variant = self._program.bindings.get(given, self.name)[self.name]
        return variant, {k: v for k, v in kwargs.items() if k not in given}

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.params and kwargs and not self.params.isdisjoint(kwargs):
            function, kwargs = self._for_params(kwargs)
            if function is not self:
                return function(*args, **kwargs)
        if torch.compiler.is_compiling():  # dynamo: plan and run outside its trace (see tracing.py)
            return traced_call(self._handle, args, kwargs)
        return self._call(*args, **kwargs)

    def _call(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if under_mode():  # fake, meta-proxy or tracing modes: plan afresh, cache nothing
            tensors, keywords = self._bind(args, kwargs)
            return self._compile(tensors, keywords, ConstantCache())[0](*tensors)
        try:  # fast path: a call signature planned before (types are part of it: 2 != 2.0)
            key = (
                tuple((type(a), a.shape, a.dtype, a.device) for a in args),
                tuple((k, v.shape, v.dtype, v.device) if isinstance(v, torch.Tensor) else (k, type(v), v) for k, v in kwargs.items()),
                autocast_key(),
            )
            hit = self._fast.get(key)
        except (AttributeError, TypeError):
            key, hit = None, None
        if hit is not None:
            function, order = hit
            try:
                if order is None:
                    return function(*args)
                return function(*[args[i] if isinstance(i, int) else kwargs[i] for i in order])
            except NotImplementedError as error:  # e.g. an op torch lacks for this dtype and device
                raise self._unsupported(error, args, kwargs) from None
        tensors, keywords = self._bind(args, kwargs)
        try:
            with jit_traced_sizes():
                function = self._planned(tensors, keywords)
            if key is not None:
                positions = {n: i for i, n in enumerate(self.inputs[: len(args)])}
                order = [positions.get(n, n) for n in self.inputs]
                self._fast[key] = (function, None if order == list(range(len(args))) else order)
            return function(*tensors)
        except NotImplementedError as error:  # planning folds constants with torch too
            raise self._unsupported(error, args, kwargs) from None

    def _static(self, described: tuple, names: tuple, autocast: tuple) -> str | None:
        """Inside dynamo, for arguments of static shapes (``described`` by tracing.py,
        positional ones first, then those named ``names``): the name of this signature's
        published code and argument order, planned now if need be; bad arguments raise
        the eager call's TnCallError (dynamo wraps it). None sends the call to the traced
        region: an autocast region opened inside the compiled function (dynamo's
        autocast state is not the process's)."""
        if autocast != autocast_key():
            return None
        key = (described, names, autocast)
        name = self._published.get(key)
        if name is not None:
            self._published.move_to_end(key)
            return name
        with outside_modes():
            values = [standin(tuple(d[0]), d[1], d[2]) if len(d) == 3 else d[0] for d in described]
            given = len(described) - len(names)
            tensors, keywords = self._bind(tuple(values[:given]), dict(zip(names, values[given:])))
            try:
                function = self._planned(tensors, keywords)
            except NotImplementedError as error:  # planning folds constants with torch too
                raise self._unsupported(error, tuple(values), {}) from None
        positions = {n: i for i, n in enumerate(self.inputs[:given])}
        order = tuple(positions.get(n, n) for n in self.inputs)
        name = self._published[key] = publish((function, None if order == tuple(range(given)) else order))
        if len(self._published) > MAX_PLANS:
            withdraw([self._published.popitem(last=False)[1]])
        return name

    def _traced(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """A call inside ``torch.compile`` (see tracing.py): planned outside the trace's
        modes on stand-ins of the arguments, cached, its constants lifted into the trace.
        Symbolic sizes of free argument axes stay symbolic where the plan allows
        (dynamic.py); every other symbolic size is specialised."""
        if not under_mode():  # the region run eagerly (dynamo's "eager" backend): a plain call
            return self._call(*args, **kwargs)
        kwargs = {k: specialise(v) if isinstance(v, torch.SymInt) else v for k, v in kwargs.items()}
        tensors, keywords = self._bind(args, kwargs)
        shapes = [tuple(t.shape) for t in tensors]
        groups = [g for g in self._free_groups if symbolic(shapes[g[0][0]][g[0][1]])]
        groups = [g for g in groups if hint(shapes[g[0][0]][g[0][1]]) >= 2]
        for group in groups:  # the axes of one group keep one size (a guard, as torch adds)
            (i, j), *rest = group
            for k, l in rest:
                if shapes[k][l] != shapes[i][j]:
                    raise self._error(
                        f"axis {j} of '{self.inputs[i]}' ({hint(shapes[i][j])}) and axis {l} of '{self.inputs[k]}' "
                        f"({hint(shapes[k][l])}) are one leg: their sizes must be equal"
                    )
        free = {axis for group in groups for axis in group}
        sizes = [tuple(hint(d) for d in shape) for shape in shapes]
        autocast = autocast_dtype(tensors[0].device) if tensors else None
        key = (
            tuple(tuple(None if (i, j) in free else d for j, d in enumerate(shape)) for i, shape in enumerate(sizes)),
            tuple((t.dtype, t.device) for t in tensors), tuple(keywords.items()), autocast,
        )
        try:
            with outside_modes():
                standins = [standin(shape, t.dtype, t.device) for shape, t in zip(sizes, tensors)]
                function = self._dynamic.get(key) if groups else None
                if groups and key not in self._dynamic:
                    function = self._dynamic[key] = self._parametric(standins, keywords, groups)
                    if len(self._dynamic) > MAX_PLANS:
                        self._dynamic.popitem(last=False)
                if function is None:  # static shapes, or a plan that depends on the symbolic sizes
                    free = set()
                    function = self._planned(standins, keywords)
        except NotImplementedError as error:  # planning folds constants with torch too
            raise self._unsupported(error, args, kwargs) from None
        for i, shape in enumerate(shapes):
            for j, d in enumerate(shape):
                if (i, j) not in free:
                    specialise(d)
        return with_constants(function)(*tensors)

    def _parametric(self, standins: list[torch.Tensor], keywords: dict[str, int], groups: list[tuple[Axis, ...]]) -> Any:
        """The code for these stand-ins with each group's size read from the arguments, or
        None where the plan depends on those sizes (see dynamic.py): the plan at these
        sizes against the plans with one group's size one larger."""
        base = self._plan(standins, keywords)
        probes = []
        for group in groups:
            bumped = [list(t.shape) for t in standins]
            for i, j in group:
                bumped[i][j] += 1
            try:
                probe = self._plan([standin(tuple(s), t.dtype, t.device) for s, t in zip(bumped, standins)], keywords)
            except TnError:
                return None
            (i, j) = group[0]
            probes.append((group[0], standins[i].shape[j], probe))
        dtype = promote(standins)[0]
        general = parametric(base, probes, dtype.is_floating_point or dtype.is_complex)
        if general is None:
            return None
        shapes = [["*" if (i, j) in {a for g in groups for a in g} else d for j, d in enumerate(t.shape)]
                  for i, t in enumerate(standins)]
        return compile_plan(general, function_name(self.name), f"tndsl network {self.name!r} for shapes {shapes}")[0]

    def _planned(self, tensors: list[torch.Tensor], keywords: dict[str, int]) -> Any:
        """The compiled function for this call signature (and autocast state), planned once and cached."""
        autocast = autocast_dtype(tensors[0].device) if tensors else None
        signature = (tuple((tuple(map(int, t.shape)), t.dtype, t.device) for t in tensors), tuple(keywords.items()), autocast)
        entry = self._cache.get(signature)
        if entry is None:
            entry = self._cache[signature] = self._compile(tensors, keywords)
            if len(self._cache) > MAX_PLANS:  # least recently planned out; its fast keys too
                _, (dropped, _) = self._cache.popitem(last=False)
                self._fast = {k: v for k, v in self._fast.items() if v[0] is not dropped}
        else:
            self._cache.move_to_end(signature)
        return entry[0]

    def source(self, *args: Any, **kwargs: Any) -> str:
        """The generated Python source for these arguments' shapes, dtypes and device."""
        function, kwargs = self._for_params(kwargs)
        if function is not self:
            return function.source(*args, **kwargs)
        tensors, keywords = self._bind(args, kwargs)
        return self._compile(tensors, keywords)[1]

    def plan(self, *args: Any, **kwargs: Any) -> Plan:
        """The op list this function runs for these arguments (``print`` it to read it)."""
        function, kwargs = self._for_params(kwargs)
        if function is not self:
            return function.plan(*args, **kwargs)
        tensors, keywords = self._bind(args, kwargs)
        return self._plan(tensors, keywords)

    def fx(self, *args: Any, **kwargs: Any) -> torch.fx.GraphModule:
        """The plan for these arguments' signature as a ``torch.fx.GraphModule`` (its
        constants are tensor attributes): it pickles, scripts, and needs no tndsl to run."""
        function, kwargs = self._for_params(kwargs)
        if function is not self:
            return function.fx(*args, **kwargs)
        tensors, keywords = self._bind(args, kwargs)
        return graph_module(self._compile(tensors, keywords, ConstantCache())[0], function_name(self.name))

    # -- internals ----------------------------------------------------------------------
    def _error(self, message: str) -> TnCallError:
        return TnCallError(f"calling '{self.name}': {message}", self.network.span)

    def _unsupported(self, error: NotImplementedError, args: tuple, kwargs: dict) -> TnCallError:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        dtype, device = promote(tensors)
        return self._error(f"torch cannot compute this network in {dtype} on {device}: {error}")

    def _bind(self, args: tuple, kwargs: dict) -> tuple[list[torch.Tensor], dict[str, int]]:
        names = self.inputs
        if len(args) > len(names):
            raise self._error(f"takes {len(names)} tensor arguments ({', '.join(names)}) but {len(args)} were given")
        bound: dict[str, Any] = dict(zip(names, args))
        keywords: dict[str, int] = {}
        for key, value in kwargs.items():
            if key in names and (key not in self.keywords or isinstance(value, torch.Tensor)):
                if key in bound:
                    raise self._error(f"argument '{key}' given twice")
                bound[key] = value
            elif key in self.keywords:
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
                    raise self._error(f"size '{key}' must be a positive integer up to 2**63 - 1, not {value!r}")
                keywords[key] = value
            else:
                expected = ", ".join(names + self.keywords + tuple(sorted(self.params)))
                raise self._error(f"unexpected argument '{key}' (expected {expected})")
        missing = [n for n in names if n not in bound]
        if missing:
            raise self._error(f"missing tensor argument(s): {', '.join(missing)}")
        missing = [k for k in self.required if k not in keywords]
        if missing:
            raise self._error(
                f"missing size keyword argument(s): {', '.join(f'{k}=' for k in missing)}: "
                + "; ".join(self.required[k] for k in missing)
            )
        tensors = []
        for spec in self.network.inputs:
            value = bound[spec.name]
            if not isinstance(value, torch.Tensor):
                raise self._error(f"argument '{spec.name}' must be a torch.Tensor, not {type(value).__name__}")
            if spec.target and (value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool):
                raise self._error(f"argument '{spec.name}' is an index: it must hold integers, not {value.dtype}")
            if value.dim() != len(spec.axes):
                axes = ", ".join("(" + " ".join(a) + ")" if len(a) > 1 else a[0] for a in spec.axes)
                raise self._error(
                    f"argument '{spec.name}' must have {len(spec.axes)} axes [{axes}], got shape {tuple(value.shape)}"
                )
            tensors.append(value)
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise self._error(f"arguments are on different devices: {', '.join(sorted(map(str, devices)))}")
        self._check_dtypes(tensors)
        return tensors, keywords

    def _check_dtypes(self, tensors: list[torch.Tensor]) -> None:
        """Refuse mixed float dtypes as torch does (unless the program promotes); an index's
        integers never mix."""
        if self.promote or not tensors:
            return
        named = [(spec.name, t.dtype) for spec, t in zip(self.network.inputs, tensors) if not spec.target]
        mixed = mixed_floats(named, autocast_dtype(tensors[0].device))
        if mixed is not None:
            (a, a_dtype), (b, b_dtype) = mixed
            raise self._error(
                f"arguments '{a}' ({a_dtype}) and '{b}' ({b_dtype}) have different dtypes; "
                "convert one, or compile the program with promote=True"
            )

    def _compile(
        self, tensors: list[torch.Tensor], keywords: dict[str, int], constants: ConstantCache | None = None
    ) -> tuple[Any, str]:
        shapes = [list(t.shape) for t in tensors]
        return compile_plan(
            self._plan(tensors, keywords, constants), function_name(self.name), f"tndsl network {self.name!r} for shapes {shapes}"
        )

    def _plan(self, tensors: list[torch.Tensor], keywords: dict[str, int], constants: ConstantCache | None = None) -> Plan:
        values, unknown = solve(self.network, [tuple(t.shape) for t in tensors], keywords)
        if unknown:  # not reached: the static check in _with_keyword_sizes covers every label
            raise self._error(f"cannot infer the size of leg(s) {', '.join(unknown)}")
        autocast = autocast_dtype(tensors[0].device) if tensors else None
        signature = Signature.of(tensors, sizes_of(values), autocast)
        try:
            return plan(self.network, signature, self.lowering, self._constants if constants is None else constants)
        except TooManyLegs as error:
            raise TnNotSupportedError(
                f"in '{self.name}': {error} with a diagonal (a leg repeated on one tensor); "
                f"torch.einsum names at most {MAX_LETTERS} legs",
                self.network.span,
                "split the tensor's legs into fewer, grouped axes",
            ) from None


class Program:
    """A parsed and built ``.tn`` program: one :class:`Function` per definition.

    ``params`` bind the program's ``param`` declarations (see :mod:`.params`); a call may
    bind the others by keyword, and each distinct binding is built once.
    """

    def __init__(
        self,
        text: str,
        filename: str = "<string>",
        lowering: Lowering | None = None,
        limits: Limits | None = None,
        params: dict[str, Any] | None = None,
        promote: bool = False,
        *,
        _tree: ast.Program | None = None,
    ):
        self.text = text
        self.filename = filename
        self._arguments = (lowering, limits, dict(params or {}), promote)  # to rebuild when unpickled
        self.ast: ast.Program = _tree if _tree is not None else parse(text, filename, limits)
        given = {name: normalize(name, value) for name, value in (params or {}).items()}
        if given:  # a definition this binding cannot build fails when called, not at load
            self.declarations, self.networks, errors = build_each(self.ast, limits, given)
        else:
            (self.declarations, self.networks), errors = build(self.ast, limits), {}
        self.params = dict(self.declarations.params)
        self.functions = {name: Function(network, lowering, promote) for name, network in self.networks.items()}
        self.unbuilt = {name: Unbuilt(name, error, given) for name, error in errors.items()}
        self.bindings: Variants[Program] | None = None  # the programs built per binding (root only)
        if _tree is None and self.params:
            def make(binding: dict[str, Any]) -> Program:
                return Program(text, filename, lowering, limits, binding, promote, _tree=self.ast)

            variants: Variants[Program] = Variants(self.params, set(given), make, self)
            self.bindings = variants
            free = frozenset(self.params)
            for function in self.functions.values():
                function.params = free
                function._program = self
        for name, function in self.functions.items():  # found without __getattr__ (which dynamo would trace)
            if name not in self.__dict__ and not hasattr(type(self), name):
                self.__dict__[name] = function

    def __reduce__(self) -> tuple:
        """Pickled by its text and arguments: rebuilt (plans and bindings afresh) when loaded."""
        return (_rebuild_program, (self.text, self.filename, *self._arguments))

    def __getitem__(self, name: str) -> Function:
        if name in self.unbuilt:
            raise self.unbuilt[name].error()
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"no definition named {name!r}; defined: {', '.join(self.functions)}") from None

    def __getattr__(self, name: str) -> Function:
        functions = self.__dict__.get("functions", {})
        if name in functions:
            return functions[name]
        unbuilt = self.__dict__.get("unbuilt", {})
        if name in unbuilt:
            raise unbuilt[name].error()
        raise AttributeError(f"no definition named {name!r}; defined: {', '.join(functions)}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.functions)

    def __repr__(self) -> str:
        return f"<tndsl program {self.filename}: {', '.join(self.functions)}>"


def compile(  # noqa: A001
    text: str,
    filename: str = "<string>",
    lowering: Lowering | None = None,
    limits: Limits | None = None,
    promote: bool = False,
    **params: Any,
) -> Program:
    """Parse, check and build a program; its definitions compile lazily per shape.

    ``params`` bind its ``param`` declarations (``stride=(2, 2)``); a bound parameter
    cannot be changed per call, an unbound one keeps its default unless a call binds it.

    ``lowering``: True (by cost), False or ``"always"``; ``limits`` (:class:`tndsl.Limits`)
    bound the program's size; by default the built-in limits, each overridden by its
    ``TNDSL_<FIELD>`` environment variable. ``promote``: arguments of different float
    dtypes compute in their promoted dtype (by default they are refused, as torch does).
    """
    return Program(text, filename, lowering, limits, params, promote)


def load(
    path: str | os.PathLike,
    lowering: Lowering | None = None,
    limits: Limits | None = None,
    promote: bool = False,
    **params: Any,
) -> Program:
    """Load a ``.tn`` file; messages name it by the path given; ``promote`` and ``params``
    as for :func:`compile`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TnError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, data, error.start) from None
    return Program(text, str(path), lowering, limits, params, promote)


def _rebuild_program(
    text: str, filename: str, lowering: Lowering | None, limits: Limits | None, params: dict[str, Any], promote: bool
) -> Program:
    return Program(text, filename, lowering, limits, params, promote)


def _not_utf8(path: Path, data: bytes, start: int) -> TnSyntaxError:
    """A positioned error at the first byte that is not UTF-8."""
    line_start = data.rfind(b"\n", 0, start) + 1
    line = data.count(b"\n", 0, start) + 1
    col = len(data[line_start:start].decode("utf-8", "replace")) + 1
    source = Source(data.decode("utf-8", "replace"), str(path))
    return TnSyntaxError(f"the file is not UTF-8 text: byte 0x{data[start]:02x} cannot be read", Span(line, col, line, col + 1, source),
                         "save the file as UTF-8")
