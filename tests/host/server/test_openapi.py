"""The OpenAPI document (GET /v1/openapi.json) agrees with the served routes, route by route, and the
answers of a short real session (real ledger, registry, signatures, matcher) validate against it."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from flask import Flask
from openapi_spec_validator import validate
from openapitest import check_error, check_response
from softdevice import ITEM, NOW, Api, SoftDevice

from glint.match.database import to_record
from glint.server import openapi, schema, wire
from glint.server.admit import reference_wire

GTIN = "09506000134352"  # a valid GTIN-14 (the resolver's 404 for an unknown object)


@pytest.fixture(autouse=True)
def _now():
    """The server checks the scan window against the real clock: event times count from this test's
    start, not from when the suite was collected (softdevice.NOW; a long run made them stale)."""
    global NOW
    NOW = int(time.time())


@pytest.fixture
def doc(api):
    r = api.client.get("/v1/openapi.json")
    assert r.status_code == 200 and r.content_type.startswith("application/json")
    return r.json


def served_routes(app) -> set[tuple[str, str]]:
    """(METHOD, /path/{var}) of every rule of the app, read straight from werkzeug's url map."""
    out = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for var in rule.arguments:
            path = path.replace(f"<{var}>", "{%s}" % var)
            for conv in ("int", "path", "string", "float", "uuid", "any"):
                path = path.replace(f"<{conv}:{var}>", "{%s}" % var)
        out |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_the_document_is_openapi_31_and_lists_exactly_the_served_routes(api, doc):
    validate(doc)  # the OpenAPI 3.1 meta-schema (openapi-spec-validator)
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == served_routes(api.app)
    # and every documented operation is really answered by a route (not the 404/405 of no route)
    for method, path in sorted(documented):
        concrete = path.replace("{index}", "0").replace("{item}", ITEM).replace("{workflow}", "transfer")
        r = api.client.open(concrete, method=method, json={})
        answer = r.json or {}  # the public pages answer HTML
        assert r.status_code not in (404, 405) or "no such endpoint" not in answer["error"], (method, path)
        assert "method" not in answer.get("error", "") or r.status_code != 405, (method, path)


def test_a_route_without_an_operation_cannot_be_documented():
    app = Flask("t", static_folder=None)

    @app.get("/v1/secret")
    def secret():
        return {}

    with pytest.raises(openapi.Undocumented, match="GET /v1/secret"):
        openapi.document(app)


def test_event_schemas_come_from_the_server_schema(doc):
    schemas = doc["components"]["schemas"]
    mapping = schemas["EventUpload"]["discriminator"]["mapping"]
    assert set(mapping) == set(schema.FIELDS)
    for kind, fields in schema.FIELDS.items():
        data = schemas[f"Event_{kind}"]["properties"]["data"]
        assert set(data["properties"]) == set(fields) | schema.DERIVED.get(kind, frozenset()), kind
        assert data["additionalProperties"] is False
        for name, check in fields.items():
            assert data["properties"][name] == check.json


def test_answers_of_a_real_session_validate_against_the_document(tmp_path, coating, other_coating):
    home = tmp_path / "hq"
    home.mkdir()
    (home / "config.toml").write_text("[lifecycle]\nscan_window_s = 86400\n")  # event times are NOW-relative
    device = SoftDevice(3)
    device.provision(home)
    api = Api(home)
    doc = api.client.get("/v1/openapi.json").json
    seen: set[tuple[str, str, int]] = set()

    def call(method, path, role=None, **kw):
        headers = dict(kw.pop("headers", {}))
        if role:
            headers["Authorization"] = f"Bearer {api.keys[role]}"
        r = api.client.open(path, method=method, headers=headers, **kw)
        body = r.get_data(as_text=True) if r.content_type.startswith("text/csv") else r.json
        template = check_response(doc, method, path, r.status_code, r.content_type, body)
        seen.add((method, template, r.status_code))
        return r

    ref, probes, (w, h) = coating
    try:
        reg = {"kind": "register", "item": ITEM, "time": NOW - 100,
               "data": {"brand": "ACME", "prov": {"class": "factory"}, "passport": {"model": "Tote", "year": 2024}}}
        assert call("POST", "/v1/events", "brand", json=reg, headers={"Idempotency-Key": "r1"}).status_code == 201
        assert call("POST", "/v1/events", "brand", json=reg, headers={"Idempotency-Key": "r1"}).status_code == 200
        digest = hashlib.sha256(to_record(ref).tobytes()).digest()
        enroll = wire.event_body("enroll", ITEM, NOW - 90, {"coat": "c1", "ref": digest}, device.sign(probes[0], w, h))
        enroll["reference"] = reference_wire(ref)
        assert call("POST", "/v1/events", "bench", json=enroll, headers={"Idempotency-Key": "e1"}).status_code == 201
        nonce = call("POST", "/v1/nonces", "bench", json={"device": device.hex}).json["nonce"]
        verify = wire.event_body("verify", ITEM, NOW - 50, {"res": "pass", "loc": "bench 1"},
                                 device.sign(probes[1], w, h, nonce=bytes.fromhex(nonce)))
        v = call("POST", "/v1/events", "bench", json=verify, headers={"Idempotency-Key": "v1"})
        assert v.status_code == 201, v.json
        bad = wire.event_body("verify", ITEM, NOW - 40, {"res": "pass"}, device.sign(other_coating[1][0], w, h))
        assert call("POST", "/v1/events", "bench", json=bad, headers={"Idempotency-Key": "v2"}).json["reason"]
        svc = {"kind": "service", "item": ITEM, "time": NOW - 30, "data": {"action": "clean", "note": "x" * 513}}
        assert call("POST", "/v1/events", "brand", json=svc, headers={"Idempotency-Key": "s1"}).status_code == 422
        b = call("POST", "/v1/events/batch", "brand", json={"events": [{"key": "r1", "event": reg},
                                                                       {"key": "b2", "event": svc}]})
        assert [x["status"] for x in b.json["results"]] == [200, 422], b.json  # a duplicate, a refusal
        assert call("POST", "/v1/events/batch", "brand", json={"events": []}).status_code == 400
        assert call("POST", "/v1/events", json=reg, headers={"Idempotency-Key": "a1"}).status_code == 401
        assert call("POST", "/v1/events", "bench", json=dict(reg, kind="retire", data={}),
                    headers={"Idempotency-Key": "a2"}).status_code == 403
        assert call("POST", "/v1/events", "brand", json=dict(reg, item="acme:X"),
                    headers={"Idempotency-Key": "r1"}).status_code == 409
        assert call("POST", "/v1/events", "brand", data=b"{", headers={"Idempotency-Key": "j"}).status_code == 400
        assert call("POST", "/v1/nonces", "brand", json={"device": device.hex}).status_code == 403
        cp = call("GET", "/v1/checkpoint").json
        idx = v.json["index"]
        call("GET", f"/v1/proof/inclusion?index={idx}")
        call("GET", f"/v1/proof/consistency?from=1&to={cp['size']}")
        assert call("GET", "/v1/proof/inclusion?index=x").status_code == 400
        assert call("GET", "/v1/proof/inclusion?index=99").status_code == 422
        cert = call("GET", f"/v1/certificates/{idx}").json["cert"]
        assert call("GET", "/v1/certificates/0").status_code == 422
        # found by schemathesis: an index past SQLite's integers was an OverflowError (500)
        assert call("GET", "/v1/certificates/633416709402911213002510370340864").status_code == 422
        assert call("GET", f"/v1/proof/inclusion?index={1 << 64}").status_code == 400
        for bad in ("", " 1", "1_0", "\u0661"):  # also found by schemathesis: int() takes these
            assert call("GET", f"/v1/proof/consistency?from=1&to={bad}").status_code == 400, bad
        ok = call("POST", "/v1/certificates/verify", json={"cert": cert, "item": ITEM}).json
        assert ok["verdict"] == "verified"
        raw = call("POST", f"/v1/certificates/verify?item={ITEM}", data=base64.b64decode(cert)[:-3],
                   content_type="application/cose").json
        assert raw["verdict"] == "failed" and raw["failure"]["check"]
        assert call("POST", "/v1/certificates/verify", json={"cert": 1}).status_code == 400
        public = call("GET", f"/v1/items/{ITEM}").json
        full = call("GET", f"/v1/items/{ITEM}", "auditor").json
        assert public["redacted"] and "redacted" not in full and len(full["events"]) == 3
        assert call("GET", "/v1/items/acme:NOPE").status_code == 422
        assert len(call("GET", f"/v1/history/{ITEM}?before=2").json["leaves"]) == 2
        t = call("POST", f"/v1/items/{ITEM}/lifecycle/transfer", "bench", json={"owner": "bob", "channel": "resale"})
        assert t.status_code == 201 and t.json["verified"] == idx, t.json
        assert call("POST", f"/v1/items/{ITEM}/lifecycle/retire", "bench", json={"reason": "x"}).status_code == 403
        assert call("POST", f"/v1/items/{ITEM}/lifecycle/rental-return", "bench", json={}).status_code == 422
        # passports (audience-filtered reads) and assemblies
        assert call("GET", f"/v1/passports/{ITEM}").json["fields"] == {}          # registered without audience
        assert call("GET", f"/v1/passports/{ITEM}", "brand").json["fields"] == {"model": "Tote", "year": 2024}
        part = dict(reg, item="acme:CLASP-9")
        assert call("POST", "/v1/events", "brand", json=part, headers={"Idempotency-Key": "p1"}).status_code == 201
        body = {"item": ITEM, "parts": {"clasp": "acme:CLASP-9"}}
        assert call("POST", "/v1/assemblies", "brand", json=body).status_code == 201
        assert call("POST", "/v1/assemblies", "brand", json=body).json["duplicate"] is True
        assert call("POST", "/v1/assemblies", "bench", json=body).status_code == 403
        assert call("POST", "/v1/assemblies", "brand", json={"item": ITEM}).status_code == 422
        assert call("GET", f"/v1/assemblies/{ITEM}").json["parts"] == {"clasp": "acme:CLASP-9"}
        # lineage, identifiers and insights (glint.server.itemroutes: the CLI's semantics)
        billet = dict(reg, item="acme:BILLET-1")
        assert call("POST", "/v1/events", "brand", json=billet, headers={"Idempotency-Key": "b1"}).status_code == 201
        d = {"parent": "acme:BILLET-1", "children": ["acme:BLADE-1", "acme:BLADE-2"], "how": "machined"}
        made = call("POST", "/v1/derivations", "brand", json=d)
        assert made.status_code == 201 and len(made.json["events"]) == 3, made.json
        assert call("POST", "/v1/derivations", "brand", json=d).json == dict(made.json, duplicate=True)
        clash = call("POST", "/v1/derivations", "brand", json=dict(d, how="cut"))
        assert clash.status_code == 422 and "already exists" in clash.json["error"]
        assert call("POST", "/v1/derivations", "bench", json=d).status_code == 403
        assert call("POST", "/v1/derivations", json=d).status_code == 401
        assert call("POST", "/v1/derivations", "brand", json=dict(d, extra=1)).status_code == 400
        assert call("GET", "/v1/items/acme:BLADE-2", "brand").json["lineage"]["item"] == "acme:BILLET-1"
        b = {"item": "acme:BLADE-1", "scheme": "qr", "value": "https://acme.example/q/B1?x=1"}
        bound = call("POST", "/v1/identifiers", "brand", json=b)
        assert bound.status_code == 201 and call("POST", "/v1/identifiers", "brand", json=b).json["duplicate"]
        r = call("POST", "/v1/identifiers", "brand", json=dict(b, item="acme:BLADE-2"))
        assert r.status_code == 422 and "already bound to acme:BLADE-1" in r.json["error"]
        assert call("POST", "/v1/identifiers", "bench", json=b).status_code == 403
        found = call("GET", "/v1/identifiers", query_string={"scheme": "qr", "value": b["value"]}).json
        assert found["item"] == "acme:BLADE-1" and "acme:BILLET-1" in found["lineage"], found
        assert call("GET", "/v1/identifiers?scheme=nfc&value=04A2").status_code == 422
        assert call("GET", "/v1/identifiers?scheme=rfid&value=04A2").status_code == 400
        ins = call("GET", "/v1/insights?days=30", "auditor").json
        assert ins["items"] == 5 and ins["scans_per_month"][0]["item"] == ITEM, ins
        assert call("GET", "/v1/insights").status_code == 401
        assert call("GET", "/v1/insights", "bench").status_code == 403
        assert call("GET", "/v1/insights?days=-1", "brand").status_code == 400
        rows = call("GET", "/v1/insights/scans_per_month.csv?brand=ACME", "brand").get_data(as_text=True)
        assert rows.splitlines()[0] == "item,month,scans" and rows.splitlines()[1].startswith(ITEM + ",")
        assert call("GET", "/v1/insights/nothing.csv", "brand").status_code == 404
        # organizations (glint.orgs): a grant, a shipment offered and cancelled, a certificate's status and void
        from glint.db import connect
        from glint.home import Home
        from glint.orgs import Orgs

        db = connect(Home(home).db)
        Orgs(db).create("shop")
        db.close()
        assert call("GET", f"/v1/certificates/{idx}/status").json["status"] == "current"
        assert call("POST", "/v1/shares", "brand", json={"items": ["acme:CLASP-9"], "with": "shop"}).status_code == 201
        assert call("POST", "/v1/shares", "brand", json={"items": ["acme:CLASP-9"], "with": 5}).status_code == 400
        sid = call("POST", "/v1/shipments", "brand", json={"items": ["acme:CLASP-9"], "to": "shop"}).json["id"]
        assert call("GET", "/v1/shipments", "auditor").json["shipments"][0]["state"] == "pending"
        assert call("GET", f"/v1/shipments/{sid}", "auditor").json["id"] == sid
        assert call("POST", f"/v1/shipments/{sid}/accept", "brand").status_code == 403   # not the receiver
        assert call("POST", f"/v1/shipments/{sid}/cancel", "brand", json={}).json["state"] == "cancelled"
        assert call("POST", f"/v1/certificates/{idx}/void", "bench", json={"reason": "x"}).status_code == 403
        v = call("POST", f"/v1/certificates/{idx}/void", "brand", json={"reason": "issued in error"})
        assert v.status_code == 201 and v.json["status"]["status"] == "voided"
        for method, path, status in (("GET", "/v1/nothing", 404), ("DELETE", "/v1/checkpoint", 405)):
            r = api.client.open(path, method=method)
            assert r.status_code == status and r.content_type == "application/json"
            check_error(doc, r.json)
        call("GET", "/v1/openapi.json")
        # The public pages (glint.server.pages): JSON ones through call(), HTML ones checked as text.
        call("GET", "/.well-known/gs1resolver")
        call("GET", "/v1/keys")
        for path, media in (("/", "text/html"), ("/verify", "text/html"), (f"/01/{GTIN}/21/NOPE", "application/json"),
                            (f"/c/{'0' * 32}", "application/json"), (f"/c/{'0' * 32}/cose", "application/json"),
                            (f"/c/{'0' * 32}/bundle", "application/json")):
            r = api.client.get(path)
            assert r.content_type.split(";")[0] == media, path
            seen.add(("GET", check_response(doc, "GET", path, r.status_code, r.content_type,
                                            r.json if media == "application/json" else r.get_data(as_text=True)), 0))
        assert base64.b64decode(cert)
    finally:
        api.close()
    # every operation of the document was exercised at least once
    assert {t for _m, t, _s in seen} == set(doc["paths"])
