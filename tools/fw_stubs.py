#!/usr/bin/env python3
"""Fetch the pinned micropython-*-stubs for every board's port into build/stubs (needs PyPI once).

    python tools/fw_stubs.py            # then: pytest tests/firmware/test_typecheck.py
    python tools/fw_stubs.py --check    # also type-check every board and print the findings

CI runs it before the test suite so the type check never skips for want of stubs.
"""

from __future__ import annotations

import argparse
import sys
import time

from glint.errors import GlintError
from glint.fw import typecheck
from glint.fw.build import list_boards, load_board


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="type-check every board after fetching")
    args = ap.parse_args()
    try:
        for name in sorted({typecheck.flavour(load_board(b)) for b in list_boards()}):
            t0 = time.monotonic()
            d = typecheck.install_stubs(name)
            print(f"{typecheck.STUBS[name]:45s} {d} ({time.monotonic() - t0:.1f} s)")
        bad = 0
        if args.check:
            for b in list_boards():
                t0 = time.monotonic()
                findings = typecheck.check(b)
                bad += len(findings)
                print(f"{b:20s} {len(findings)} findings ({time.monotonic() - t0:.1f} s)")
                for f in findings:
                    print(f"  {f}")
        return 1 if bad else 0
    except GlintError as e:
        print(f"fw_stubs: {e.oneline()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
