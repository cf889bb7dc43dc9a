#!/usr/bin/env python3
"""Fuzz the HTTP API of a real `glint serve` against its own OpenAPI document: only glint's JSON errors.

    python tools/fuzz_api.py [--seconds 60] [--roles public,bench,field,brand,auditor,owner,regulator,recycler]
                             [--mutations 20000] [--seed 1] [--json]

1. **schemathesis** (``st run``) against ``GET /v1/openapi.json`` once per role (no key,
   and a key of each role), for ``--seconds`` each: positive and negative inputs from the
   document, every phase (examples, coverage, fuzzing). Checks: no 500
   (``not_a_server_error``), every answer's status, content type, headers and body as the
   document says (``status_code_conformance``, ``content_type_conformance``,
   ``response_headers_conformance``, ``response_schema_conformance``), and what breaks the
   document's schema is refused (``negative_data_rejection``).
2. **mutations of real signed data** over HTTP (schemathesis cannot sign): ``--mutations``
   mutated copies of a genuine certificate to ``POST /v1/certificates/verify`` (raw, as
   application/cose) and of a genuine verify upload (its JSON and its signed scan) to
   ``POST /v1/events`` with a bench key. A mutated certificate must answer ``failed``; an
   upload anything but 201/4xx JSON is a finding, and so is a mutated scan that is stored.
3. The server's log must hold no internal error, and SIGTERM must stop it with exit 0.

The served home is made here: a provisioned software device, one item with a passing
verification and its certificate, keys of every role with no practical rate limit, and
``[limits]`` raised so that inputs reach the handlers instead of the 429 of the rate limit.
A bench run, not a default test (tests/e2e/test_fuzz_api.py runs a few seconds of it). For 10^6
inputs in a bench run use tools/fuzz_api_wsgi.py (the same app in process, several workers).
Exit status 1 on any finding.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROLES = ("public", "bench", "field", "brand", "auditor", "owner", "regulator", "recycler")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection")
_HERE = Path(__file__).resolve().parent


def _mutate():
    sys.path.insert(0, str(_HERE))
    from fuzz_decoders import mutate

    return mutate


def make_home(root: Path) -> dict:
    """A served home with a device, an item, a genuine certificate and a key of every role."""
    from glint.ledger import Keys, Ledger
    from glint.registry import Registry
    from glint.server import wire
    from glint.server.auth import KeyStore
    from glintcore import cose, p256
    from glintcore import descriptor as D

    home = root / "hq"
    subprocess.run([sys.executable, "-m", "glint", "init", "--home", str(home)], check=True, capture_output=True)
    cfg = home / "config.toml"
    cfg.write_text((cfg.read_text() if cfg.exists() else "") + "\n[limits]\npublic_rate_per_s = 1000000\n"
                   "public_burst = 1000000\nverify_rate_per_s = 1000000\nverify_burst = 1000000\n")
    d = p256.private_key_from_entropy(b"z" * 32)
    did = b"\xf1" * 8

    def scan(counter: int, nonce: bytes) -> bytes:
        recs = [(32 * (10 + 7 * k), 32 * (20 + 5 * k), 200) for k in range(30)]
        desc = D.make(did, counter, "0.4.0", "sim", 320, 240, {0: 1}, D.pack_spots(recs), 0, nonce=nonce)
        return cose.sign1(D.encode(desc), d, kid=did)

    with Registry.open(home) as reg:
        reg.add_device(did, p256.public_key(d), "sim", "0.4.0")
    keys = Keys.load(home, create=True)
    with Ledger.open(home / "ledger.db", keys=keys) as led:
        led.register_item("acme:FUZZ-1", "ACME")
        a = led.record_verify("acme:FUZZ-1", "pass", fap=1e-9, device=did.hex(), scan=scan(1, b"n" * 16))
        cert = led.issue_certificate(a.index)
    ks = KeyStore(home / "glint.db")
    tokens = {r: ks.create(r, f"fuzz-{r}", rate_per_s=1e6, quota_bytes=1 << 40, owner="ana" if r == "owner" else None)[1]
              for r in ROLES if r != "public"}
    ks.close()
    upload = wire.event_body("verify", "acme:FUZZ-1", int(time.time()) - 60, {"res": "fail"},
                             scan(2, os.urandom(16)))
    return {"home": home, "cert": cert, "tokens": tokens, "upload": upload}


def start(home: Path, log: Path):
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
                            env=dict(os.environ, GLINT_LOG="WARNING"))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"glint serve did not start: {line!r} (log {log})")
    return proc, int(line.split("127.0.0.1:")[1].split()[0])


def schemathesis(port: int, role: str, token: str | None, seconds: float, seed: int, out: Path) -> dict:
    """One ``st run`` for one role; {"role", "cases", "failures", "exit", "output"}."""
    st = Path(sys.executable).with_name("st")
    cmd = [str(st) if st.exists() else "st", "run", f"http://127.0.0.1:{port}/v1/openapi.json", "--checks", CHECKS,
           "--max-time", str(max(1, int(seconds))), "--seed", str(seed), "--no-color", "--workers", "1",
           "--suppress-health-check", "all", "--request-timeout", "30"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 600, cwd=out.parent)  # its cache there
    text = r.stdout + r.stderr
    out.write_text(text)
    m = re.search(r"(\d+) generated", text)
    f = re.search(r"(\d+) unique failures?", text)
    return {"role": role, "cases": int(m.group(1)) if m else 0, "failures": int(f.group(1)) if f else 0,
            "exit": r.returncode, "output": str(out)}


def mutations(port: int, world: dict, n: int, seed: int) -> dict:
    """Mutated certificates and signed uploads over one keep-alive connection each."""
    mutate = _mutate()
    rng = random.Random(seed)
    cert, upload, bench = world["cert"], world["upload"], world["tokens"]["bench"]
    scan = base64.b64decode(upload["scan"])
    body = json.dumps(upload).encode()
    findings: list[str] = []
    statuses: dict[str, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(path, data, headers):
        nonlocal conn
        for attempt in (0, 1):
            try:
                conn.request("POST", path, body=data, headers=headers)
                r = conn.getresponse()
                return r.status, r.getheader("Content-Type", ""), r.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    t0 = time.perf_counter()
    for i in range(n):
        which = i % 3
        if which == 0:
            x = mutate(rng, cert)
            status, ctype, raw = post("/v1/certificates/verify", x, {"Content-Type": "application/cose"})
            what = "cert"
        elif which == 1:
            x = mutate(rng, body)
            status, ctype, raw = post("/v1/events", x, {"Content-Type": "application/json", "Idempotency-Key": f"m{i}",
                                                        "Authorization": f"Bearer {bench}"})
            what = "upload-json"
        else:
            x = mutate(rng, scan)
            up = dict(upload, scan=base64.b64encode(x).decode())
            status, ctype, raw = post("/v1/events", json.dumps(up).encode(),
                                      {"Content-Type": "application/json", "Idempotency-Key": f"s{i}",
                                       "Authorization": f"Bearer {bench}"})
            what = "upload-scan"
        statuses[f"{what} {status}"] = statuses.get(f"{what} {status}", 0) + 1
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not ctype.startswith("application/json") or not isinstance(answer, dict):
            findings.append(f"{what}: {status} {ctype} not JSON: {raw[:120]!r} input {x.hex()[:120]}")
        elif status >= 500:
            findings.append(f"{what}: {status} {answer.get('error')} input {x.hex()[:120]}")
        elif what == "cert" and (status != 200 or (answer.get("verdict") != "failed" and x != cert)):
            findings.append(f"cert: mutated certificate answered {status} {answer} input {x.hex()[:120]}")
        elif what == "upload-scan" and status == 201 and x != scan:
            findings.append(f"upload-scan: a mutated scan was stored: {answer} input {x.hex()[:120]}")
        if len(findings) >= 20:
            break
    conn.close()
    dt = time.perf_counter() - t0
    return {"inputs": i + 1 if n else 0, "per_s": round((i + 1) / dt) if n else 0, "statuses": dict(sorted(statuses.items())),
            "findings": findings}


def run(seconds: float, roles: list[str], n_mut: int, seed: int, keep: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="glint-fuzz-api-") as tmp:
        root = keep or Path(tmp)
        world = make_home(root)
        log = root / "serve.log"
        proc, port = start(world["home"], log)
        try:
            st = [schemathesis(port, r, world["tokens"].get(r), seconds, seed, root / f"st-{r}.txt") for r in roles]
            mut = mutations(port, world, n_mut, seed)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -9
        text = log.read_text()
        internal = [ln for ln in text.splitlines() if "internal error" in ln or "Traceback" in ln][:10]
        outputs = {s["role"]: Path(s["output"]).read_text()[-6000:] for s in st if s["failures"] or s["exit"]}
    return {"schemathesis": st, "mutations": mut, "server_internal_errors": internal, "sigterm_exit": rc,
            "inputs": sum(s["cases"] for s in st) + mut["inputs"], "failed_outputs": outputs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="schemathesis time budget per role")
    ap.add_argument("--roles", default=",".join(ROLES), help=f"comma-separated, of {', '.join(ROLES)}")
    ap.add_argument("--mutations", type=int, default=20000, help="mutated certificates and signed uploads over HTTP")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="keep the served home, the server log and schemathesis outputs here")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    roles = [r for r in a.roles.split(",") if r]
    bad = set(roles) - set(ROLES)
    if bad:
        ap.error(f"unknown role(s) {', '.join(sorted(bad))}")
    keep = Path(a.keep) if a.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    r = run(a.seconds, roles, a.mutations, a.seed, keep)
    failed = (any(s["failures"] or s["exit"] for s in r["schemathesis"]) or r["mutations"]["findings"]
              or r["server_internal_errors"] or r["sigterm_exit"] != 0)
    if a.json:
        print(json.dumps(r))
    else:
        for s in r["schemathesis"]:
            print(f"schemathesis {s['role']:<8} {s['cases']:>8} cases  {s['failures']} failures  exit {s['exit']}")
        m = r["mutations"]
        print(f"mutations    {m['inputs']:>8} inputs ({m['per_s']}/s)  {len(m['findings'])} findings  {m['statuses']}")
        for f in m["findings"][:5]:
            print(f"    {f}")
        print(f"server: {len(r['server_internal_errors'])} internal errors, SIGTERM exit {r['sigterm_exit']}")
        for role, out in r["failed_outputs"].items():
            print(f"--- schemathesis output ({role}) ---\n{out}")
        print(f"total HTTP inputs: {r['inputs']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
