#!/usr/bin/env python3
"""Ledger benchmark: append rates, proof generation time at a large size, bytes per event.

    python tools/bench_ledger.py                       # full run (1e6 entries for proofs)
    python tools/bench_ledger.py --size 20000 --batched 5000 --single 200   # quick run

Figures (medians where repeated):
- batched appends/s: verify events in durable commits of --batch events (target >= 20,000/s)
- single appends/s:  one durable commit (synchronous=FULL) per event (target >= 1,000/s)
- proof ms:          inclusion + consistency proof generation at --size entries (target <= 1 ms)
- bytes/event:       database size after a WAL checkpoint, divided by the number of events
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from glint.ledger import EventSpec, Keys, Ledger, verify_consistency, verify_inclusion  # noqa: E402

ITEMS = 1000


def _specs(start: int, n: int, items: list[str]) -> list[EventSpec]:
    return [EventSpec("verify", items[(start + k) % len(items)],
                      {"res": "pass", "fap": 1e-9, "dev": "a1b2c3d4e5f60708", "op": "operator-7", "loc": "Paris"},
                      time=1_700_000_000 + start + k, scan=os.urandom(330))
            for k in range(n)]


def _fill(led: Ledger, total: int, batch: int, items: list[str]) -> float:
    """Append ``total`` events in batches; return events/s."""
    done = 0
    spent = 0.0
    while done < total:
        n = min(batch, total - done)
        specs = _specs(done, n, items)  # the caller's work, not timed
        t0 = time.perf_counter()
        led.append_batch(specs)
        spent += time.perf_counter() - t0
        done += n
    return total / spent


def _db_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if not p.name.endswith(".lock"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="entries for the proof benchmark")
    ap.add_argument("--batched", type=int, default=50_000, help="events for the batched-append figure")
    ap.add_argument("--batch", type=int, default=1000, help="events per batch commit")
    ap.add_argument("--single", type=int, default=2000, help="events for the one-commit-each figure")
    ap.add_argument("--proofs", type=int, default=2000, help="proofs to time")
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    work = Path(args.dir or tempfile.mkdtemp(prefix="glint-bench-"))
    keys = Keys.generate("glint.bench/ledger")
    items = [f"acme:BENCH-{i:06d}" for i in range(ITEMS)]
    res = {}

    def fresh(name):
        p = work / name
        for f in work.glob(name + "*"):
            f.unlink()
        led = Ledger.open(p, keys=keys)
        led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}},
                                    time=1_700_000_000) for it in items])
        return p, led

    # 1. batched appends (durable commits of --batch events)
    p, led = fresh("batched.db")
    res["batched_appends_per_s"] = round(_fill(led, args.batched, args.batch, items))
    led.close()

    # 2. one durable commit per event
    p, led = fresh("single.db")
    res["single_appends_per_s"] = round(_fill(led, args.single, 1, items))
    led.close()

    # 3. proofs at --size entries, 4. bytes per event
    p, led = fresh("big.db")
    t0 = time.perf_counter()
    _fill(led, args.size - led.size, 5000, items)
    res["fill_s"] = round(time.perf_counter() - t0, 1)
    note = led.checkpoint()
    size, root = led.size, led.root()
    rng = random.Random(1)
    times = []
    for _ in range(args.proofs):
        i = rng.randrange(size)
        t = time.perf_counter()
        pr = led.prove(i, size)
        times.append(time.perf_counter() - t)
    verify_inclusion(pr.leaf_hash, pr.index, size, pr.hashes, root)
    res["inclusion_proof_ms_median"] = round(statistics.median(times) * 1e3, 3)
    res["inclusion_proof_ms_p99"] = round(sorted(times)[int(len(times) * 0.99)] * 1e3, 3)
    ctimes = []
    for _ in range(min(args.proofs, 500)):
        m = rng.randrange(1, size)
        t = time.perf_counter()
        cp = led.prove_consistency(m, size)
        ctimes.append(time.perf_counter() - t)
    verify_consistency(m, size, cp, led.root(m), root)
    res["consistency_proof_ms_median"] = round(statistics.median(ctimes) * 1e3, 3)
    led.close()
    total = _db_bytes(p)
    res["size"] = size
    res["bytes_per_event"] = round(total / size, 1)
    res["note_bytes"] = len(note)
    with sqlite3.connect(p) as db:
        (blob_bytes,) = db.execute("SELECT sum(length(data)) FROM blobs").fetchone()
        (leaf_bytes,) = db.execute("SELECT avg(length(leaf)) FROM leaves").fetchone()
    res["scan_bytes_per_event"] = round(blob_bytes / size, 1)
    res["leaf_bytes_avg"] = round(leaf_bytes, 1)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:<30} {v}")
    if not args.dir:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
