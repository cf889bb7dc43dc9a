"""glintcore: the portable core shared by glint's firmware (MicroPython) and host (CPython).

Every module here runs unchanged on MicroPython >= 1.22 and CPython >= 3.11: no
typing, dataclasses, f-string `=` specifiers, walrus-only idioms or CPython-only
modules. The wire contract (CBOR, COSE, framing, protocol codes, the scan
descriptor) is defined here once and imported by both sides.
"""

VERSION = "0.1.0"
