"""The lifecycle workflows over HTTP (POST /v1/items/<item>/lifecycle/<workflow>): the same rules as the
commands (glint.workflows.lifecycle.run_remote), on a real ledger with scans the server re-checks."""

from __future__ import annotations

import hashlib
import time

import pytest
from softdevice import ITEM, NOW

from glint.match.database import to_record
from glint.server import wire
from glint.server.admit import reference_wire


@pytest.fixture(autouse=True)
def _now():
    """The server checks the scan window against the real clock: event times count from this test's
    start, not from when the suite was collected (softdevice.NOW; a long run made them stale)."""
    global NOW
    NOW = int(time.time())

def _enrolled(api, device, coating):
    ref, probes, (w, h) = coating
    r = api.post({"kind": "register", "item": ITEM, "time": NOW - 100,
                  "data": {"brand": "ACME", "prov": {"class": "factory"}}}, role="brand")
    assert r.status_code == 201, r.json
    digest = hashlib.sha256(to_record(ref).tobytes()).digest()
    body = wire.event_body("enroll", ITEM, NOW - 90, {"coat": "c1", "ref": digest}, device.sign(probes[0], w, h))
    body["reference"] = reference_wire(ref)
    assert api.post(body).status_code == 201


def _scan(api, device, spots, size, res, t):
    r = api.post(wire.event_body("verify", ITEM, t, {"res": res, "op": "ana"}, device.sign(spots, *size)))
    assert r.status_code == 201, r.json
    return r.json["index"]


def run(api, workflow, role="bench", **data):
    headers = {"Authorization": f"Bearer {api.keys[role]}"}
    return api.client.post(f"/v1/items/{ITEM}/lifecycle/{workflow}", json=data, headers=headers)


def test_workflows_over_http_follow_the_state_machine(api, device, coating, other_coating):
    # the events carry times from softdevice.NOW (the suite's start): a scan window wider than the run
    (api.home / "config.toml").write_text("[lifecycle]\nscan_window_s = 86400\n")
    _enrolled(api, device, coating)
    ref, probes, size = coating
    # an enroll upload is identified (1:N) first: the same coating as another item is refused
    other = "acme:COPY-1"
    assert api.post({"kind": "register", "item": other, "time": NOW - 80,
                     "data": {"brand": "ACME", "prov": {"class": "later", "by": "desk", "at": NOW - 80}}}
                    ).status_code == 201
    digest = hashlib.sha256(to_record(ref).tobytes()).digest()
    body = wire.event_body("enroll", other, NOW - 70, {"coat": "c1", "ref": digest}, device.sign(probes[1], *size))
    body["reference"] = reference_wire(ref)
    r = api.post(body)
    assert r.status_code == 422 and r.json["reason"] == "already-enrolled"
    assert r.json["error"] == f"this coating is already enrolled here as {ITEM}, not {other}"
    r = run(api, "transfer", owner="bob")
    assert r.status_code == 422 and r.json["reason"] == "no-passing-scan" and "no scan on record" in r.json["error"]
    v = _scan(api, device, probes[1], size, "pass", NOW - 50)
    r = run(api, "transfer", owner="bob", seller="alice", channel="resale", price=900, currency="EUR", loc="Paris")
    assert r.status_code == 201 and r.json["verified"] == v and r.json["state"] == "enrolled", r.json
    assert run(api, "transfer", owner="x", verified=v).status_code == 422  # the server sets verified itself
    assert run(api, "rental-out", to="carol").json["state"] == "rented-out"
    r = run(api, "transfer", owner="eve")
    assert r.status_code == 422 and r.json["reason"] == "rented-out" and "is rented out (since" in r.json["error"]
    r = run(api, "rental-return")
    assert r.status_code == 422 and "not been scanned since it was rented out" in r.json["error"]
    # the return scan does not match: a substitution case, the item suspect
    _scan(api, device, other_coating[1][0], size, "fail", NOW - 40)
    r = run(api, "rental-return", cond="good")
    assert r.status_code == 201 and not r.json["passed"] and r.json["state"] == "suspect" and r.json["case"], r.json
    from glint.bench.exceptions import ExceptionQueue
    from glint.registry import Registry

    with Registry.open(api.home) as reg:
        case = [e for e in ExceptionQueue(reg.conn).list() if e.id == r.json["case"]][0]
    assert case.source == "rental" and case.subject == ITEM and case.detail["renter"] == "carol"
    assert run(api, "service-in", action="repair").json["reason"] == "suspect"
    # cleared (the real item came back) and returned with a passing scan
    r = api.post({"kind": "clear", "item": ITEM, "time": NOW - 30, "data": {"reason": "found"}}, role="brand")
    assert r.status_code == 201, r.json
    _scan(api, device, probes[0], size, "pass", NOW - 20)
    assert run(api, "rental-return").json["state"] == "enrolled"
    # service without a passing scan: only a brand overrides, and is named
    _scan(api, device, other_coating[1][1], size, "fail", NOW - 10)
    assert run(api, "service-in", action="repair").json["reason"] == "no-passing-scan"
    assert run(api, "service-in", action="repair", override="coating off").status_code == 403
    r = run(api, "service-in", "brand", action="repair", override="coating off")
    assert r.status_code == 201 and r.json["state"] == "in-service", r.json
    assert run(api, "service-out", action="repair", by="atelier").json["state"] == "enrolled"
    assert run(api, "retire", reason="destroyed").status_code == 403
    assert run(api, "retire", "brand", reason="destroyed").json["state"] == "retired"
    r = run(api, "transfer", owner="z")
    assert r.status_code == 422 and r.json["reason"] == "retired"
    assert r.json["error"].endswith("destroyed): no lifecycle event is accepted")
    events = api.get(f"/v1/items/{ITEM}", role="auditor").json["events"]
    ins = [e for e in events if e["data"].get("stage") == "in"][0]
    assert ins["data"]["by"].startswith("brand key ") and ins["data"]["override"] == "coating off"

