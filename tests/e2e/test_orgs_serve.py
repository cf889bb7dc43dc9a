"""Organizations through a real `glint serve` (issue 17 point 6): two organizations' keys; a shipment
offered, accepted, and another refused; a sharing grant and its revocation; a key of one organization
refused on the other's item with a named reason; a voided certificate shown by the certificate page, the
marketplace check and `glint cert verify --remote`; a later retirement shown on the certificate page.
Once per backend (SQLite, PostgreSQL), one served home per backend."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from e2e_support import two_orgs
from pagestest import serve

from glint import cli, publish
from glint.home import Home
from glint.ledger import Keys, Ledger
from glint.ledger import events as ev
from glint.ledger.cert import cert_id

T0 = 1_760_000_000
BAG, WORN = "acme:BAG-1", "acme:BAG-2"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("orgs")
    home = Home(root / "home").ensure()
    if request.param == "postgres":
        home.config_path.write_text(f'database = "{request.getfixturevalue("pg_cluster").create_database()}"\n')
    w: dict = {"home": home.root, "pub": root / "pub", **two_orgs(home.db, {
        "acme": ("brand", "acme-hq", "acme"), "shop": ("brand", "shop-hq", "shop"),
        "shop-auditor": ("auditor", "shop-books", "shop")})}
    keys = Keys.load(home.root, create=True)
    keys.export(w["pub"])
    with Ledger.open(home.ledger_target, keys=keys, durable=False) as led:
        for item in (BAG, WORN):  # items acme registered, scanned and certified
            led.append_event(ev.REGISTER, item, {"brand": "ACME", "prov": {"class": "factory"}, "org": "acme"}, T0)
            led.add_coating(item, "c1", ref=bytes(32), time=T0 + 1)
            a = led.record_verify(item, "pass", fap=1e-9, scan=b"scan of " + item.encode(), time=T0 + 2)
            blob = led.issue_certificate(a.index)
            publish.publish(home, blob, cert_id(a.leaf_hash))
            w[item] = (a.index, cert_id(a.leaf_hash), blob)
    yield from serve(w)


def call(w, method, path, body=None, key=None):
    """(status, JSON or text) of one request to the served home."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(w["base"] + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {w[key]}")
    if method == "POST" and path == "/v1/events":
        req.add_header("Idempotency-Key", f"k-{body['item']}-{body['kind']}")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in ctype else raw.decode()


def test_an_organization_keeps_to_its_items(served):
    w = served
    st, r = call(w, "POST", "/v1/events", {"kind": "register", "item": "acme:NEW-1",
                                           "data": {"brand": "ACME", "prov": {"class": "factory"}}}, "acme")
    assert st == 201, r
    st, r = call(w, "GET", "/v1/items/acme:NEW-1", key="acme")
    assert st == 200 and r["org"] == "acme"   # owned by the organization whose key registered it
    st, r = call(w, "GET", "/v1/items/acme:NEW-1", key="shop")
    assert st == 403 and r["reason"] == "not-shared" and "not shared with shop" in r["error"]
    st, r = call(w, "GET", "/v1/passports/acme:NEW-1", key="shop-auditor")
    assert st == 403 and r["reason"] == "not-shared"
    st, r = call(w, "POST", "/v1/events", {"kind": "passport", "item": BAG, "data": {"set": {"x": "1"}}}, "shop")
    assert st == 403 and r["reason"] == "other-organization", r
    st, r = call(w, "POST", f"/v1/items/{BAG}/lifecycle/retire", {"reason": "mine now"}, "shop")
    assert st == 403 and r["reason"] == "other-organization"
    st, r = call(w, "POST", "/v1/identifiers", {"item": BAG, "scheme": "qr", "value": "Q-1"}, "shop")
    assert st == 403 and r["reason"] == "other-organization"
    st, r = call(w, "POST", "/v1/derivations", {"parent": BAG, "children": ["shop:PIECE-1"]}, "shop")
    assert st == 403 and r["reason"] == "other-organization"
    st, r = call(w, "POST", "/v1/derivations", {"parent": "acme:NEW-1", "children": ["acme:NEW-1A"]}, "acme")
    assert st == 201 and call(w, "GET", "/v1/items/acme:NEW-1A", key="acme")[1]["org"] == "acme"  # its parent's
    assert call(w, "GET", "/v1/insights", key="shop")[1]["items"] == 0   # an organization's insights: its items
    # a client cannot name another owner itself
    st, r = call(w, "POST", "/v1/events", {"kind": "register", "item": "acme:NEW-2",
                                           "data": {"brand": "ACME", "prov": {"class": "factory"}, "org": "shop"}},
                 "acme")
    assert st == 422 and "org" in r["error"]
    assert call(w, "GET", "/v1/items/acme:NEW-1")[1]["redacted"] is True  # the public view stays public


def test_a_shipment_offered_accepted_and_another_refused(served):
    w = served
    call(w, "POST", "/v1/events", {"kind": "register", "item": "acme:SHIP-1",
                                   "data": {"brand": "ACME", "prov": {"class": "factory"}}}, "acme")
    st, s = call(w, "POST", "/v1/shipments", {"items": ["acme:SHIP-1"], "to": "shop", "note": "order 42"}, "acme")
    assert st == 201 and s["state"] == "pending" and s["from"] == "acme" and s["to"] == "shop", s
    assert call(w, "GET", "/v1/items/acme:SHIP-1", key="shop")[0] == 403          # pending: acme keeps it
    assert call(w, "GET", "/v1/items/acme:SHIP-1", key="acme")[1]["shipment"]["id"] == s["id"]
    st, r = call(w, "POST", f"/v1/shipments/{s['id']}/accept", {}, "acme")        # only the receiver accepts
    assert st == 403 and r["reason"] == "other-organization"
    st, r = call(w, "POST", f"/v1/shipments/{s['id']}/accept", {}, "shop")
    assert st == 200 and r["state"] == "accepted"
    st, item = call(w, "GET", "/v1/items/acme:SHIP-1", key="shop")
    assert st == 200 and item["org"] == "shop"
    assert [(e["kind"], e["data"].get("act")) for e in item["events"]][-2:] == [("ship", "offer"), ("ship", "accept")]
    assert call(w, "GET", "/v1/items/acme:SHIP-1", key="acme")[1]["reason"] == "not-shared"
    assert [x["id"] for x in call(w, "GET", "/v1/shipments", key="shop-auditor")[1]["shipments"]] == [s["id"]]
    # refused: the receiver rejects, the sender keeps the item; a decided shipment stays decided
    st, s2 = call(w, "POST", "/v1/shipments", {"items": [BAG], "to": "shop"}, "acme")
    assert st == 201
    st, r = call(w, "POST", f"/v1/shipments/{s2['id']}/reject", {"reason": "not ordered"}, "shop")
    assert st == 200 and r["state"] == "rejected"
    assert call(w, "GET", f"/v1/items/{BAG}", key="acme")[1]["org"] == "acme"
    st, r = call(w, "POST", f"/v1/shipments/{s2['id']}/cancel", {}, "acme")
    assert st == 422 and r["reason"] == "rejected"
    st, r = call(w, "POST", "/v1/shipments", {"items": [BAG], "to": "nobody"}, "acme")
    assert st == 422 and "no organization nobody" in r["error"]


def test_a_sharing_grant_gives_read_access_until_revoked(served):
    w = served
    st, r = call(w, "POST", "/v1/shares", {"items": [WORN], "with": "shop"}, "acme")
    assert st == 201 and len(r["events"]) == 1
    st, item = call(w, "GET", f"/v1/items/{WORN}", key="shop-auditor")
    assert st == 200 and item["org"] == "acme" and "redacted" not in item
    st, r = call(w, "POST", f"/v1/items/{WORN}/lifecycle/retire", {"reason": "x"}, "shop")
    assert st == 403 and "only shared" in r["error"]                                # read access only
    assert call(w, "POST", "/v1/shares", {"items": [WORN], "with": "acme"}, "shop")[0] == 403
    assert call(w, "POST", "/v1/shares", {"items": [WORN], "with": "shop", "act": "revoke"}, "acme")[0] == 201
    assert call(w, "GET", f"/v1/items/{WORN}", key="shop-auditor")[1]["reason"] == "not-shared"


def test_a_voided_certificate_and_a_later_retirement_are_shown(served, tmp_path, capsys):
    w = served
    index, cid, blob = w[BAG]
    page = call(w, "GET", f"/c/{cid}")[1]
    assert 'data-status="current"' in page
    assert call(w, "POST", f"/v1/certificates/{index}/void", {"reason": "issued in error"}, "shop")[0] == 403
    st, r = call(w, "POST", f"/v1/certificates/{index}/void", {"reason": "issued in error"}, "acme")
    assert st == 201 and r["status"]["status"] == "voided", r
    page = call(w, "GET", f"/c/{cid}")[1]
    assert 'data-status="voided"' in page and "issued in error" in page
    st, a = call(w, "POST", "/v1/certificates/verify", {"cert": base64.b64encode(blob).decode(), "item": BAG})
    assert st == 200 and a["verdict"] == "failed" and a["failure"]["check"] == "not-voided", a
    assert a["status"]["voided"]["reason"] == "issued in error"
    cert = tmp_path / "c.cose"
    cert.write_bytes(blob)
    keys = ["--issuer", str(w["pub"] / "issuer.pub"), "--log", str(w["pub"] / "log.vkey")]
    assert cli.main(["cert", "verify", str(cert), *keys, "--remote", w["base"]]) == 1
    assert "voided by its issuer" in capsys.readouterr().err
    # a later retirement: the certificate still verifies, its page says the item is retired
    index2, cid2, blob2 = w[WORN]
    assert call(w, "POST", f"/v1/items/{WORN}/lifecycle/retire", {"reason": "destroyed"}, "acme")[0] == 201
    assert 'data-status="retired"' in call(w, "GET", f"/c/{cid2}")[1]
    a = call(w, "POST", "/v1/certificates/verify", {"cert": base64.b64encode(blob2).decode()})[1]
    assert a["verdict"] == "verified" and a["status"]["status"] == "retired"
    st, r = call(w, "POST", "/v1/shipments", {"items": [WORN], "to": "shop"}, "acme")
    assert st == 422 and r["reason"] == "retired"                      # a retired item cannot ship
