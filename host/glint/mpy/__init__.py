"""Run glint's device code on a real MicroPython: the Unix port (glint.mpy.unix) or WebAssembly under Node (glint.mpy.wasm).

``runtime`` names: "unix" (the MicroPython Unix port, viper and native emitters: what
a board runs), "node" (the WebAssembly port under Node, no native emitters). The Unix
port is the default wherever it is installed (a dependency on x86-64 Linux).
"""

from glint.mpy.unix import UnixMicroPython, find_unix_port, unix_available
from glint.mpy.wasm import MicroPython, MicroPythonError, find_micropython_mjs, micropython_available

RUNTIMES = ("unix", "node")
RUNTIME_NAMES = {"unix": "MicroPython Unix port", "node": "MicroPython WebAssembly port (Node)",
                 "cpython": "CPython"}


def runtime_available(runtime: str) -> bool:
    return unix_available() if runtime == "unix" else micropython_available() if runtime == "node" else False


def available_runtimes() -> list[str]:
    """The MicroPython runtimes installed here, preferred first."""
    return [r for r in RUNTIMES if runtime_available(r)]


def open_micropython(runtime: str = "unix", **kw):
    """A MicroPython interpreter of ``runtime`` ("unix" or "node") with glint.mpy.wasm.MicroPython's interface."""
    return UnixMicroPython(**kw) if runtime == "unix" else MicroPython(**kw)


__all__ = ["MicroPython", "UnixMicroPython", "MicroPythonError", "find_micropython_mjs", "find_unix_port",
           "micropython_available", "unix_available", "available_runtimes", "runtime_available",
           "open_micropython", "RUNTIMES", "RUNTIME_NAMES"]
