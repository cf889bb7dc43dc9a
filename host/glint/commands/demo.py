"""glint demo: the main job, end to end, on this machine (in a temporary home unless --home names one)."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub):
    p = sub.add_parser("demo", help="run glint end to end on a virtual scanner (the README's first command)",
                       description="Run the whole system on a virtual scanner. The data goes to a fresh temporary "
                                   "home that is removed at the end, unless the global --home names a folder "
                                   "($GLINT_HOME is not used). A home holding a real ledger or registry is refused.")
    p.add_argument("--runtime", choices=["auto", "micropython", "unix", "node", "cpython"], default="auto",
                   help="run the scanner firmware on MicroPython: the Unix port (unix, default where installed) "
                        "or WebAssembly under Node (node); cpython only where neither is installed")
    p.add_argument("--allow-real-home", action="store_true",
                   help="let the demo add its devices and events to a --home that holds a real ledger")
    p.set_defaults(func=cmd_demo, home_policy="demo")


def cmd_demo(args) -> int:
    from glint.workflows.demo import run_demo

    home = getattr(args, "home", None)
    ok = run_demo(home=Path(home) if home else None, runtime=args.runtime, out=sys.stdout,
                  allow_real=args.allow_real_home)
    return 0 if ok else 1
