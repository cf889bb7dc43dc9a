"""A field host's own ship / share / void events, uploaded by its outbox to a real `glint serve` (issue 17):
accepted when its key may make them (a brand key of the item's organization, as the shipment, share and
void routes decide) and the state machine takes them, refused by name otherwise.

The field host works offline: it registers, enrolls and scans an item, voids the scan's certificate,
shares the item, offers it, cancels the offer and offers it again in its own ledger. Its outbox sends
everything in one batch with the host's field key: the scans go in, the rest is refused by name (a field
key may not); with its organization's brand key the refused entries go in. The remote's log holds
another event first, so the local log index the void names (the certified scan) is another index
there: the outbox writes the remote's."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request

import pytest
from e2e_support import two_orgs
from pagestest import serve
from softdevice import NOW, SoftDevice, sim_coating

from glint import orgs
from glint.home import Home
from glint.ledger import Keys, Ledger
from glint.ledger import events as ev
from glint.match import Database
from glint.match.database import to_record
from glint.outbox import Outbox, open_host_db
from glint.server.client import RemoteLedger

ITEM, OTHER = "acme:FIELD-1", "acme:FIELD-2"
DEVICE = SoftDevice(5)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("outbox-orgs")
    home = Home(root / "remote").ensure()
    DEVICE.provision(home.root)
    w: dict = {"home": home.root, "root": root, **two_orgs(home.db, {
        "acme": ("brand", "acme-field-host", "acme"), "acme-field": ("field", "acme-scanner", "acme"),
        "shop": ("brand", "shop-hq", "shop")})}
    with Ledger.open(home.ledger_target, keys=Keys.load(home.root, create=True), durable=False) as led:
        led.append_event(ev.REGISTER, OTHER, {"brand": "ACME", "prov": {"class": "factory"}, "org": "acme"}, NOW - 900)
    yield from serve(w)


def call(w, method, path, body=None, key=None, idem=None):
    """(status, JSON) of one request to the served home."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(w["base"] + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {w[key]}")
    if idem:
        req.add_header("Idempotency-Key", idem)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def field_host(root):
    """The field host's ledger and glint.db: the item registered, enrolled and scanned by DEVICE, then
    (offline) its certificate voided, the item shared with shop, offered, the offer cancelled, offered again."""
    local = Home(root / "field").ensure()
    ref, probes, size = sim_coating(9)
    Database(local.root / "match").add(ITEM, ref)
    led = Ledger.open(local.root / "ledger.db", keys=Keys.load(local.root, create=True), durable=False)
    led.register_item(ITEM, "ACME", provenance={"class": "later", "by": "field-1", "at": NOW - 500}, time=NOW - 500)
    led.add_coating(ITEM, "c1", ref=hashlib.sha256(to_record(ref).tobytes()).digest(),
                    scan=DEVICE.sign(probes[0], *size), time=NOW - 400, dev=DEVICE.hex)
    v = led.record_verify(ITEM, "pass", fap=1e-9, device=DEVICE.hex, scan=DEVICE.sign(probes[1], *size),
                          time=NOW - 300)
    db = open_host_db(local.root)
    o = orgs.Orgs(db)
    o.create("shop")
    orgs.void_certificate(led, v.index, "sold as new, was refurbished", time=NOW - 250)
    orgs.share(led, o, [ITEM], "shop", time=NOW - 240)
    first = orgs.offer(led, o, [ITEM], "shop", time=NOW - 230)
    orgs.decide(led, o, first.id, "cancel", reason="wrong box", time=NOW - 220)
    second = orgs.offer(led, o, [ITEM], "shop", note="order 7", time=NOW - 210)
    return local, led, db, v.index, second.id


def test_a_field_hosts_ship_share_void_are_accepted_when_checked(served):
    w = served
    local, led, db, local_verify, sid = field_host(w["root"])
    try:
        box = Outbox(db)
        assert box.collect(led, Database(local.root / "match")) == 8
        rep = box.upload(RemoteLedger(w["base"], timeout=20.0, api_key=w["acme-field"]))
        assert (rep.sent, rep.rejected, rep.pending) == (3, 5, 0), rep.errors
        assert [e["kind"] for e in box.entries("rejected")] == ["void", "share", "ship", "ship", "ship"]
        assert "a field key may not upload 'void' events" in rep.errors[0], rep.errors
        assert box.retry_rejected() == 5
        rep = box.upload(RemoteLedger(w["base"], timeout=20.0, api_key=w["acme"]))
        assert (rep.sent, rep.rejected, rep.pending) == (5, 0, 0), rep.errors
        sent = {e["local_index"]: e["remote_index"] for e in box.entries("sent")}
        assert all(sent[i] == i + 1 for i in sent)   # the remote's log held one event more
    finally:
        led.close()
    remote_verify = local_verify + 1   # the remote's log held one event more before the field host's
    st, status = call(w, "GET", f"/v1/certificates/{remote_verify}/status")
    assert st == 200 and status["status"] == "voided" and status["voided"]["reason"] == "sold as new, was refurbished"
    st, s = call(w, "GET", f"/v1/shipments/{sid}", key="shop")   # the server knows the shipment's items
    assert st == 200 and (s["from"], s["to"], s["items"], s["state"]) == ("acme", "shop", [ITEM], "pending"), s
    st, item = call(w, "GET", f"/v1/items/{ITEM}", key="shop")    # shared with shop: it may read it
    assert st == 200 and item["org"] == "acme" and item["shared_with"] == ["shop"]
    st, s = call(w, "POST", f"/v1/shipments/{sid}/accept", {}, "shop")
    assert st == 200 and s["state"] == "accepted"
    assert call(w, "GET", f"/v1/items/{ITEM}", key="shop")[1]["org"] == "shop"


def test_forged_or_out_of_role_ship_share_void_are_refused_by_name(served):
    w = served
    sid = "0123456789ab"

    def post(key, kind, data, item=OTHER):
        return call(w, "POST", "/v1/events", {"kind": kind, "item": item, "time": NOW - 60, "data": data}, key,
                    idem=f"{key}-{item}-{kind}-{json.dumps(data, sort_keys=True)}")

    st, r = post("acme-field", "ship", {"act": "offer", "ship": sid, "to": "shop"})
    assert st == 403 and "a field key may not upload 'ship' events" in r["error"], r
    for kind, data in (("ship", {"act": "offer", "ship": sid, "to": "shop"}), ("share", {"act": "grant", "org": "shop"}),
                       ("void", {"event": 0, "reason": "mine now"})):
        st, r = post("shop", kind, data)   # another organization's item
        assert st == 403 and r["reason"] == "other-organization", (kind, r)
    st, r = post("acme", "ship", {"act": "offer", "ship": sid, "to": "nowhere"})
    assert st == 422 and "no organization nowhere" in r["error"], r
    st, r = post("acme", "ship", {"act": "offer", "ship": "XYZ", "to": "shop"})
    assert st == 422 and "shipment id" in r["error"], r
    st, r = post("acme", "ship", {"act": "offer", "ship": sid, "to": "shop", "org": "shop"})
    assert st == 422 and "may not set ship field 'org'" in r["error"], r
    st, r = post("acme", "void", {"event": 0, "reason": "   "})
    assert st == 422 and "must say why" in r["error"], r
    st, r = post("acme", "void", {"event": 0, "reason": "no such certificate"})   # event 0 is OTHER's register
    assert st == 422 and "not a verify event" in r["error"], r
    st, r = post("acme", "ship", {"act": "accept", "ship": sid})    # nothing pending
    assert st == 422 and "no pending shipment" in r["error"], r
    st, r = post("acme", "ship", {"act": "offer", "ship": sid, "to": "shop"})
    assert st == 201, r
    st, r = post("acme", "ship", {"act": "accept", "ship": sid})    # only the receiver accepts
    assert st == 403 and r["reason"] == "other-organization" and "only its receiver (shop)" in r["error"], r
    st, r = post("shop", "ship", {"act": "cancel", "ship": sid})    # only the sender cancels
    assert st == 403 and "only its sender (acme)" in r["error"], r
    st, r = call(w, "POST", "/v1/events", {"kind": "register", "item": "acme:FIELD-3", "time": NOW - 60,
                                           "data": {"brand": "ACME", "prov": {"class": "factory"}}}, "acme",
                 idem="reg-3")
    assert st == 201, r
    st, r = post("acme", "ship", {"act": "offer", "ship": sid, "to": "acme"}, item="acme:FIELD-3")
    assert st == 422, r   # an item cannot join a shipment from acme to shop as one to acme
    st, r = post("shop", "ship", {"act": "reject", "ship": sid, "reason": "not ordered"})
    assert st == 201, r
    st, s = call(w, "GET", f"/v1/shipments/{sid}", key="acme")
    assert st == 200 and s["state"] == "rejected" and s["items"] == [OTHER]
    st, r = post("acme", "ship", {"act": "offer", "ship": sid, "to": "shop"}, item="acme:FIELD-3")
    assert st == 422 and f"shipment {sid} is rejected" in r["error"], r   # a decided shipment takes no item
