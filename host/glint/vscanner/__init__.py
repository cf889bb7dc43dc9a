"""The virtual scanner: the unchanged firmware on MicroPython WebAssembly (or CPython), served on TCP.

``VirtualScanner`` starts and steers one (server.py), ``LensSpec``/``lens.apply``
choose what lies under its lens (lens.py). Talk to it as to any scanner, with
``glint.link.open_scanner(vs.url)`` (the one scanner client). The CLI is ``glint virtual-scanner``.
"""

from glint.vscanner.lens import LensSpec
from glint.vscanner.server import VirtualScanner, default_runtime

__all__ = ["LensSpec", "VirtualScanner", "default_runtime"]
