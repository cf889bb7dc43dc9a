"""glintcore: the portable core shared by glint's firmware (MicroPython) and host (CPython).

Every module here runs unchanged on MicroPython >= 1.22 and CPython >= 3.11: no
typing, dataclasses, f-string `=` specifiers, walrus-only idioms or CPython-only
modules. The wire contract (CBOR, COSE, framing, protocol codes, the scan
descriptor) is defined here once and imported by both sides.
"""

VERSION = "0.1.0"

try:  # MicroPython has const() built in; CPython gets a one-line shim so modules stay identical.
    import micropython  # noqa: F401
except ImportError:
    import sys
    import types

    _shim = types.ModuleType("micropython")
    setattr(_shim, "const", lambda x: x)  # noqa: B010  (a module attribute the type checker cannot see)
    sys.modules["micropython"] = _shim
