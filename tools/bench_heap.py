#!/usr/bin/env python3
"""Heap per scan under each board's budget (board.json heap_*), on the MicroPython Unix port: the docs/boards.md table.

usage: python tools/bench_heap.py [--scans 2] [--step 4096]

For each board and heap form: whether the whole scan path (capture, detect, encode, sign,
spool, reply) runs under the budget (-X heapsize=), the live heap after boot, the bytes
allocated per scan, and once per frame size the measured need: the smallest heap (to
--step bytes, by bisection) under which the scan path passes, i.e. the peak the scan
path really needs with the GC collecting as on a board. Method and assumptions: glint.mpy.heap.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=2)
    ap.add_argument("--step", type=int, default=4096)
    args = ap.parse_args(argv)
    from glint.mpy.heap import budgets, min_heap, probe

    work = Path(tempfile.mkdtemp(prefix="glint-heap-"))
    need = {}
    print("| board | form | budget (B) | fits | idle heap (B) | allocated per scan (B) | need (B) | headroom |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for board, form, budget, cfg in budgets():
        w, h = cfg["camera"]["width"], cfg["camera"]["height"]
        if (w, h) not in need:
            need[(w, h)] = min_heap(w, h, step=args.step, work=work)
        r = probe(budget, w, h, scans=args.scans, work=work)
        n = need[(w, h)]
        print(f"| {board} | {form} | {budget} | {'yes' if r.ok else 'no: ' + r.error.split(': ')[-1][:60]} | "
              f"{r.idle or '-'} | {r.allocated if r.ok else '-'} | {n} ({w}x{h}) | {budget / n:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
