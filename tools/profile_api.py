#!/usr/bin/env python3
"""Where `glint serve`'s CPU per single-event upload goes: the server's threads, one by one.

    python tools/profile_api.py [--clients 8] [--events 250] [--kind service|verify] [--runs 2]
                                [--engine threads|waitress] [--json]

tools/bench_api.py measures the server process as a whole. This runs the same server in this
process (glint.server.make_server, on one CPU as `glint serve` runs: glint.server.pin_cpus), the
same pre-built requests from bench_api's raw keep-alive clients in a child process, and reads
every server thread's CPU time from /proc (Linux; ``schedstat``, nanoseconds) by its Python
thread name:

- ``glint-conn``: with the default engine (glint.server.engine), the connection threads (recv,
  request parsing, the upload fast path, authentication, the waits for the group commit and
  glint.db's fsync, the answer's send); they end with their connections, so this is the process's
  CPU less the other threads';
- with ``--engine waitress``, ``mainloop``: waitress's event loop (select, recv, request parsing,
  the wake-up after an answer), and ``waitress``: its request threads (waitress's task and headers,
  the fast path, authentication, the waits);
- ``ledger-http``: the ledger thread (idempotency, schema, custody, leaves, both databases'
  transactions, the ledger's fsync);
- ``glint-db-sync``: glint.db's fsync thread.

Also: the ledger thread's CPU in the group commit as ``a ms a group + b ms an event`` (a
least-squares fit over its groups, ``glint.server.uploads.handle_group``), the mean group size,
and the voluntary and involuntary context switches per event (all threads). Every figure is CPU
per event; on a shared machine the wall rate moves far more than these.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api  # noqa: E402  (the bench's setup, requests and clients)

CLIENT = """
import json, pickle, sys, threading, time
sys.path.insert(0, {tools!r})
import bench_api
reqs = pickle.load(open({spec!r}, "rb"))
lat = [[] for _ in reqs]
errors = []
ts = [threading.Thread(target=bench_api._client, args=({port}, r, l, errors, 1, False)) for r, l in zip(reqs, lat)]
t0 = time.perf_counter()
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps({{"n": sum(map(len, lat)), "wall": time.perf_counter() - t0, "errors": errors[:3]}}))
"""


def _threads() -> dict[int, tuple[str, float]]:
    """(Python thread name, CPU seconds) of every thread of this process, by native id."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:  # nanoseconds on the CPU (schedstat); else user + system in clock ticks (10 ms)
            cpu = int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            try:
                f = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(f[11]) + int(f[12])) / tick
        name = names.get(int(tid), "other")
        if name.startswith("waitress"):
            name = "waitress"
        elif name.startswith("glint-conn"):
            name = "glint-conn"
        out[int(tid)] = (name, cpu)
    return out


def _switches() -> tuple[int, int]:
    """The process's voluntary and involuntary context switches, ended threads included (getrusage)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_nvcsw, ru.ru_nivcsw


def _fit(groups: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares of CPU = a + b * size over the groups (a: per group, b: per event), seconds."""
    n = len(groups)
    sx = sum(g[0] for g in groups)
    sy = sum(g[1] for g in groups)
    sxx = sum(g[0] * g[0] for g in groups)
    sxy = sum(g[0] * g[1] for g in groups)
    den = n * sxx - sx * sx
    if n < 2 or den == 0:
        return (sy / max(1, n), 0.0)
    b = (n * sxy - sx * sy) / den
    return ((sy - b * sx) / n, b)


def run(clients: int, events: int, kind: str, runs: int, engine: str = "threads") -> list[dict]:
    import glint.server as gs
    from glint.server import uploads

    groups: list[tuple[int, float]] = []
    handle = uploads.handle_group

    def timed(ctx, batch):
        t = time.thread_time()
        try:
            return handle(ctx, batch)
        finally:
            groups.append((len(batch), time.thread_time() - t))

    uploads.handle_group = timed  # looked up by name at every upload (glint.server.uploads.Uploads)
    gs.pin_cpus(gs.SERVER_CPUS)
    sys.setswitchinterval(gs.SWITCH_INTERVAL_S)  # as glint serve runs
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="glint-profile-api-") as tmp:
            home = Path(tmp) / "hq"
            home.mkdir()
            tokens, bodies = bench_api._setup(home, clients, kind, events * runs)
            srv = gs.make_server(home, "127.0.0.1", 0, engine=engine)
            loop = threading.Thread(target=srv.run, name="mainloop", daemon=True)
            loop.start()
            spec = Path(tmp) / "requests.pkl"
            try:
                for r in range(runs):
                    reqs = [[q.replace(b"Idempotency-Key: ", f"Idempotency-Key: run{r}-".encode(), 1)
                             for q in bench_api._requests_of(tokens[c], bodies[c][r * events:(r + 1) * events], 1)]
                            for c in range(clients)]
                    spec.write_bytes(pickle.dumps(reqs))
                    code = CLIENT.format(tools=str(Path(__file__).resolve().parent), spec=str(spec),
                                         port=srv.effective_port)
                    groups.clear()
                    s0, a, c0 = _switches(), _threads(), os.times()
                    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                    c1, b, s1 = os.times(), _threads(), _switches()
                    got = json.loads(out.stdout)
                    n = max(1, got["n"])
                    per: collections.Counter = collections.Counter()
                    for tid, (name, cpu) in b.items():
                        per[name] += cpu - a.get(tid, (name, 0.0))[1]
                    total = c1.user + c1.system - c0.user - c0.system
                    # the connection threads of the threads engine end with their connections, before b
                    per["glint-conn"] += max(0.0, total - sum(per.values()))
                    fixed, each = _fit(groups)
                    size = sum(g[0] for g in groups) / max(1, len(groups))
                    results.append({
                        "kind": kind, "clients": clients, "events": got["n"], "errors": got["errors"],
                        "events_per_s": round(got["n"] / got["wall"], 1),
                        "server_cpu_ms_per_event": round(1000 * (c1.user + c1.system - c0.user - c0.system) / n, 3),
                        "threads_ms_per_event": {k: round(1000 * v / n, 3) for k, v in per.most_common() if v > 0},
                        "groups": len(groups), "group_size": round(size, 2),
                        "ledger_ms_per_group": round(1000 * fixed, 3), "ledger_ms_per_event": round(1000 * each, 3),
                        "switches_per_event": {"voluntary": round((s1[0] - s0[0]) / n, 1),
                                               "involuntary": round((s1[1] - s0[1]) / n, 1)},
                        "load": round(os.getloadavg()[0], 1)})
            finally:
                srv.close()
                srv.glint_close()
    finally:
        uploads.handle_group = handle
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--events", type=int, default=250, help="events per client and run")
    ap.add_argument("--kind", choices=("service", "verify"), default="service")
    ap.add_argument("--runs", type=int, default=2, help="runs against the same server (each listed)")
    ap.add_argument("--engine", choices=("threads", "waitress"), default="threads",
                    help="glint serve's HTTP engine (glint.server.ENGINES)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not sys.platform.startswith("linux"):
        ap.error("reads the threads' CPU from /proc: Linux only")
    rs = run(a.clients, a.events, a.kind, max(1, a.runs), a.engine)
    for r in rs:
        if a.json:
            print(json.dumps(r))
            continue
        th = ", ".join(f"{k} {v}" for k, v in r["threads_ms_per_event"].items())
        sw = r["switches_per_event"]
        print(f"{r['kind']}: {r['events']} events, {r['events_per_s']} events/s; server CPU "
              f"{r['server_cpu_ms_per_event']} ms per event ({th}); ledger thread {r['ledger_ms_per_group']} ms a "
              f"group + {r['ledger_ms_per_event']} ms an event, {r['group_size']} events a group; context switches "
              f"per event {sw['voluntary']} voluntary, {sw['involuntary']} involuntary; load {r['load']}; "
              f"{len(r['errors'])} errors {r['errors'][:1]}")
    return 1 if any(r["errors"] for r in rs) else 0


if __name__ == "__main__":
    sys.exit(main())
