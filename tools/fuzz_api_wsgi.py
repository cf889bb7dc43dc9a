#!/usr/bin/env python3
"""Fuzz the HTTP API in process, through its WSGI app, for a million inputs: only glint's JSON errors, no 500.

    python tools/fuzz_api_wsgi.py [--inputs 1000000] [--seconds S] [--workers 2] [--examples 40] [--seed 1]
                                  [--tmp /dev/shm] [--json]

tools/fuzz_api.py fuzzes a real ``glint serve`` over TCP; there the HTTP round trip, not glint, sets
the pace (about 150 inputs/s on a loaded machine), so 10^6 inputs would take hours. This tool
calls the same app (``glint.server.app.create_app``: every route, the upload fast path, the
ledger thread, the real ledger, registry, signatures and matcher) as waitress does, with a WSGI
environ per request, minus waitress's own HTTP parsing, timeouts and connection cap (those are
tests/e2e/test_serve_limits.py's). Each worker process has its own served home (tools/fuzz_api.py
``make_home`` plus a pool of items, an assembly, a derivation, an identifier and passports) and runs:

1. **schemathesis in process** (``schemathesis.openapi.from_wsgi``) over every operation of the
   served OpenAPI document, once without a key and once with a key of every role, ``--examples``
   generated cases each (positive and negative), checked as tools/fuzz_api.py checks them: no
   500, status, content type, headers and body as documented, schema-breaking input refused.
2. **mutated valid requests** until the worker's share of ``--inputs``: a corpus of one valid
   request per operation (every route, the new ones included) and role, each input one of them
   with its body, its path and query, or its key mutated (tools/fuzz_decoders.mutate), or a
   genuine signed scan or certificate mutated inside a valid request. Findings: any answer
   >= 500; a /v1 answer that is not JSON (but the CSV route's 200); an error without its one-line
   ``error``; a mutated certificate that does not answer ``failed``; a mutated scan that is stored.
3. Afterwards the app's log must hold no internal error.

``--seconds`` stops the mutations at a deadline (the counts say how far it got); ``--tmp`` is where
the served homes live (default /dev/shm when there: the ledger's fsyncs then cost nothing, which
is not what is fuzzed here).

Exit status 1 on any finding. A bench run (``pytest -m bench tests/e2e/test_fuzz_api.py``), not a
default test.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

ROLES = ("public", "bench", "field", "brand", "auditor", "owner", "regulator", "recycler")
POOL = 200  # items uploads are spread over (an item's replay grows with its history)


class _Internal(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record):
        if len(self.lines) < 20:
            self.lines.append(record.getMessage()[:300])


def world(root: Path) -> dict:
    """The served home of one worker: tools/fuzz_api.make_home plus what every route needs."""
    from fuzz_api import make_home

    from glint.ledger import Keys, Ledger
    from glint.ledger.passport import set_fields
    from glint.workflows.assembly import define_in_ledger
    from glint.workflows.lineage import bind

    w = make_home(root)
    home = w["home"]
    keys = Keys.load(home, create=True)
    with Ledger.open(home / "ledger.db", keys=keys) as led:
        from glint.ledger import EventSpec

        led.append_batch([EventSpec("register", f"acme:P-{k}", {"brand": "ACME", "prov": {"class": "factory"}})
                          for k in range(POOL)] +
                         [EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}})
                          for it in ("acme:KIT-1", "acme:LID-1", "acme:BILLET-1", "acme:READ-1")])
        define_in_ledger(led, "acme:KIT-1", {"lid": "acme:LID-1"}, None)
        set_fields(led, "acme:READ-1", {"care": "wax", "origin": "IT"}, "owner")
        led.append_event("transfer", "acme:READ-1", {"owner": "ana", "loc": "Milan, IT"})

        from types import SimpleNamespace

        from glint.registry import Registry

        with Registry.open(home) as reg:
            bind(SimpleNamespace(ledger=led, registry=reg, db=frozenset()), "acme:READ-1", "qr",
                 "https://acme.example/q/R1")
    return w


def corpus(w: dict) -> list[dict]:
    """One valid request per operation (method, path, query, body, content type, role, weight)."""
    now = int(time.time())
    up = w["upload"]
    cert_b64 = base64.b64encode(w["cert"]).decode()

    def ev(kind, data, role="brand", item="{pool}"):
        return {"m": "POST", "p": "/v1/events", "body": {"kind": kind, "item": item, "time": now - 30, "data": data},
                "role": role, "idem": True}

    c = [
        {"m": "GET", "p": "/v1/checkpoint"},
        {"m": "GET", "p": "/v1/proof/inclusion", "q": "index=0&size=2"},
        {"m": "GET", "p": "/v1/proof/consistency", "q": "from=1&to=2"},
        {"m": "GET", "p": "/v1/certificates/1"},
        {"m": "GET", "p": "/v1/items/acme:READ-1", "role": "auditor"},
        {"m": "GET", "p": "/v1/items/acme:READ-1"},
        {"m": "GET", "p": "/v1/history/acme:READ-1", "q": "before=2"},
        {"m": "GET", "p": "/v1/passports/acme:READ-1", "role": "owner"},
        {"m": "GET", "p": "/v1/passports/acme:READ-1", "role": "regulator"},
        {"m": "GET", "p": "/v1/assemblies/acme:KIT-1"},
        {"m": "GET", "p": "/v1/identifiers", "q": "scheme=qr&value=https%3A%2F%2Facme.example%2Fq%2FR1"},
        {"m": "GET", "p": "/v1/insights", "q": "days=30&brand=ACME", "role": "brand", "w": 0.02},
        {"m": "GET", "p": "/v1/insights/scans_per_month.csv", "q": "days=30", "role": "auditor", "w": 0.02},
        {"m": "GET", "p": "/v1/keys"},
        {"m": "GET", "p": "/.well-known/gs1resolver"},
        {"m": "GET", "p": "/01/09506000134352/21/X1"},
        {"m": "GET", "p": "/c/" + "0" * 32},
        {"m": "GET", "p": "/"},
        {"m": "GET", "p": "/verify"},
        {"m": "POST", "p": "/v1/nonces", "body": {"device": "f1" * 8}, "role": "bench"},
        {"m": "POST", "p": "/v1/certificates/verify", "raw": w["cert"], "ct": "application/cose",
         "q": "item=acme:FUZZ-1", "cert": True},
        {"m": "POST", "p": "/v1/certificates/verify", "body": {"cert": cert_b64, "item": "acme:FUZZ-1"}},
        {"m": "POST", "p": "/v1/events", "body": up, "role": "bench", "idem": True, "scan": True},
        ev("register", {"brand": "ACME", "prov": {"class": "later", "by": "Authentica", "at": now - 60}},
           item="acme:N-{n}"),
        ev("passport", {"set": {"materials": "calf 92%"}, "aud": "public"}),
        ev("transfer", {"owner": "bob", "channel": "resale", "price": 10.5, "currency": "EUR"}),
        ev("service", {"action": "clean", "by": "atelier", "note": "strap"}),
        ev("bind", {"scheme": "serial", "value": "S-{n}"}),
        {"m": "POST", "p": "/v1/assemblies", "body": {"item": "acme:KIT-{n}", "parts": {"lid": "acme:LID-{n}"}},
         "role": "brand"},
        {"m": "POST", "p": "/v1/derivations", "body": {"parent": "acme:BILLET-1", "children": ["acme:B-{n}"],
                                                       "how": "cut", "loc": "foundry"}, "role": "brand"},
        {"m": "POST", "p": "/v1/identifiers", "body": {"item": "{pool}", "scheme": "nfc", "value": "04{n}"},
         "role": "brand"},
        {"m": "POST", "p": "/v1/items/{pool}/lifecycle/transfer", "body": {"owner": "carol"}, "role": "bench"},
        {"m": "POST", "p": "/v1/items/{pool}/lifecycle/retire", "body": {"reason": "x"}, "role": "brand", "w": 0.1},
    ]
    for r in c:
        r.setdefault("role", None)
        r.setdefault("w", 1.0)
    return c


def _fill(obj, n: int, pool: str):
    if isinstance(obj, str):
        return obj.replace("{n}", str(n)).replace("{pool}", pool)
    if isinstance(obj, dict):
        return {k: _fill(v, n, pool) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, n, pool) for v in obj]
    return obj


def environ(method: str, path: str, query: str, body: bytes, ctype: str | None, headers: dict) -> dict:
    e = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
         "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "SCRIPT_NAME": "",
         "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
         "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
         "CONTENT_LENGTH": str(len(body))}
    if ctype:
        e["CONTENT_TYPE"] = ctype
    for k, v in headers.items():
        e["HTTP_" + k.upper().replace("-", "_")] = v
    return e


def call(app, env: dict) -> tuple[int, str, bytes]:
    got: dict = {}

    def start_response(status, headers, exc_info=None):
        got["status"] = int(status.split(" ", 1)[0])
        got["ctype"] = next((v for k, v in headers if k.lower() == "content-type"), "")

    it = app(env, start_response)
    try:
        raw = b"".join(it)
    finally:
        if hasattr(it, "close"):
            it.close()
    return got["status"], got["ctype"], raw


def mutation_loop(app, w: dict, n: int, seed: int, deadline: float | None = None) -> dict:
    from fuzz_decoders import mutate

    rng = random.Random(seed)
    reqs = corpus(w)
    weights = [r["w"] for r in reqs]
    tokens = w["tokens"]
    scan = base64.b64decode(w["upload"]["scan"])
    statuses: dict[str, int] = {}
    findings: list[str] = []
    nfind = done = 0
    t0 = time.perf_counter()
    i = 0
    for i in range(n):
        if deadline is not None and i % 256 == 0 and time.time() > deadline:
            break
        done += 1
        r = rng.choices(reqs, weights)[0]
        pool = f"acme:P-{rng.randrange(POOL)}"
        path = _fill(r["p"], i, pool)
        query = r.get("q", "")
        role = r["role"]
        if r.get("raw") is not None:
            body, ctype = r["raw"], r["ct"]
        elif r.get("body") is not None:
            body, ctype = json.dumps(_fill(r["body"], i, pool)).encode(), "application/json"
        else:
            body, ctype = b"", None
        how = rng.randrange(10)
        what = "as-is"
        if how < 5 and body:
            body, what = mutate(rng, body), "body"
        elif how < 7:
            target = (path + "?" + query).encode("latin-1")
            m = mutate(rng, target).decode("latin-1")
            path, _, query = m.partition("?")
            path = path if path.startswith("/") else "/" + path
            what = "url"
        elif how == 7:
            role = rng.choice(ROLES)
            what = "role"
        elif how == 8 and r.get("scan"):
            up = dict(json.loads(body), scan=base64.b64encode(mutate(rng, scan)).decode())
            body, what = json.dumps(up).encode(), "scan"
        headers = {}
        if role and role != "public":
            token = tokens[role]
            if how == 9:
                token, what = mutate(rng, token.encode()).decode("latin-1"), "key"
            headers["Authorization"] = f"Bearer {token}"
        if r.get("idem"):
            headers["Idempotency-Key"] = f"w{seed}-{i}"
        status, ctype_out, raw = call(app, environ(r["m"], path, query, body, ctype, headers))
        key = f"{r['m']} {r['p'].split('{')[0]} {what} {status}"
        statuses[key] = statuses.get(key, 0) + 1
        page = not path.startswith("/v1/") or path.startswith("/v1/keys")
        answer = None
        if ctype_out.startswith("application/json"):
            try:
                answer = json.loads(raw)
            except ValueError:
                findings.append(f"{key}: JSON content type, not JSON: {raw[:120]!r}")
        if status >= 500:
            findings.append(f"{key}: {raw[:200]!r} path {path!r} query {query!r} body {body[:160]!r}")
        elif not page and answer is None and not (status == 200 and ctype_out.startswith("text/csv")):
            findings.append(f"{key}: not JSON ({ctype_out}) {raw[:120]!r} path {path!r}")
        elif status >= 400 and isinstance(answer, dict) and (not isinstance(answer.get("error"), str)
                                                             or "\n" in answer["error"]):
            findings.append(f"{key}: error without its one line: {answer}")
        elif r.get("cert") and what == "body" and body != w["cert"] and status == 200 \
                and isinstance(answer, dict) and answer.get("verdict") != "failed":
            findings.append(f"{key}: a mutated certificate answered {answer}")
        elif what == "scan" and status in (200, 201):
            findings.append(f"{key}: a mutated scan was stored: {answer}")
        if len(findings) > 20:  # keep going (the counts matter); keep the first 20 of each kind of finding
            nfind += len(findings) - 20
            del findings[20:]
    dt = time.perf_counter() - t0
    return {"inputs": done, "seconds": round(dt, 1), "per_s": round(done / dt) if dt else 0,
            "statuses": statuses, "findings": findings, "findings_total": nfind + len(findings)}


def schemathesis_pass(app, w: dict, examples: int) -> dict:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import checks as st_checks

    checks = [st_checks.not_a_server_error, st_checks.status_code_conformance, st_checks.content_type_conformance,
              st_checks.response_headers_conformance, st_checks.response_schema_conformance,
              st_checks.negative_data_rejection]
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    ops = [r.ok() for r in schema.get_all_operations()]
    cases = [0]
    failures: list[str] = []
    t0 = time.perf_counter()
    for op in ops:
        for role in ROLES:
            headers = {"Authorization": f"Bearer {w['tokens'][role]}"} if role != "public" else {}

            def make(op=op, headers=headers):
                @given(case=op.as_strategy())
                @settings(max_examples=examples, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
                def run(case):
                    cases[0] += 1
                    case.call_and_validate(headers=headers, checks=checks)
                return run

            try:
                make()()
            except Exception as e:  # a check failed: hypothesis re-raises it (shrunk)
                failures.append(f"{op.label} [{role}]: {type(e).__name__}: {str(e)[:600]}")
    return {"operations": len(ops), "cases": cases[0], "seconds": round(time.perf_counter() - t0, 1),
            "failures": failures}


def worker(args) -> dict:
    n, examples, seed, deadline, tmpdir = args
    from glint.server.app import create_app

    handler = _Internal()
    logging.getLogger("glint").addHandler(handler)
    logging.getLogger("glint").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="glint-fuzz-wsgi-", dir=tmpdir) as tmp:
        w = world(Path(tmp))
        app = create_app(w["home"])
        try:
            st = schemathesis_pass(app, w, examples) if examples else {"operations": 0, "cases": 0, "seconds": 0,
                                                                       "failures": []}
            left = max(0, n - st["cases"])
            mut = mutation_loop(app, w, left, seed, deadline)
        finally:
            app.glint_close()
    return {"seed": seed, "schemathesis": st, "mutations": mut, "internal_errors": handler.lines,
            "inputs": st["cases"] + mut["inputs"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="HTTP inputs in total (schemathesis cases count)")
    ap.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="worker processes")
    ap.add_argument("--examples", type=int, default=40, help="schemathesis cases per operation and role per worker")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, help="stop the mutations after this long (wall clock, from the start)")
    ap.add_argument("--tmp", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="directory of the served homes (default /dev/shm when there)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    share = [a.inputs // a.workers + (1 if k < a.inputs % a.workers else 0) for k in range(a.workers)]
    t0 = time.perf_counter()
    deadline = time.time() + a.seconds if a.seconds else None
    jobs = [(share[k], a.examples, a.seed + k, deadline, a.tmp) for k in range(a.workers)]
    if a.workers == 1:
        results = [worker(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(a.workers) as pool:
            results = pool.map(worker, jobs)
    dt = time.perf_counter() - t0
    total = sum(r["inputs"] for r in results)
    failed = any(r["schemathesis"]["failures"] or r["mutations"]["findings"] or r["internal_errors"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r["mutations"]["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    out = {"inputs": total, "seconds": round(dt, 1), "per_s": round(total / dt), "workers": a.workers,
           "schemathesis_cases": sum(r["schemathesis"]["cases"] for r in results),
           "mutations": sum(r["mutations"]["inputs"] for r in results),
           "operations": results[0]["schemathesis"]["operations"],
           "failures": [f for r in results for f in r["schemathesis"]["failures"]],
           "findings": [f for r in results for f in r["mutations"]["findings"]],
           "findings_total": sum(r["mutations"].get("findings_total", 0) for r in results),
           "internal_errors": [f for r in results for f in r["internal_errors"]],
           "statuses": dict(sorted(statuses.items()))}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{total} HTTP inputs in {dt:.0f} s ({out['per_s']}/s, {a.workers} workers): "
              f"{out['schemathesis_cases']} schemathesis cases over {out['operations']} operations x {len(ROLES)} "
              f"callers, {out['mutations']} mutated requests")
        print(f"{len(out['failures'])} schemathesis failures, {len(out['findings'])} findings, "
              f"{len(out['internal_errors'])} internal errors logged")
        for f in (out["failures"] + out["findings"] + out["internal_errors"])[:10]:
            print("   ", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
