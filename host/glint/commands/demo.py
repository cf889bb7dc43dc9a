"""glint demo: the main job, end to end, on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def register(sub):
    p = sub.add_parser("demo", help="run glint end to end on a virtual scanner (the README's first command)")
    p.add_argument("--home", default=os.environ.get("GLINT_HOME"),
                   help="where the demo keeps its data (default: $GLINT_HOME or a new temporary folder)")
    p.add_argument("--runtime", choices=["auto", "micropython", "cpython"], default="auto",
                   help="run the scanner firmware on MicroPython (WebAssembly, needs Node) or CPython "
                        "(default: MicroPython when Node and node_modules are there)")
    p.set_defaults(func=run)


def run(args) -> int:
    from glint.demo import run_demo

    ok = run_demo(home=Path(args.home) if args.home else None, runtime=args.runtime, out=sys.stdout)
    return 0 if ok else 1
