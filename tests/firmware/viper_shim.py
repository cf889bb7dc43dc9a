"""Run viper kernels under CPython: ``micropython.viper`` as identity, ptr8/ptr32 emulated with 8/32-bit masking.

Viper's native ints wrap at 32 bits; the emulated ptr32 store wraps the same way,
so a kernel that overflowed on a board would give a different answer here too
rather than silently agreeing with the pure twin. A ptr32 load of a negative
value raises: a 32-bit board reads it back negative but the 64-bit Unix port
zero-extends it (-1 reads as 4294967295), so a kernel must never keep negatives
in its arrays. The real MicroPython runs in tests/firmware/test_detect_unix.py.
"""

from __future__ import annotations

import builtins
import importlib
import sys
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


class _Ptr8:
    def __init__(self, buf):
        self.buf = buf

    def __getitem__(self, i):
        if i < 0:
            raise IndexError("viper ptr8 index below the buffer")
        return self.buf[i] & 0xFF

    def __setitem__(self, i, v):
        self.buf[i] = v & 0xFF


def _wrap32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


class _Ptr32:
    def __init__(self, arr):
        self.arr = arr

    def __getitem__(self, i):
        if i < 0:
            raise IndexError("viper ptr32 index below the buffer")
        v = _wrap32(self.arr[i])
        if v < 0:
            raise ValueError("viper ptr32 load of a negative value: ports differ (zero-extended on 64-bit)")
        return v

    def __setitem__(self, i, v):
        self.arr[i] = _wrap32(v)


def load_viper_module(name: str = "glintfw.detect_viper"):
    """Import a viper module under CPython with the shim installed (fresh import each call)."""
    import glintcore  # noqa: F401  (installs the micropython module with const)
    import micropython

    micropython.viper = lambda f: f
    builtins.ptr8 = _Ptr8
    builtins.ptr32 = _Ptr32
    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))
    sys.modules.pop(name, None)
    return importlib.import_module(name)
