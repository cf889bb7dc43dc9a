#!/usr/bin/env python3
"""HTTP upload throughput of `glint serve`: durable events per second from concurrent clients.

    python tools/bench_api.py [--clients 8] [--events 250] [--kind service|verify] [--batch N]
                              [--client raw|stdlib] [--server glint|trivial|granian|granian-trivial|granian-embed]
                              [--engine threads|waitress] [--json]

A real `glint serve` process (glint's own HTTP engine, or ``--engine waitress``; durable SQLite
commits) on 127.0.0.1:0 and a
temporary home. Each client thread has its own API key and keep-alive connection and
posts ``--events`` events, each acknowledged only once durable. The clients share the
server's cores, so they are kept cheap: every request is built before the clock starts
and sent on a raw keep-alive socket (``--client stdlib``: http.client, about 4x the
clients' CPU); their CPU per event is reported beside the server's.

- ``service``: brand-key events without a scan (schema + custody checks + append);
- ``verify``: bench-key events, each with a device-signed scan that the server checks
  (ES256, counter order per device) and re-matches against its reference: one
  provisioned device per client, so each client's counters rise in order.

``--batch N`` (N > 1): each request is a POST /v1/events/batch of N events (each with its own
idempotency key, each answered on its own, all durable before the answer), as the outbox
and benches upload a backlog; N = 1 (the default) is one POST /v1/events per event.

Prints events/s (all clients, wall time), the median and p90 request latency, the
clients' CPU time per event (this process) and the server's (all its threads: on a shared
machine the wall-time rate follows the disk's fsync latency, the CPU per event much less).
Target (issue 15): >= 2,000 events/s durable with group commit from 8 clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setup(home: Path, clients: int, kind: str, events: int) -> tuple[list[str], list[list[dict]]]:
    """Keys, items, devices and every request body, made before the server starts."""
    from glint import sim
    from glint.ledger import Keys, Ledger
    from glint.match import Database, enroll, spots_from_image
    from glint.registry import Registry
    from glint.server import wire
    from glint.server.auth import KeyStore
    from glint.sim.render import Pose
    from glintcore import cose, descriptor as D, p256

    now = int(time.time())
    ks = KeyStore(home / "glint.db")
    role = "brand" if kind == "service" else "bench"
    tokens = [ks.create(role, f"client-{c}")[1] for c in range(clients)]
    ks.close()
    led = Ledger.open(home / "ledger.db", keys=Keys.load(home, create=True))
    bodies: list[list[dict]] = []
    if kind == "service":
        for c in range(clients):
            item = f"acme:BENCH-{c}"
            led.register_item(item, "ACME", time=now - 10)
            bodies.append([wire.event_body("service", item, now, {"action": f"clean {i}"}) for i in range(events)])
        led.close()
        return tokens, bodies
    coat = sim.make_coating(7)
    caps = [spots_from_image(sim.capture(coat, seed=k, pose=Pose()).image) for k in range(3)]
    ref = enroll(caps)
    probes = [spots_from_image(sim.capture(coat, seed=100 + k).image) for k in range(4)]
    db = Database(home / "match")
    reg = Registry.open(home)
    for c in range(clients):
        item = f"acme:BENCH-{c}"
        led.register_item(item, "ACME", time=now - 10)
        db.add(item, ref)
        d = p256.private_key_from_entropy(bytes([c + 1]) * 32)
        did = bytes([0xBE, c]) + bytes(6)
        reg.add_device(did, p256.public_key(d), "sim", "0.4.0")
        mine = []
        for i in range(events):
            p = probes[i % len(probes)]
            recs = [(int(round(x * 32)), int(round(y * 32)), 200) for x, y in p.xy][:255]
            desc = D.make(did, 1000 + i, "0.4.0", "sim", ref.width, ref.height, {0: 1}, D.pack_spots(recs), 0)
            scan = cose.sign1(D.encode(desc), d, kid=did)
            mine.append(wire.event_body("verify", item, now, {"res": "pass"}, scan))
        bodies.append(mine)
    reg.close()
    led.close()
    return tokens, bodies


def _requests_of(token: str, bodies: list[dict], batch: int) -> list[bytes]:
    """Every HTTP request of one client, built before the clock starts (the bench measures the server)."""
    out = []
    if batch > 1:
        for start in range(0, len(bodies), batch):
            data = json.dumps({"events": [{"key": f"{start + i}", "event": b}
                                          for i, b in enumerate(bodies[start:start + batch])]}).encode()
            out.append(_request("/v1/events/batch", token, data))
    else:
        for i, body in enumerate(bodies):
            out.append(_request("/v1/events", token, json.dumps(body).encode(), f"Idempotency-Key: {i}\r\n"))
    return out


def _request(path: str, token: str, data: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(data)}\r\n\r\n").encode("ascii") + data


def _client(port: int, requests: list[bytes], lat: list[float], errors: list[str], batch: int, stdlib: bool) -> None:
    try:
        (_stdlib_client if stdlib else _raw_client)(port, requests, lat, errors, batch)
    except OSError as e:
        errors.append(f"{type(e).__name__}: {e}")


def _check(status: int, out: bytes, errors: list[str], batch: int) -> None:
    if batch > 1:
        if status != 200:
            errors.append(f"{status} {out[:200]!r}")
            return
        errors.extend(f"{x['status']} {x.get('error')}" for x in json.loads(out)["results"] if x["status"] != 201)
    elif status != 201:
        errors.append(f"{status} {out[:200]!r}")


def _raw_client(port: int, requests: list[bytes], lat: list[float], errors: list[str], batch: int) -> None:
    """One keep-alive connection, pre-built requests, the answer read by its Content-Length."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    with s:
        for req in requests:
            t0 = time.perf_counter()
            s.sendall(req)
            while True:
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    head = buf[:end].lower()
                    i = head.find(b"content-length:")
                    n = int(head[i + 15:].split(b"\r\n", 1)[0]) if i >= 0 else 0
                    if len(buf) >= end + 4 + n:
                        out, buf = buf[end + 4:end + 4 + n], buf[end + 4 + n:]
                        break
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                buf += chunk
            lat.append(time.perf_counter() - t0)
            _check(int(head[9:12]), out, errors, batch)


def _stdlib_client(port: int, requests: list[bytes], lat: list[float], errors: list[str], batch: int) -> None:
    """http.client, as before (``--client stdlib``): its per-request cost, for comparison."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for req in requests:
        head, _, data = req.partition(b"\r\n\r\n")
        lines = head.decode("ascii").split("\r\n")
        path = lines[0].split()[1]
        headers = dict(x.split(": ", 1) for x in lines[1:] if not x.startswith(("Host", "Content-Length")))
        t0 = time.perf_counter()
        conn.request("POST", path, data, headers)
        r = conn.getresponse()
        out = r.read()
        lat.append(time.perf_counter() - t0)
        _check(r.status, out, errors, batch)
    conn.close()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process and its children have used (Linux /proc;
    granian serves from a worker process it starts)."""
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            pids += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if p == pid:
                return float("nan")
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# ``--server trivial``: the same clients against the engine (``--engine``) serving an app that reads
# the body and answers a constant 201 JSON line (no glint), on one CPU like glint serve: what the
# HTTP layer itself costs and carries.
TRIVIAL_SERVER = """
import sys
import glint.server as gs
gs.pin_cpus(gs.SERVER_CPUS)  # on one CPU, as glint serve
ANSWER = b'{"index":0,"duplicate":false}\\n'
def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("201 CREATED", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]
if sys.argv[1] == "threads":
    from glint.server.engine import ThreadedServer
    srv = ThreadedServer(app, "127.0.0.1", 0, connection_limit=gs.CONNECTION_LIMIT, per_address=64,
                         channel_timeout=gs.CHANNEL_TIMEOUT_S, deadline_s=gs.REQUEST_DEADLINE_S, ident="trivial")
else:
    from waitress.server import create_server
    srv = create_server(app, host="127.0.0.1", port=0, threads=gs.SERVER_THREADS, ident="trivial")
print(f"listening on http://127.0.0.1:{srv.effective_port}", flush=True)
srv.run()
"""


# ``--server granian-embed``: glint's app under granian's WSGI worker started in the server's own
# process (as glint serve would have to run it to keep the ledger in one process it controls), on
# one CPU. A measurement only, on granian's internal worker API (granian 2.x; it may change):
# granian has no hook at accept, parses and refuses in Rust (hyper's bare answers) and reads the
# whole body before the app runs, so glint serve's per-address cap, JSON refusals and whole-request
# deadline could not be kept on it (docs/api.md, "glint's own HTTP engine").
GRANIAN_EMBED = """
import asyncio, os, signal, socket, sys, threading
from granian._granian import ListenerSpec, MetricsAggregator, WorkerSignal, WSGIWorker
from granian._futures import _new_cbscheduler
from granian.http import HTTP1Settings
from granian.wsgi import _callback_wrapper
import glint.server as gs
gs.pin_cpus(gs.SERVER_CPUS)
from glint.server.app import create_app
app = create_app(sys.argv[1])
holder = ListenerSpec("127.0.0.1", 0, 1024).build()
port = socket.socket(fileno=os.dup(holder.get_fd())).getsockname()[1]
sig, loop = WorkerSignal(), asyncio.new_event_loop()
worker = WSGIWorker(1, (None, holder), None, 1, 512, gs.SERVER_THREADS, 30, 1024, "1", HTTP1Settings(), None, None,
                    False, None, None, None, "tls1.2", None, [], False, (None, MetricsAggregator(1)))
worker.serve_str(_new_cbscheduler(loop, _callback_wrapper(app, {}, None), impl_asyncio=False), loop, sig)
print(f"listening on http://127.0.0.1:{port}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
stop.wait()
sig.set()
app.glint_close()
"""


# ``--server granian`` / ``granian-trivial``: glint's WSGI app (or the trivial one) under granian, a
# WSGI server whose HTTP parsing and event loop are Rust, on one CPU like glint serve: what an HTTP
# layer outside Python would save (issue 15). A measurement only: granian is not a dependency of
# glint, and this app lacks what glint serve adds to waitress (the per-address cap, the whole-
# request deadline, JSON answers for the server's own refusals, SIGTERM handling).
GRANIAN_APP = """
import os
ANSWER = b'{"index":0,"duplicate":false}\\n'
def trivial(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("201 CREATED", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]
if os.environ.get("BENCH_GLINT_HOME"):
    from glint.server.app import create_app
    app = create_app(os.environ["BENCH_GLINT_HOME"])
else:
    app = trivial
"""


def _granian(tmp: Path, home: Path, trivial: bool, env: dict) -> tuple[list[str], dict, int]:
    try:
        import granian  # noqa: F401
    except ImportError:
        raise SystemExit("--server granian needs granian (pip install granian): measured here, not a glint dependency") from None
    import glint.server as gs

    (tmp / "bench_granian_app.py").write_text(GRANIAN_APP)
    with socket.socket() as s:  # granian does not print the port it bound: pick a free one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp), env.get("PYTHONPATH")])))
    if not trivial:
        env["BENCH_GLINT_HOME"] = str(home)
    argv = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1",
            "--blocking-threads", str(gs.SERVER_THREADS), "--runtime-threads", "1", "--http", "1", "--no-ws",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "bench_granian_app:app"]
    return argv, env, port


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def _one_cpu() -> None:
    """The server on one CPU, as glint serve pins itself (glint.server.pin_cpus); its children inherit it."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[-1:])


def run(clients: int, events: int, kind: str, batch: int = 1, stdlib: bool = False, trivial: bool = False,
        granian: bool = False, engine: str = "threads", embed: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="glint-bench-api-") as tmp:
        home = Path(tmp) / "hq"
        home.mkdir()
        tokens, bodies = _setup(home, clients, kind, events)
        requests = [_requests_of(tokens[c], bodies[c], batch) for c in range(clients)]
        env = dict(os.environ, GLINT_LOG="WARNING")
        log = open(Path(tmp) / "serve.log", "w")
        if granian:
            argv, env, port = _granian(Path(tmp), home, trivial, env)
            proc = subprocess.Popen(argv, stdout=log, stderr=log, text=True, env=env, preexec_fn=_one_cpu)
        else:
            if embed:
                argv = ["-c", GRANIAN_EMBED, str(home)]
            elif trivial:
                argv = ["-c", TRIVIAL_SERVER, engine]
            else:
                argv = ["-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(home), "--engine", engine]
            proc = subprocess.Popen([sys.executable, *argv],
                                    stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        try:
            if granian:
                _wait_port(port, proc, Path(tmp) / "serve.log")
                time.sleep(0.5)  # the worker process imports glint after the port opens
            else:
                line = proc.stdout.readline()
                if "listening on" not in line:
                    raise SystemExit(f"server did not start: {line}{(Path(tmp) / 'serve.log').read_text()}")
                port = int(line.split("http://127.0.0.1:")[1].split()[0])
            lats: list[list[float]] = [[] for _ in range(clients)]
            errors: list[str] = []
            threads = [threading.Thread(target=_client, args=(port, requests[c], lats[c], errors, batch, stdlib))
                       for c in range(clients)]
            c0 = _cpu_s(proc.pid)
            m0 = os.times()
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            server_cpu = _cpu_s(proc.pid) - c0
            m1 = os.times()
            client_cpu = m1.user + m1.system - m0.user - m0.system
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            tail = (Path(tmp) / "serve.log").read_text()[-2000:]
    flat = sorted(x for lat in lats for x in lat)
    n = clients * events
    return {"server_log_tail": tail if errors else "", "kind": kind, "clients": clients, "batch": batch, "events": n,
            "requests": len(flat), "errors": len(errors), "first_error": errors[:1],
            "wall_s": round(wall, 3), "events_per_s": round((n - len(errors)) / wall, 1),
            "server_cpu_ms_per_event": round(1000 * server_cpu / max(1, n), 3),
            "server": ("granian" if granian else "granian-embed" if embed else engine) + (" trivial" if trivial else " glint"),
            "client": "stdlib" if stdlib else "raw", "client_cpu_ms_per_event": round(1000 * client_cpu / max(1, n), 3),
            "load": round(os.getloadavg()[0], 1),
            "latency_ms_median": round(1000 * statistics.median(flat), 2),
            "latency_ms_p90": round(1000 * flat[int(0.9 * (len(flat) - 1))], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--events", type=int, default=250, help="events per client")
    ap.add_argument("--kind", choices=("service", "verify"), default="service")
    ap.add_argument("--batch", type=int, default=1, metavar="N",
                    help="events per request (N > 1: POST /v1/events/batch; at most 100)")
    ap.add_argument("--client", choices=("raw", "stdlib"), default="raw",
                    help="raw: pre-built requests on a keep-alive socket (cheap, the default); stdlib: http.client")
    ap.add_argument("--server", choices=("glint", "trivial", "granian", "granian-trivial", "granian-embed"),
                    default="glint",
                    help="trivial: the engine (--engine) with an app that answers a constant 201 (what the HTTP layer "
                         "alone carries); granian / granian-trivial: glint's app / that app under granian's own "
                         "server (pip install granian); granian-embed: glint's app under granian's WSGI worker in the "
                         "server's process (what an HTTP layer outside Python would save, without glint serve's "
                         "connection limits)")
    ap.add_argument("--engine", choices=("threads", "waitress"), default="threads",
                    help="glint serve's HTTP engine (--server glint): threads, glint's own (the default), or waitress")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.batch <= 100:
        ap.error("--batch must be 1..100")
    r = run(a.clients, a.events, a.kind, a.batch, a.client == "stdlib", a.server.endswith("trivial"),
            a.server in ("granian", "granian-trivial"), a.engine, a.server == "granian-embed")
    if a.json:
        print(json.dumps(r))
    else:
        per = f" in batches of {r['batch']}" if r["batch"] > 1 else ""
        srv = {"threads glint": ""}.get(r["server"], f" ({r['server']})")
        print(f"{r['kind']}{srv}: {r['events']} events{per} from {r['clients']} clients in {r['wall_s']} s: "
              f"{r['events_per_s']} events/s durable; request latency median {r['latency_ms_median']} ms, "
              f"p90 {r['latency_ms_p90']} ms; server CPU {r['server_cpu_ms_per_event']} ms per event, clients' "
              f"({r['client']}) {r['client_cpu_ms_per_event']} ms; "
              f"load {r['load']}; {r['errors']} errors {r['first_error']}")
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
