#!/usr/bin/env python3
"""Ledger benchmark: append rates, proof generation time at a large size, bytes per event.

    python tools/bench_ledger.py                       # full run (1e6 entries for proofs)
    python tools/bench_ledger.py --size 20000 --batched 5000 --single 200 --group 2000   # quick run

Figures (rates are medians of --repeat runs, each on a fresh ledger; every run's value is listed):
- fsync_per_s:        the disk's raw rate of 4 KiB append + fsync in the work directory, measured
                      before each run (and fdatasync_overwrite_per_s: 4 KiB rewrite in place + fdatasync)
- batched appends/s:  verify events in durable commits of --batch events (target >= 20,000/s)
- single appends/s:   one caller, one durable commit (synchronous=FULL) per event
- group appends/s:    --threads callers appending one event each time through a LedgerWorker:
                      each caller acknowledged once its event is durable, commits shared (target >= 1,000/s)
- proof ms:           inclusion + consistency proof generation at --size entries (target <= 1 ms)
- bytes/event:        database size after a WAL checkpoint, divided by the number of events
- load_avg:           the 1-minute load average before and after (the host is shared)
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from glint.ledger import EventSpec, Keys, Ledger, LedgerWorker, verify_consistency, verify_inclusion  # noqa: E402

ITEMS = 1000
FSYNC_BLOCK = 4096
SCAN_BYTES = 330


def _specs(start: int, n: int, items: list[str]) -> list[EventSpec]:
    return [EventSpec("verify", items[(start + k) % len(items)],
                      {"res": "pass", "fap": 1e-9, "dev": "a1b2c3d4e5f60708", "op": "operator-7", "loc": "Paris"},
                      time=1_700_000_000 + start + k, scan=os.urandom(SCAN_BYTES))
            for k in range(n)]


def _fill(led: Ledger, total: int, batch: int, items: list[str]) -> tuple[float, float]:
    """Append ``total`` events in batches; return (events/s, CPU microseconds per event)."""
    done = 0
    spent = cpu = 0.0
    while done < total:
        n = min(batch, total - done)
        specs = _specs(done, n, items)  # the caller's work, not timed
        c0, t0 = time.process_time(), time.perf_counter()
        led.append_batch(specs)
        spent += time.perf_counter() - t0
        cpu += time.process_time() - c0
        done += n
    return total / spent, cpu / total * 1e6


def _group(path: Path, keys: Keys, total: int, threads: int, items: list[str]) -> tuple[float, float]:
    """``threads`` callers append ``total`` events one at a time; return (events/s, mean group size)."""
    per = total // threads
    work = [_specs(t * per, per, items) for t in range(threads)]
    with LedgerWorker.open(path, keys=keys) as gc:
        g0, e0 = gc.groups, gc.items
        start = threading.Barrier(threads + 1)

        def producer(specs):
            start.wait()
            for spec in specs:
                gc.submit_event(spec).result()

        ths = [threading.Thread(target=producer, args=(w,)) for w in work]
        for th in ths:
            th.start()
        start.wait()
        t0 = time.perf_counter()
        for th in ths:
            th.join()
        spent = time.perf_counter() - t0
        groups, events = gc.groups - g0, gc.items - e0
    return per * threads / spent, events / max(groups, 1)


def _fsync_rates(work: Path, n: int) -> tuple[float, float]:
    """The disk's raw rates: 4 KiB append + fsync, and 4 KiB rewrite in place + fdatasync."""
    path = work / "fsync.probe"
    block = os.urandom(FSYNC_BLOCK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, block)
            os.fsync(fd)
        append = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(n):
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
        overwrite = n / (time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return append, overwrite


def _db_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if not p.name.endswith(".lock"))


def _table_bytes(path: Path, n: int) -> dict:
    """Bytes per event of each table and index (SQLite's dbstat), when this SQLite has it."""
    try:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.DatabaseError:
        return {}
    return {name: round(b / n, 1) for name, b in rows if b / n >= 0.5}


def _median(runs: list[float]) -> int:
    return round(statistics.median(runs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="entries for the proof benchmark (0: skip)")
    ap.add_argument("--batched", type=int, default=50_000, help="events for the batched-append figure")
    ap.add_argument("--batch", type=int, default=1000, help="events per batch commit")
    ap.add_argument("--single", type=int, default=2000, help="events for the one-commit-each figure")
    ap.add_argument("--group", type=int, default=8000, help="events for the group-commit figure")
    ap.add_argument("--threads", type=int, default=8, help="concurrent callers for the group-commit figure")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each rate (median reported)")
    ap.add_argument("--fsyncs", type=int, default=500, help="fsync calls for the raw disk rate")
    ap.add_argument("--proofs", type=int, default=2000, help="proofs to time")
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    work = Path(args.dir or tempfile.mkdtemp(prefix="glint-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    keys = Keys.generate("glint.bench/ledger")
    items = [f"acme:BENCH-{i:06d}" for i in range(ITEMS)]
    res: dict = {"load_avg_start": round(os.getloadavg()[0], 2)}

    def fresh(name):
        p = work / name
        for f in work.glob(name + "*"):
            f.unlink()
        led = Ledger.open(p, keys=keys)
        led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}},
                                    time=1_700_000_000) for it in items])
        return p, led

    # 0. the disk's raw fsync rate, measured before each run (it moves with other jobs' I/O),
    # 1. batched appends (durable commits of --batch events), 2. one durable commit per event
    # (one caller), 3. group commit (--threads callers, one event each time)
    batched, cpu, single, group, sizes, fsyncs, fdatasyncs = [], [], [], [], [], [], []
    for _ in range(args.repeat):
        fs, fds = _fsync_rates(work, args.fsyncs)
        fsyncs.append(fs)
        fdatasyncs.append(fds)
        p, led = fresh("batched.db")
        rate, us = _fill(led, args.batched, args.batch, items)
        led.close()
        batched.append(rate)
        cpu.append(us)
        p, led = fresh("single.db")
        single.append(_fill(led, args.single, 1, items)[0])
        led.close()
        if args.group:
            p, led = fresh("group.db")
            led.close()
            rate, mean = _group(p, keys, args.group, args.threads, items)
            group.append(rate)
            sizes.append(mean)
    res["fsync_per_s"] = _median(fsyncs)
    res["fsync_runs"] = [round(r) for r in fsyncs]
    res["fdatasync_overwrite_per_s"] = _median(fdatasyncs)
    res["batched_appends_per_s"] = _median(batched)
    res["batched_runs"] = [round(r) for r in batched]
    res["batched_cpu_us_per_event"] = round(statistics.median(cpu), 1)
    res["single_appends_per_s"] = _median(single)
    res["single_runs"] = [round(r) for r in single]
    if group:
        res["group_appends_per_s"] = _median(group)
        res["group_runs"] = [round(r) for r in group]
        res["group_threads"] = args.threads
        res["group_mean_events_per_commit"] = round(statistics.median(sizes), 1)

    # 4. proofs at --size entries, 5. bytes per event
    if args.size:
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
        res["bytes_per_event_by_table"] = _table_bytes(p, size)
        res["note_bytes"] = len(note)
        with sqlite3.connect(p) as db:
            (scan_bytes,) = db.execute("SELECT sum(length(scan)) FROM leaves").fetchone()
            (leaf_bytes,) = db.execute("SELECT avg(length(leaf)) FROM leaves").fetchone()
        res["scan_bytes_per_event"] = round(scan_bytes / size, 1)
        res["leaf_bytes_avg"] = round(leaf_bytes, 1)
    res["load_avg_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:<32} {v}")
    if not args.dir:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
