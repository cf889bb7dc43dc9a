"""Run glint's device code on the official MicroPython WebAssembly port under Node."""

from glint.mpy.wasm import MicroPython, MicroPythonError, find_micropython_mjs, micropython_available

__all__ = ["MicroPython", "MicroPythonError", "find_micropython_mjs", "micropython_available"]
