"""Program parameters (``param stride = 1``): checking values given from Python and
keeping one built program per distinct binding."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Generic, Mapping, TypeVar

from ..frontend.declarations import ParamValue
from ..ir import TnCallError, TnError
from ..ir.errors import _rebuild

__all__ = ["normalize", "binding_key", "Variants", "Unbuilt", "MAX_VARIANTS"]

#: How many bindings one program keeps built (least recently used out first).
MAX_VARIANTS = 64

T = TypeVar("T")


def normalize(name: str, value: Any) -> ParamValue:
    """A parameter value from Python as the language writes it: an int, a string, or a
    tuple (lists become tuples) of ints and ``(left, right)`` pairs."""
    if isinstance(value, (list, tuple)):
        items = tuple(normalize(name, v) for v in value)
        if any(isinstance(v, str) for v in items):
            raise TnError(f"parameter '{name}': a tuple holds integers and pairs, not strings: {value!r}")
        return items
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TnError(f"parameter '{name}' must be an int, a string or a tuple of them, not {value!r}")
    return value


def binding_key(params: Mapping[str, ParamValue]) -> tuple:
    """A hashable key of a binding: its items by name."""
    return tuple(sorted(params.items()))


class Variants(Generic[T]):
    """The programs built for each binding of the parameters, one per distinct binding.

    ``fixed`` are the parameters bound when the program was loaded: a call may repeat
    them but not change them; the others default to their declarations and may be bound
    per call.
    """

    def __init__(self, params: Mapping[str, ParamValue], fixed: set[str], make: Callable[[dict[str, ParamValue]], T], first: T):
        self.params = dict(params)
        self.fixed = set(fixed)
        self._make = make
        self._built: OrderedDict[tuple, T] = OrderedDict({binding_key(self.params): first})

    def __len__(self) -> int:
        """How many bindings are built."""
        return len(self._built)

    def get(self, given: Mapping[str, Any], where: str) -> T:
        """The program for this call's parameters (built on first use)."""
        merged = dict(self.params)
        for name, value in given.items():
            value = normalize(name, value)
            if name in self.fixed and value != self.params[name]:
                raise TnCallError(
                    f"calling '{where}': parameter '{name}' was bound to {self.params[name]!r} when the program was "
                    f"loaded; this call gives {value!r} (load the program again to change it)"
                )
            merged[name] = value
        key = binding_key(merged)
        program = self._built.get(key)
        if program is None:
            program = self._built[key] = self._make(merged)
            if len(self._built) > MAX_VARIANTS:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(key)
        return program


class Unbuilt:
    """A definition that the bound parameters cannot build (e.g. a 3-d product under a
    2-tuple stride): using it raises the build error, with the binding named."""

    def __init__(self, name: str, error: TnError, params: Mapping[str, ParamValue]):
        self.name = name
        self.cause = error
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        self.message = f"'{name}' cannot be built with {shown}: {error.message}"

    def __repr__(self) -> str:
        return f"<tndsl definition {self.name} (not built: {self.cause.message})>"

    def error(self) -> TnError:
        """The error to raise, of the build error's type, at its position."""
        return _rebuild(type(self.cause), self.message, self.cause.span, self.cause.hint)
