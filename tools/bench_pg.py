#!/usr/bin/env python3
"""Durable ledger appends per second with 1, 4 and 8 writers: PostgreSQL beside SQLite.

    python tools/bench_pg.py                                   # 1/4/8 writers, 5 s each, 3 runs
    python tools/bench_pg.py --writers 1 8 --seconds 3 --repeat 1 --url postgresql://...   # a server of yours

PostgreSQL: each writer is its own host PROCESS (its own connection and Ledger) appending
verify events (330-byte scan) to one shared ledger, in a loop, on items shared by every
writer (so item chains interleave across hosts). With --callers 1 each process appends one
event per durable commit; with --callers N, N threads of the process append one event each
through its LedgerWorker (what a busy host, e.g. `glint serve`, does), so one sequenced
transaction carries what queued up while the previous one committed. Without --url a
throwaway cluster is started with fsync on and synchronous_commit on (durable: an
acknowledged append survives a power cut), in a temporary directory on this disk.
SQLite: one process may write a ledger file; its N writers are N threads appending one
event each through a LedgerWorker (synchronous=FULL), 1 writer is a lone caller.

CPU per append (the medians' runs): the writer processes' CPU time over the measured window,
and the server's (its backends and background processes, read from /proc; throwaway cluster
only), divided by the appends: what the machine's cores must supply per durable append,
whatever else runs beside (2 cores / the sum = the rate a quiet 2-core machine could reach).
Before the clock starts each writer connects and reads the states of the bench's items (a host
that has been running has them cached; a cold host replays an item's history on its first
append to it, once).
Appends per commit: the acknowledged appends divided by the writers' commits (group commit
inside each process; 1 with --callers 1).

Every rate is the median of --repeat runs on a fresh database (each run's value listed),
with the disk's raw fsync rate (4 KiB append + fsync) measured first and the 1-minute load
average before and after: the machine is shared, and one durable commit is one fsync.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "shared"))

from glint.ledger import Keys, Ledger, LedgerWorker  # noqa: E402
from glint.ledger.log import EventSpec  # noqa: E402

ITEMS = 200
SCAN_BYTES = 330
ORIGIN = "glint.bench/pg"


def _items() -> list[str]:
    return [f"acme:BENCH-{i:05d}" for i in range(ITEMS)]


def _data() -> dict:
    return {"res": "pass", "fap": 1e-9, "dev": "a1b2c3d4e5f60708", "op": "operator-7", "loc": "Paris"}


def _setup(target, keys: Keys) -> None:
    with Ledger.open(target, keys=keys) as led:
        led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}})
                          for it in _items()])


def worker(url: str, start_at: float, seconds: float, seed: int, keyfile: str, callers: int) -> None:
    """One writer process: appends until the deadline; prints its count of acknowledged appends.
    ``callers`` > 1: that many threads append one event each through a LedgerWorker."""
    keys = Keys.load(keyfile)
    rng = random.Random(seed)
    items = _items()
    if callers > 1:
        with LedgerWorker.open(url, keys=keys) as gc:
            gc.call(lambda led: [led.current(it) for it in items])  # a running host: its items' states cached
            while time.time() < start_at:
                time.sleep(0.001)
            cpu = time.process_time()
            g0 = gc.groups
            n, spent = _threaded_appends(gc, items, time.time() + seconds, callers, seed * 1000)
            cpu = time.process_time() - cpu
            commits = gc.groups - g0
        print(json.dumps({"n": n, "s": spent, "cpu": cpu, "commits": commits}), flush=True)
        return
    with Ledger.open(url, keys=keys) as led:
        _ = led.size  # connect and catch up before the clock starts
        for it in items:  # a running host: its items' states cached
            led.current(it)
        while time.time() < start_at:
            time.sleep(0.001)
        cpu = time.process_time()
        n, spent = _single_appends(led, items, time.time() + seconds, rng)
        cpu = time.process_time() - cpu
    print(json.dumps({"n": n, "s": spent, "cpu": cpu, "commits": n}), flush=True)


def server_cpu(pid: int | None) -> float:
    """CPU seconds the PostgreSQL server spent so far: the postmaster's reaped children (the
    backends of closed connections) plus its live children; 0 when it cannot be read."""
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")

    def fields(p: int) -> list[str]:
        text = Path(f"/proc/{p}/stat").read_text()
        return text[text.rfind(")") + 2:].split()

    try:
        f = fields(pid)
        total = int(f[13]) + int(f[14])  # cutime, cstime: reaped children
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError, IndexError, ValueError):
                c = fields(int(child))
                total += int(c[11]) + int(c[12])  # utime, stime
        return total / tick
    except (OSError, IndexError, ValueError):
        return 0.0


def run_pg(url: str, writers: int, seconds: float, keyhome: str, keys: Keys, callers: int = 1,
           server_pid: int | None = None) -> tuple[float, float, float, float]:
    """One run: (appends/s, client CPU ms per append, server CPU ms per append, appends per commit)."""
    _setup(url, keys)
    start_at = time.time() + 1.5 + 0.15 * writers
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, str(start_at), str(seconds), str(k),
                               keyhome, str(callers)], stdout=subprocess.PIPE, text=True) for k in range(writers)]
    time.sleep(0.3)  # the setup connection's backend is reaped
    cpu0 = server_cpu(server_pid)
    total = 0
    spent = 0.0
    cpu = 0.0
    commits = 0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 120)
        if p.returncode != 0:
            raise SystemExit(f"bench_pg: writer exited {p.returncode}")
        r = json.loads(out.strip().splitlines()[-1])
        total += r["n"]
        spent = max(spent, r["s"])
        cpu += r["cpu"]
        commits += r.get("commits", 0)
    time.sleep(0.3)  # the writers' backends are reaped
    scpu = server_cpu(server_pid) - cpu0
    with Ledger.open(url, keys=keys) as led:
        rep = led.verify()
        if not rep.ok or rep.size != ITEMS + total:
            raise SystemExit(f"bench_pg: ledger after the run: {rep} (expected {ITEMS + total} events)")
    return total / spent, 1e3 * cpu / max(1, total), 1e3 * scpu / max(1, total), total / max(1, commits)


def run_sqlite(workdir: Path, writers: int, seconds: float, keys: Keys, tag: str) -> float:
    path = workdir / f"bench-{tag}.db"
    _setup(path, keys)
    items = _items()
    if writers == 1:
        with Ledger.open(path, keys=keys) as led:
            n, spent = _single_appends(led, items, time.time() + seconds, random.Random(1))
            return n / spent
    with LedgerWorker.open(path, keys=keys) as gc:
        n, spent = _threaded_appends(gc, items, time.time() + seconds, writers, 0)
        return n / spent


def _single_appends(led: Ledger, items: list[str], end: float, rng: random.Random) -> tuple[int, float]:
    """Durable verify appends one by one until ``end``: (count, seconds)."""
    n = 0
    t0 = time.perf_counter()
    while time.time() < end:
        led.record_verify(rng.choice(items), "pass", fap=1e-9, device="a1b2c3d4e5f60708",
                          operator="operator-7", location="Paris", scan=os.urandom(SCAN_BYTES))
        n += 1
    return n, time.perf_counter() - t0


def _threaded_appends(gc: LedgerWorker, items: list[str], end: float, threads: int, seed: int) -> tuple[int, float]:
    """``threads`` callers appending one event each through one LedgerWorker until ``end``: (count, seconds)."""
    counts = [0] * threads

    def loop(k: int) -> None:
        r = random.Random(seed + k)
        while time.time() < end:
            gc.append("verify", r.choice(items), _data(), scan=os.urandom(SCAN_BYTES))
            counts[k] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts), time.perf_counter() - t0


def fsync_rate(workdir: Path, seconds: float = 1.0) -> float:
    """The disk's raw rate of 4 KiB append + fsync in ``workdir`` (what bounds one durable commit)."""
    path = workdir / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    n, block = 0, os.urandom(4096)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        os.write(fd, block)
        os.fsync(fd)
        n += 1
    spent = time.perf_counter() - t0
    os.close(fd)
    path.unlink()
    return n / spent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8], help="writer counts to measure")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each measured run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    ap.add_argument("--url", help="a PostgreSQL server database to use (default: a throwaway durable cluster); "
                                  "each run creates its own database on it")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite figures")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--callers", type=int, nargs="+", default=[1, 8],
                    help="callers per PostgreSQL writer process: 1 = one event per commit; more = threads "
                         "appending through the process's LedgerWorker")
    ap.add_argument("--worker", nargs=6, metavar=("URL", "START", "SECONDS", "SEED", "KEYS", "CALLERS"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker[0], float(a.worker[1]), float(a.worker[2]), int(a.worker[3]), a.worker[4], int(a.worker[5]))
        return 0
    import psycopg

    from glint.db import with_dbname
    from glint.pgcluster import Cluster

    load0 = os.getloadavg()[0]
    out: dict = {"seconds": a.seconds, "repeat": a.repeat, "items": ITEMS, "scan_bytes": SCAN_BYTES}
    with tempfile.TemporaryDirectory(prefix="glint-bench-pg-") as tmp:
        work = Path(tmp)
        work.chmod(0o711)  # the cluster runs as another account when this runs as root
        keyhome = str(work / "home")
        keys = Keys.load(keyhome, create=True)
        out["fsync_per_s"] = round(fsync_rate(work))
        print(f"raw disk: {out['fsync_per_s']:,} x (4 KiB append + fsync)/s in {work}", flush=True)
        cluster = None if a.url else Cluster.start(durable=True, root=work / "pg")
        pid = None  # the server's CPU is read from /proc for a throwaway cluster only
        if cluster is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        try:
            def fresh_db(k: int) -> str:
                if cluster is not None:
                    return cluster.create_database(f"bench_{k}")
                name = f"glint_bench_{os.getpid()}_{k}"
                with psycopg.connect(a.url, autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
                return with_dbname(a.url, name)

            k = 0
            for w in a.writers:
                for c in a.callers:
                    res = []
                    for _ in range(a.repeat):
                        k += 1
                        res.append(run_pg(fresh_db(k), w, a.seconds, keyhome, keys, c, pid))
                    runs = [r[0] for r in res]
                    ccpu = statistics.median(r[1] for r in res)
                    scpu = statistics.median(r[2] for r in res)
                    per_commit = statistics.median(r[3] for r in res)
                    out[f"pg_{w}x{c}"] = {"median": round(statistics.median(runs)), "runs": [round(r) for r in runs],
                                          "client_cpu_ms": round(ccpu, 3), "server_cpu_ms": round(scpu, 3),
                                          "appends_per_commit": round(per_commit, 1)}
                    cpu_note = (f"; CPU per append: client {ccpu:.2f} ms" + (f", server {scpu:.2f} ms" if pid else "")
                                + f"; {per_commit:.1f} appends per commit")
                    print(f"postgresql {w} writer process(es) x {c} caller(s): {statistics.median(runs):,.0f} "
                          f"appends/s (runs {' / '.join(f'{r:,.0f}' for r in runs)}){cpu_note}", flush=True)
                if not a.no_sqlite:
                    runs = [run_sqlite(work, w, a.seconds, keys, f"{w}-{r}") for r in range(a.repeat)]
                    out[f"sqlite_{w}"] = {"median": round(statistics.median(runs)), "runs": [round(r) for r in runs]}
                    print(f"sqlite     {w} writer(s): {statistics.median(runs):,.0f} appends/s "
                          f"(runs {' / '.join(f'{r:,.0f}' for r in runs)})", flush=True)
        finally:
            if cluster is not None:
                cluster.stop()
    out["load_avg"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    print(f"load average {out['load_avg'][0]} -> {out['load_avg'][1]}")
    if a.json:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
