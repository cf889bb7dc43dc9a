"""An assembly without a coating of its own, through a real `glint serve`: its verdict (a verify event
with parts and no scan) is accepted when it names its parts' signed scan events, stored there already,
and the server's own verdict from those events is the claimed one; refused otherwise, with a named
reason (issue 16 point 5 on a server; glint.server.admit.check_assembly_verdict)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from softdevice import SoftDevice, sim_coating

from glint.match.database import to_record
from glint.server import wire
from glint.server.admit import reference_wire
from glint.server.auth import KeyStore


def test_an_assembly_verdict_without_its_own_scan_is_checked_against_its_parts(tmp_path):
    home = tmp_path / "hq"
    home.mkdir()
    dev = SoftDevice(5)
    dev.provision(home)
    ks = KeyStore(home / "glint.db")
    keys = {r: ks.create(r, f"{r}-host")[1] for r in ("bench", "brand")}
    ks.close()
    coats = {"acme:CLASP-A": sim_coating(21)}  # one coated part keeps this test cheap (one enrollment)
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, GLINT_LOG="ERROR"))
    n = [0]

    def call(path, body, role="bench"):
        n[0] += 1
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {keys[role]}",
                   "Idempotency-Key": f"k{n[0]}"}
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post(body, role="bench"):
        return call("/v1/events", body, role)

    now = int(time.time())

    def scan_of(item, k=0, t=now - 60):
        """A part scan as glint scan --parts records it: a verify event with the device-signed scan."""
        ref, probes, size = coats[item]
        signed = dev.sign(probes[k], *size)
        status, out = post(wire.event_body("verify", item, t, {"res": "pass", "note": "scanned as a part"}, signed))
        assert status == 201, out
        return hashlib.sha256(signed).digest()

    def verdict(item, res, parts, t=now - 10):
        return post({"kind": "verify", "item": item, "time": t,
                     "data": wire.encode_value({"res": res, "note": "parts", "parts": parts})})

    try:
        line = proc.stdout.readline()
        assert "listening on" in line, line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        for item in ("acme:KIT-1", "acme:KIT-2", "acme:LID-2", *coats):
            assert post({"kind": "register", "item": item, "time": now - 100,
                         "data": {"brand": "ACME", "prov": {"class": "factory"}}}, "brand")[0] == 201
        for item, (ref, probes, size) in coats.items():
            body = wire.event_body("enroll", item, now - 90, {"coat": "c1", "ref": hashlib.sha256(
                to_record(ref).tobytes()).digest()}, dev.sign(probes[0], *size))
            body["reference"] = reference_wire(ref)
            assert post(body)[0] == 201
        assert call("/v1/assemblies", {"item": "acme:KIT-1", "parts": {"clasp": "acme:CLASP-A"}}, "brand")[0] == 201
        assert call("/v1/assemblies", {"item": "acme:KIT-2", "parts": {"lid": "acme:LID-2"}}, "brand")[0] == 201

        clasp = scan_of("acme:CLASP-A")
        good = {"clasp": {"res": "pass", "item": "acme:CLASP-A", "scan": clasp}}
        status, out = verdict("acme:KIT-1", "pass", good)
        assert status == 201, out

        def refused(item, res, parts, reason, **kw):
            status, out = verdict(item, res, parts, **kw)
            assert status == 422 and out.get("reason") == reason and "\n" not in out["error"], out
            return out["error"]

        # the part's scan is not named, or not stored here: refused
        refused("acme:KIT-1", "pass", {"clasp": {"res": "pass", "item": "acme:CLASP-A"}}, "part-scan-missing")
        refused("acme:KIT-1", "pass", {"clasp": dict(good["clasp"], scan=bytes(32))}, "part-scan-missing")
        refused("acme:KIT-1", "pass", {"clasp": dict(good["clasp"], item="acme:KIT-2")}, "part-scan-missing")
        # something else under the lens: the server's matcher stored that scan as a fail; a pass verdict
        # on it is refused, the true one stored
        size = coats["acme:CLASP-A"][2]
        other = dev.sign([(10 + 7 * k, 12 + 5 * k, 200) for k in range(40)], *size)
        assert post(wire.event_body("verify", "acme:CLASP-A", now - 50, {"res": "fail"}, other))[0] == 201
        failed = {"clasp": {"res": "fail", "item": None, "scan": hashlib.sha256(other).digest()}}
        refused("acme:KIT-1", "pass", {"clasp": dict(failed["clasp"], res="pass", item="acme:CLASP-A")},
                "assembly-disagrees")
        assert "did not verify" in refused("acme:KIT-1", "pass", failed, "assembly-disagrees")
        assert verdict("acme:KIT-1", "fail", failed)[0] == 201
        # a scan too old, an item that is no assembly, another assembly's parts, an unknown field
        old = scan_of("acme:CLASP-A", 1, t=now - 4000)
        refused("acme:KIT-1", "pass", {"clasp": dict(good["clasp"], scan=old)}, "part-scan-stale")
        refused("acme:CLASP-A", "pass", good, "not-an-assembly")
        refused("acme:KIT-2", "pass", good, "assembly-disagrees")          # KIT-2 has a lid only
        status, out = verdict("acme:KIT-1", "pass", dict(good, extra={"res": "pass"}))
        assert status == 422
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/items/acme:KIT-1", timeout=30) as r:
            page = json.loads(r.read())
        assert [e["data"]["res"] for e in page["events"] if e["kind"] == "verify"] == ["pass", "fail"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
