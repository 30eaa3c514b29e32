"""Programs and their compiled functions: argument checks, plan caching, calling."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch

from ..frontend import ast
from ..frontend.builder import build
from ..frontend.limits import MAX_SIZE, Limits
from ..frontend.parser import parse
from ..ir import Network, TnCallError, TnError, TnNotSupportedError, solve
from .constants import ConstantCache
from .einsum import MAX_LETTERS, TooManyLegs
from .emit import compile_plan, function_name
from .ops import Plan
from .plan import plan
from .signature import Signature, promote

__all__ = ["Program", "Function", "compile", "load"]


#: How many call signatures one function keeps planned (least recently planned out first).
MAX_PLANS = 64


def _lowering_default() -> bool:
    return os.environ.get("TNDSL_LOWERING", "1").lower() not in ("0", "false", "off", "no")


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


class Function:
    """A compiled definition: call it with torch tensors (positional or by input name)."""

    def __init__(self, network: Network, lowering: bool | None = None):
        self.network = _with_keyword_sizes(network)
        self.lowering = _lowering_default() if lowering is None else lowering
        self._constants = ConstantCache()  # plan-time constants (folded Π), freed with the function
        self._cache: OrderedDict[tuple, tuple[Any, str]] = OrderedDict()  # signature -> (code, source)
        self._fast: dict[tuple, Any] = {}  # call signature -> (function, argument order)
        self.keywords = tuple(dict.fromkeys(v for _, v in self.network.sizes if isinstance(v, str)))

    @property
    def name(self) -> str:
        return self.network.name

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.network.inputs)

    def __repr__(self) -> str:
        args = ", ".join(self.inputs + tuple(f"{k}=" for k in self.keywords))
        return f"<tndsl function {self.name}({args})>"

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        try:  # fast path: a call signature planned before (types are part of it: 2 != 2.0)
            key = (
                tuple((type(a), a.shape, a.dtype, a.device) for a in args),
                tuple((k, v.shape, v.dtype, v.device) if isinstance(v, torch.Tensor) else (k, type(v), v) for k, v in kwargs.items()),
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
            function = self._planned(tensors, keywords)
            if key is not None:
                positions = {n: i for i, n in enumerate(self.inputs[: len(args)])}
                order = [positions.get(n, n) for n in self.inputs]
                self._fast[key] = (function, None if order == list(range(len(args))) else order)
            return function(*tensors)
        except NotImplementedError as error:  # planning folds constants with torch too
            raise self._unsupported(error, args, kwargs) from None

    def _planned(self, tensors: list[torch.Tensor], keywords: dict[str, int]) -> Any:
        """The compiled function for this call signature, planned once and cached."""
        signature = (tuple((t.shape, t.dtype, t.device) for t in tensors), tuple(keywords.items()))
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
        tensors, keywords = self._bind(args, kwargs)
        return self._compile(tensors, keywords)[1]

    def plan(self, *args: Any, **kwargs: Any) -> Plan:
        """The op list this function runs for these arguments (``print`` it to read it)."""
        tensors, keywords = self._bind(args, kwargs)
        return self._plan(tensors, keywords)

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
                expected = ", ".join(names + self.keywords)
                raise self._error(f"unexpected argument '{key}' (expected {expected})")
        missing = [n for n in names if n not in bound]
        if missing:
            raise self._error(f"missing tensor argument(s): {', '.join(missing)}")
        missing = [k for k in self.keywords if k not in keywords]
        if missing:
            raise self._error(f"missing size keyword argument(s): {', '.join(f'{k}=' for k in missing)}")
        tensors = []
        for spec in self.network.inputs:
            value = bound[spec.name]
            if not isinstance(value, torch.Tensor):
                raise self._error(f"argument '{spec.name}' must be a torch.Tensor, not {type(value).__name__}")
            if value.dim() != len(spec.axes):
                axes = ", ".join("(" + " ".join(a) + ")" if len(a) > 1 else a[0] for a in spec.axes)
                raise self._error(
                    f"argument '{spec.name}' must have {len(spec.axes)} axes [{axes}], got shape {tuple(value.shape)}"
                )
            tensors.append(value)
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise self._error(f"arguments are on different devices: {', '.join(sorted(map(str, devices)))}")
        return tensors, keywords

    def _compile(self, tensors: list[torch.Tensor], keywords: dict[str, int]) -> tuple[Any, str]:
        shapes = [list(t.shape) for t in tensors]
        return compile_plan(self._plan(tensors, keywords), function_name(self.name), f"tndsl network {self.name!r} for shapes {shapes}")

    def _plan(self, tensors: list[torch.Tensor], keywords: dict[str, int]) -> Plan:
        values, unknown = solve(self.network, [tuple(t.shape) for t in tensors], keywords)
        if unknown:  # not reached: the static check in _with_keyword_sizes covers every label
            raise self._error(f"cannot infer the size of leg(s) {', '.join(unknown)}")
        signature = Signature.of(tensors, values)
        try:
            return plan(self.network, signature, self.lowering, self._constants)
        except TooManyLegs as error:
            raise TnNotSupportedError(
                f"in '{self.name}': {error} with a diagonal (a leg repeated on one tensor); "
                f"torch.einsum names at most {MAX_LETTERS} legs",
                self.network.span,
                "split the tensor's legs into fewer, grouped axes",
            ) from None


class Program:
    """A parsed and built ``.tn`` program: one :class:`Function` per definition."""

    def __init__(self, text: str, filename: str = "<string>", lowering: bool | None = None, limits: Limits | None = None):
        self.text = text
        self.filename = filename
        self.ast: ast.Program = parse(text, filename, limits)
        self.declarations, self.networks = build(self.ast, limits)
        self.functions = {name: Function(net, lowering) for name, net in self.networks.items()}

    def __getitem__(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"no definition named {name!r}; defined: {', '.join(self.functions)}") from None

    def __getattr__(self, name: str) -> Function:
        functions = self.__dict__.get("functions", {})
        if name in functions:
            return functions[name]
        raise AttributeError(f"no definition named {name!r}; defined: {', '.join(functions)}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.functions)

    def __repr__(self) -> str:
        return f"<tndsl program {self.filename}: {', '.join(self.functions)}>"


def compile(  # noqa: A001
    text: str, filename: str = "<string>", lowering: bool | None = None, limits: Limits | None = None
) -> Program:
    """Parse, check and build a program; its definitions compile lazily per shape.

    ``limits`` (:class:`tndsl.Limits`) bound the program's size; by default the built-in
    limits, each overridden by its ``TNDSL_<FIELD>`` environment variable.
    """
    return Program(text, filename, lowering, limits)


def load(path: str | os.PathLike, lowering: bool | None = None, limits: Limits | None = None) -> Program:
    """Load a ``.tn`` file; messages name it by the path given."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TnError(f"cannot read {path}: {error.strerror}") from None
    return Program(text, str(path), lowering, limits)
