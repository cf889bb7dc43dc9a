"""The virtual scanner: the unchanged firmware on MicroPython WebAssembly (or CPython), served on TCP.

``VirtualScanner`` starts and steers one (server.py), ``LensSpec``/``lens.apply``
choose what lies under its lens (lens.py), ``ScannerClient`` talks to any scanner
over pyserial (client.py). The CLI is ``glint virtual-scanner``.
"""

from glint.vscanner.client import ScannerClient
from glint.vscanner.lens import LensSpec
from glint.vscanner.server import VirtualScanner, default_runtime

__all__ = ["ScannerClient", "LensSpec", "VirtualScanner", "default_runtime"]
