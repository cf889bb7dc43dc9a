"""The server verifies what it stores: each attack of issue 15 on POST /v1/events is refused with a
one-line reason (real ledger, real registry, real P-256 signatures, the real matcher)."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from softdevice import ITEM, NOW, SoftDevice

from glint.ledger import verify_certificate
from glint.match.database import to_record
from glint.server import wire
from glint.server.admit import reference_wire


def register(api, item=ITEM):
    r = api.post({"kind": "register", "item": item, "time": NOW - 100,
                  "data": {"brand": "ACME", "prov": {"class": "factory"}}}, role="brand")
    assert r.status_code == 201, r.json


def enroll(api, device, coating, item=ITEM):
    ref, probes, (w, h) = coating
    digest = hashlib.sha256(to_record(ref).tobytes()).digest()
    body = wire.event_body("enroll", item, NOW - 90, {"coat": "c1", "ref": digest}, device.sign(probes[0], w, h))
    body["reference"] = reference_wire(ref)
    r = api.post(body)
    assert r.status_code == 201, r.json
    return r


def verify_body(device, spots, size, res="pass", t=NOW - 50, **data):
    return wire.event_body("verify", ITEM, t, {"res": res, **data}, device.sign(spots, *size))


@pytest.fixture
def enrolled(api, device, coating):
    register(api)
    enroll(api, device, coating)
    return api


def test_forged_verify_from_issue_is_refused_and_no_certificate(enrolled, device, coating):
    api = enrolled
    # the issue's attack: no credential, random bytes as the scan, fap 1e-70
    forged = wire.event_body("verify", ITEM, NOW - 10, {"res": "pass", "fap": 1e-70, "dev": device.hex},
                             bytes(200))
    r = api.post(forged, role=None)
    assert r.status_code == 401 and "API key" in r.json["error"]
    r = api.post(forged)
    assert r.status_code == 422 and r.json["reason"] == "malformed" and "\n" not in r.json["error"]
    before = api.get("/v1/checkpoint").json["size"]
    # a verify without any scan
    r = api.post({"kind": "verify", "item": ITEM, "time": NOW - 10, "data": {"res": "pass"}})
    assert r.status_code == 422 and "must carry the device-signed scan" in r.json["error"]
    # signed by an unprovisioned key
    r = api.post(verify_body(SoftDevice(9), coating[1][0], coating[2]))
    assert r.status_code == 422 and r.json["reason"] == "unknown-device"
    # re-signed by another key under the real device's id
    r = api.post(verify_body(device, coating[1][0], coating[2]) | {"scan": base64.b64encode(
        device.sign(coating[1][0], *coating[2], key=12345)).decode()})
    assert r.status_code == 422 and r.json["reason"] == "bad-signature"
    assert api.get("/v1/checkpoint").json["size"] == before


def test_server_recomputes_the_match(enrolled, device, coating, other_coating):
    api = enrolled
    # a scan of another coating claimed as a pass
    r = api.post(verify_body(device, other_coating[1][0], coating[2]))
    assert r.status_code == 422 and r.json["reason"] == "match-disagrees" and "says fail" in r.json["error"]
    # the genuine one passes; the stored fap is the server's, not the client's
    r = api.post(verify_body(device, coating[1][0], coating[2], fap=0.5))
    assert r.status_code == 201, r.json
    ev = api.get(f"/v1/items/{ITEM}", role="auditor").json["events"][-1]
    data = wire.decode_value(ev["data"])
    assert data["dev"] == device.hex and isinstance(data["fap"], float) and data["fap"] < 1e-9
    cert = base64.b64decode(api.get(f"/v1/certificates/{ev['index']}").json["cert"])
    from glint.ledger import Keys

    k = Keys.load(api.home)
    info = verify_certificate(cert, k.issuer_public, k.log_verifier())
    assert info.result == "pass" and info.fap == data["fap"]
    # a genuine fail must be recorded as fail, not as pass
    r = api.post(verify_body(device, other_coating[1][1], coating[2], res="fail"))
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)
def test_replays_counters_and_devices(enrolled, device, coating):
    api = enrolled
    body = verify_body(device, coating[1][0], coating[2])
    assert api.post(body).status_code == 201
    r = api.post(body)  # same bytes under a new idempotency key
    assert r.status_code == 422 and r.json["reason"] == "duplicate"
    # an older counter from the same device (a replayed or cloned scanner)
    r = api.post(wire.event_body("verify", ITEM, NOW - 5, {"res": "pass"},
                                 device.sign(coating[1][1], *coating[2], counter=1)))
    assert r.status_code == 422 and r.json["reason"] == "counter"
    # an event naming another device than the one whose signature verified
    device.counter = 50
    r = api.post(verify_body(device, coating[1][0], coating[2], dev="00" * 8))
    assert r.status_code == 422 and "signed by" in r.json["error"]
    # the revoked device is refused from then on
    from glint.registry import Registry

    with Registry.open(api.home) as reg:
        reg.revoke(device.hex, "lost")
    r = api.post(verify_body(device, coating[1][1], coating[2]))
    assert r.status_code == 422 and r.json["reason"] == "revoked"


def test_live_nonce_from_the_server(enrolled, device, coating):
    api = enrolled
    r = api.client.post("/v1/nonces", json={"device": device.hex},
                        headers={"Authorization": f"Bearer {api.keys['bench']}"})
    assert r.status_code == 201
    nonce = bytes.fromhex(r.json["nonce"])
    body = wire.event_body("verify", ITEM, NOW - 1, {"res": "pass"},
                           device.sign(coating[1][0], *coating[2], nonce=nonce))
    assert api.post(body).status_code == 201
    # the nonce is spent: a new scan with it is a replay
    body = wire.event_body("verify", ITEM, NOW - 1, {"res": "pass"},
                           device.sign(coating[1][1], *coating[2], nonce=nonce))
    r = api.post(body)
    assert r.status_code == 422 and r.json["reason"] == "replay"
    r = api.client.post("/v1/nonces", json={"device": device.hex},
                        headers={"Authorization": f"Bearer {api.keys['brand']}"})
    assert r.status_code == 403


def test_roles_and_custody(enrolled, device, coating, other_coating):
    api = enrolled
    for body in ({"kind": "transfer", "item": ITEM, "time": NOW, "data": {"owner": "mallory"}},
                 {"kind": "passport", "item": ITEM, "time": NOW, "data": {"set": {"model": "fake"}}},
                 {"kind": "retire", "item": ITEM, "time": NOW, "data": {}}):
        r = api.post(body)  # a bench key
        assert r.status_code == 403 and "may not upload" in r.json["error"], body
        assert api.post(body, role="auditor").status_code == 403
        assert api.post(body, role=None).status_code == 401
    assert api.post({"kind": "transfer", "item": ITEM, "time": NOW, "data": {"owner": "ana"}},
                    role="brand").status_code == 201
    # a replaced coating needs a scan that matches the new reference: another coating's is refused
    ref, probes, size = coating
    other = other_coating[0]
    body = wire.event_body("enroll", ITEM, NOW, {"coat": "c2", "replaces": "c1",
                                                "ref": hashlib.sha256(to_record(other).tobytes()).digest()},
                           device.sign(probes[1], *size))
    body["reference"] = reference_wire(other)
    r = api.post(body, role="brand")
    assert r.status_code == 422 and r.json.get("reason") == "match-disagrees", r.json
    # public item pages leave out people; the auditor sees everything
    pub = api.get(f"/v1/items/{ITEM}").json
    assert pub["redacted"] and "owner" not in pub
    assert api.get(f"/v1/items/{ITEM}", role="auditor").json["owner"] == "ana"


@pytest.mark.parametrize("body, words", [
    ({"kind": "transfer", "data": {"note": "x" * 200_000}}, "printable characters"),
    ({"kind": "transfer", "time": 10 ** 23, "data": {"owner": "b"}}, "outside the accepted window"),
    ({"kind": "transfer", "time": 0, "data": {"owner": "b"}}, "outside the accepted window"),
    ({"kind": "transfer", "time": "now", "data": {"owner": "b"}}, "non-negative integer"),
    ({"kind": "transfer", "data": {"owner": "a\x1b[2Kb"}}, "printable"),
    ({"kind": "transfer", "data": {"owner": {"deep": 1}}}, "printable"),
    ({"kind": "transfer", "data": {"scan": {"b64": base64.b64encode(bytes(32)).decode()}}}, "may not set"),
    ({"kind": "passport", "data": {"set": {"a": float("inf")}}}, "finite"),
    ({"kind": "register", "item": "acme:NEW", "data": {"brand": "B", "prov": {"class": "later"}}}, "authenticator"),
])
def test_schema_refuses_unchecked_fields(enrolled, body, words):
    body = {"item": ITEM, "time": NOW} | body
    r = enrolled.post(body, role="brand")
    assert r.status_code in (400, 422) and "\n" not in r.json["error"], r.json
    assert words.lower() in (r.json["error"] + str(r.json.get("hint"))).lower() or r.status_code == 400, r.json
    assert enrolled.get("/v1/items/" + ITEM).status_code == 200  # the item page still reads


def test_keys_limits_and_quota(tmp_path, device):
    from softdevice import Api

    from glint.server.auth import KeyStore

    home = tmp_path / "hq"
    home.mkdir()
    a = Api(home)
    try:
        ks = KeyStore(home / "glint.db")
        _, tiny = ks.create("brand", "tiny", quota_bytes=300)
        _, slow = ks.create("brand", "slow", rate_per_s=0.5)
        a.keys.update(tiny=tiny, slow=slow)
        reg = {"kind": "register", "item": "acme:Q-1", "time": NOW, "data": {"brand": "B", "prov": {"class": "factory"}}}
        assert a.post(reg, role="tiny").status_code == 201
        r = a.post(dict(reg, item="acme:Q-2"), role="tiny")
        assert r.status_code == 507 and "quota" in r.json["hint"]
        codes = [a.post(dict(reg, item=f"acme:S-{i}"), role="slow").status_code for i in range(3)]
        assert codes[-1] == 429
        r = a.post(dict(reg, item="acme:S-9"), role="slow")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        # a revoked key is refused on its next request
        ks.revoke(a.keys["brand"].split("_")[1])
        r = a.post(dict(reg, item="acme:R-1"), role="brand")
        assert r.status_code == 401 and "revoked" in r.json["error"]
        r = a.client.post("/v1/events", json=reg, headers={"Authorization": "Bearer glk_00000000_nope",
                                                          "Idempotency-Key": "z"})
        assert r.status_code == 401 and "unknown API key" in r.json["error"]
        ks.close()
    finally:
        a.close()


def test_serve_refuses_a_public_address_without_tls():
    from glint.errors import UsageError
    from glint.server import check_listen

    check_listen("127.0.0.1", False)
    check_listen("::1", False)
    check_listen("0.0.0.0", True)
    with pytest.raises(UsageError, match="without TLS"):
        check_listen("0.0.0.0", False)
    with pytest.raises(UsageError, match="without TLS"):
        check_listen("192.168.1.5", False)


def test_idempotency_keys_are_per_api_key(enrolled):
    api = enrolled
    body = {"kind": "service", "item": ITEM, "time": NOW, "data": {"action": "clean"}}
    assert api.post(body, role="brand", idem="same").status_code == 201
    # the auditor cannot upload at all; a second brand key reusing the name gets its own slot
    from glint.server.auth import KeyStore

    ks = KeyStore(api.home / "glint.db")
    api.keys["brand2"] = ks.create("brand", "other-brand-host")[1]
    ks.close()
    r = api.post(dict(body, data={"action": "polish"}), role="brand2", idem="same")
    assert r.status_code == 201 and not r.json["duplicate"]
    _ = time


@pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)
def test_a_custody_refusal_undoes_its_scan_acceptance(enrolled, device, coating):
    """The ledger refuses an enroll of a coating already enrolled: 422, and its scan is not spent."""
    api = enrolled
    ref, probes, size = coating
    scan = device.sign(probes[1], *size)
    body = wire.event_body("enroll", ITEM, NOW - 80, {"coat": "c1", "ref": hashlib.sha256(to_record(ref).tobytes()).digest()},
                           scan)
    body["reference"] = reference_wire(ref)
    r = api.post(body)
    assert r.status_code == 422 and "already enrolled" in r.json["error"]
    r = api.post(wire.event_body("verify", ITEM, NOW - 70, {"res": "pass"}, scan))
    assert r.status_code == 201, r.json  # the same scan, accepted now: the refused upload did not use it up


@pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)
def test_concurrent_uploads_share_commits_and_each_gets_its_answer(enrolled):
    import threading

    api = enrolled
    clients = [api.app.test_client() for _ in range(6)]
    token = api.keys["brand"]
    for c in range(6):
        assert api.post({"kind": "register", "item": f"acme:C-{c}", "time": NOW,
                         "data": {"brand": "B", "prov": {"class": "factory"}}}, role="brand").status_code == 201
    codes: list[int] = []

    def run(c):
        for i in range(15):
            body = {"kind": "service", "item": f"acme:C-{c}", "time": NOW, "data": {"action": f"a{i}"}}
            if i == 7:
                body = {"kind": "retire", "item": "acme:NOT-REGISTERED", "time": NOW, "data": {}}
            r = clients[c].post("/v1/events", json=body, headers={"Authorization": f"Bearer {token}",
                                                                   "Idempotency-Key": f"{c}-{i}"})
            codes.append(r.status_code)

    size0 = api.get("/v1/checkpoint").json["size"]
    threads = [threading.Thread(target=run, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] * 84 + [422] * 6  # one refused event refuses only itself
    assert api.get("/v1/checkpoint").json["size"] == size0 + 84
    events = api.get("/v1/items/acme:C-3", role="auditor").json["events"]
    assert [wire.decode_value(e["data"])["action"] for e in events[1:]] == [f"a{i}" for i in range(15) if i != 7]


def test_an_assembly_with_its_own_coating_sends_its_scan(enrolled, device, coating):
    """A verdict without a scan is for an assembly without a coating (tests/e2e/test_assembly_upload.py);
    one whose coating the server holds must carry the scan of it, and its parts are checked too."""
    api = enrolled
    register(api, "acme:CLASP-9")
    assert api.client.post("/v1/assemblies", json={"item": ITEM, "parts": {"clasp": "acme:CLASP-9"}},
                           headers={"Authorization": f"Bearer {api.keys['brand']}"}).status_code == 201
    parts = {"clasp": {"res": "fail", "item": None}}
    r = api.post({"kind": "verify", "item": ITEM, "time": NOW - 40, "data": {"res": "fail", "parts": parts}})
    assert r.status_code == 422 and r.json["reason"] == "assembly-coating", r.json
    # with the scan of its coating (which matches) and a part that was not scanned: the verdict is fail
    r = api.post(verify_body(device, coating[1][0], coating[2], res="pass", parts=parts))
    assert r.status_code == 422 and r.json["reason"] == "assembly-disagrees", r.json
    r = api.post(verify_body(device, coating[1][1], coating[2], res="fail", parts=parts))
    assert r.status_code == 201, r.json
