"""Uploaded ship / share events of several organizations' keys in ONE group commit (glint.server.uploads):
each is checked after the earlier ones of its group, so an offer admitted in the group makes its
receiver the one who may accept it and its sender the one who may cancel it, and an accept in the
group makes the receiver the owner for the events after it. A forged decision in the same group as
the offer is refused by name, as the shipment routes refuse it."""

from __future__ import annotations

import time

from glint import orgs
from glint.db import connect
from glint.home import Home
from glint.ledger import Keys, Ledger
from glint.ledger import events as ev
from glint.ledger.group import LedgerWorker
from glint.server import app as app_mod
from glint.server import uploads
from glint.server.auth import KeyStore

ITEM = "acme:GROUP-1"
SID = "00112233aabb"


def test_one_group_of_several_organizations_is_checked_in_order(tmp_path):
    home = Home(tmp_path / "home").ensure()
    db = connect(home.db)
    o = orgs.Orgs(db)
    o.create("acme")
    o.create("shop")
    db.close()
    ks = KeyStore(home.db)
    tokens = {org: ks.create("brand", f"{org}-hq", org=org)[1] for org in ("acme", "shop")}
    key = {org: ks.authenticate(f"Bearer {t}") for org, t in tokens.items()}
    ks.close()
    now = int(time.time())
    with Ledger.open(home.ledger_target, keys=Keys.load(home.root, create=True), durable=False) as led:
        led.append_event(ev.REGISTER, ITEM, {"brand": "ACME", "prov": {"class": "factory"}, "org": "acme"}, now - 60)
    worker = LedgerWorker(lambda: app_mod._open_ctx(home.root, None), app_mod._close_ctx, idle=uploads.flush)
    try:
        plan = [("acme", "ship", {"act": "offer", "ship": SID, "to": "shop"}),
                ("shop", "ship", {"act": "cancel", "ship": SID}),       # not its sender
                ("acme", "ship", {"act": "accept", "ship": SID}),       # not its receiver
                ("shop", "ship", {"act": "accept", "ship": SID}),       # its receiver
                ("acme", "share", {"act": "grant", "org": "shop"}),     # not the owner any more
                ("shop", "share", {"act": "grant", "org": "acme"})]     # the new owner
        ups = []
        for n, (org, kind, data) in enumerate(plan):
            up = uploads._Upload(key[org], f"k{n}", {"kind": kind, "item": ITEM, "time": now - 30 + n, "data": data})
            uploads._precheck(up)
            ups.append(up)
        outs = []
        for up, fut in zip(ups, worker.group_many(uploads.handle_group, ups)):  # one round: one group
            try:
                outs.append(fut.result(timeout=60))
            except Exception as e:  # noqa: BLE001 - the refusal of that upload
                outs.append(e)
            uploads._wait_durable(up)
    finally:
        worker.close()
    ok = [not isinstance(x, Exception) for x in outs]
    assert ok == [True, False, False, True, False, True], outs
    assert "only its sender (acme) may cancel it" in str(outs[1]) and outs[1].reason == "other-organization"
    assert "only its receiver (shop) may accept it" in str(outs[2])
    assert isinstance(outs[4], orgs.OrgRefused) and "belongs to another organization than acme" in str(outs[4])
    with Ledger.open(home.ledger_target, readonly=True) as led:
        st = led.item(ITEM)
    assert st.org == "shop" and st.shared_with == ["acme"] and st.shipment is None
    db = connect(home.db)
    assert orgs.Orgs(db).shipment_row(SID)[:3] == ("acme", "shop", [ITEM])   # the offer's item, noted
    db.close()
