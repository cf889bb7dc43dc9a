"""Device side of glint.mpy.unix: runs ON the MicroPython Unix port, not on CPython.

    micropython -X heapsize=N _unix_runner.py ROOT TOKEN

Mounts the host directory ROOT as the device filesystem "/" (_unix_vfs), puts
/lib on sys.path like a board, then executes requests from stdin in one __main__
namespace: each request is a 4-byte big-endian length and that many bytes of
source. What the code prints goes to stdout as it runs; after it, TOKEN and one
JSON line: {"ok": true} or {"ok": false, "type": "...", "error": "<traceback>"}.
"""

import sys


def main():
    import io
    import json

    import _unix_vfs  # beside this script (sys.path[0]), imported before "/" is remounted

    root = sys.argv[1]
    token = sys.argv[2].encode()
    _unix_vfs.mount(root)
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    g = {"__name__": "__main__"}
    while True:
        h = inp.read(4)
        if len(h) < 4:
            return
        n = int.from_bytes(h, "big")
        code = inp.read(n).decode()
        try:
            exec(code, g)
            reply = {"ok": True}
        except BaseException as e:  # noqa: B036 - every failure goes back to the host
            s = io.StringIO()
            sys.print_exception(e, s)
            reply = {"ok": False, "type": type(e).__name__, "error": s.getvalue()}
        out.write(token)
        out.write(json.dumps(reply).encode())
        out.write(b"\n")


if sys.implementation.name == "micropython":
    main()
