"""Organizations (glint.orgs): shipments offered, accepted, rejected and cancelled; sharing grants;
voided certificates and an item's current status. On both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from glint import orgs as om
from glint.db import connect
from glint.errors import UsageError
from glint.ledger import Keys, Ledger
from glint.ledger import events as ev
from glint.ledger.cert import cert_id, check_history, verify
from glint.ledger.lifecycle import LifecycleRefused

T0 = 1_760_000_000


@pytest.fixture
def world(backend, tmp_path):
    keys = Keys.generate("glint.test/orgs")
    led = Ledger.open(backend or tmp_path / "ledger.db", keys=keys, durable=False)
    db = connect(backend or tmp_path / "glint.db")
    o = om.Orgs(db)
    o.create("acme", "ACME SA")
    o.create("shop")
    for i, org in enumerate(("acme", "acme", "shop")):
        data = {"brand": "ACME", "prov": {"class": "factory"}, "org": org}
        led.append_event(ev.REGISTER, f"acme:B-{i}", data, T0)
        led.add_coating(f"acme:B-{i}", "c1", ref=bytes(32), time=T0 + 1)
    yield led, o, keys
    led.close()
    db.close()


def test_a_shipment_takes_effect_only_when_accepted(world):
    led, o, _keys = world
    s = om.offer(led, o, ["acme:B-0", "acme:B-1"], "shop", sender="acme", note="spring delivery", time=T0 + 10)
    assert s.state == "pending" and s.sender == "acme" and s.receiver == "shop"
    st = led.item("acme:B-0")
    assert st.org == "acme" and st.shipment["id"] == s.id  # the sender keeps it until accepted
    # the receiver is public in the leaf (sealed values: PUBLIC_BY_KIND): any replay sees it, the note not
    assert led.item("acme:B-0", reader="public").shipment["to"] == "shop"
    assert "spring delivery" not in repr(led.history("acme:B-0"))
    with pytest.raises(om.OrgRefused) as e:
        om.decide(led, o, s.id, "accept", org="acme")  # only the receiver accepts
    assert e.value.reason == "other-organization"
    with pytest.raises(UsageError, match="already in shipment"):
        om.offer(led, o, ["acme:B-1"], "shop", time=T0 + 11)
    s = om.decide(led, o, s.id, "accept", org="shop", time=T0 + 20)
    assert s.state == "accepted"
    st = led.item("acme:B-0")
    assert st.org == "shop" and st.shipment is None and [c.id for c in st.coatings] == ["c1"]
    kinds = [(x.kind, x.data.get("act")) for x in st.events]
    assert kinds[-2:] == [("ship", "offer"), ("ship", "accept")]
    with pytest.raises(LifecycleRefused, match="accepted, not pending"):
        om.decide(led, o, s.id, "cancel")
    with pytest.raises(om.OrgRefused):  # acme no longer owns it
        om.check_write(st, "acme")
    assert [x.id for x in om.shipments(led, o, "acme")] == [s.id]


def test_rejected_cancelled_retired_and_unknown(world):
    led, o, _keys = world
    s = om.offer(led, o, ["acme:B-0"], "shop", time=T0 + 10)
    assert om.decide(led, o, s.id, "reject", org="shop", reason="not ordered", time=T0 + 11).state == "rejected"
    assert led.item("acme:B-0").org == "acme"
    s = om.offer(led, o, ["acme:B-0"], "shop", time=T0 + 12)
    with pytest.raises(om.OrgRefused):
        om.decide(led, o, s.id, "cancel", org="shop")  # only the sender cancels
    assert om.decide(led, o, s.id, "cancel", org="acme", time=T0 + 13).state == "cancelled"
    s = om.offer(led, o, ["acme:B-0", "acme:B-1"], "shop", time=T0 + 13)
    led.retire("acme:B-1", "destroyed", time=T0 + 14)
    assert om.shipment(led, o, s.id).state == "ended"      # an item retired while pending: it cannot complete
    with pytest.raises(LifecycleRefused, match="ended, not pending"):
        om.decide(led, o, s.id, "accept")
    assert om.decide(led, o, s.id, "cancel", org="acme", time=T0 + 14).state == "cancelled"
    assert led.item("acme:B-0").shipment is None                # the live item is free again
    with pytest.raises(LifecycleRefused, match="retired"):
        om.offer(led, o, ["acme:B-1"], "shop", time=T0 + 15)
    with pytest.raises(UsageError, match="no organization nobody"):
        om.offer(led, o, ["acme:B-0"], "nobody")
    with pytest.raises(UsageError, match="one organization"):
        om.offer(led, o, ["acme:B-0", "acme:B-2"], "acme")
    with pytest.raises(om.OrgRefused):
        om.offer(led, o, ["acme:B-2"], "acme", sender="acme")  # not acme's item to ship
    with pytest.raises(UsageError, match="already belong"):
        om.offer(led, o, ["acme:B-2"], "shop")


def test_sharing_grants_read_access_until_revoked(world):
    led, o, _keys = world
    st = led.item("acme:B-0")
    with pytest.raises(om.OrgRefused) as e:
        om.check_read(st, "shop")
    assert e.value.reason == "not-shared"
    with pytest.raises(om.OrgRefused):
        om.share(led, o, ["acme:B-0"], "shop", org="shop")  # a grant is the owner's to give
    om.share(led, o, ["acme:B-0"], "shop", org="acme", time=T0 + 10)
    st = led.item("acme:B-0")
    om.check_read(st, "shop")
    with pytest.raises(om.OrgRefused, match="only shared"):
        om.check_write(st, "shop")  # read access only
    with pytest.raises(UsageError, match="already shared"):
        om.share(led, o, ["acme:B-0"], "shop", time=T0 + 11)
    om.share(led, o, ["acme:B-0"], "shop", act="revoke", time=T0 + 12)
    assert not om.may_read(led.item("acme:B-0"), "shop")


def test_a_voided_certificate_and_the_current_status(world):
    led, o, keys = world
    a = led.record_verify("acme:B-0", "pass", fap=1e-9, time=T0 + 5)
    blob = led.issue_certificate(a.index)
    assert om.current_status(led, a.index)["status"] == "current"
    with pytest.raises(UsageError, match="needs a reason"):
        om.void_certificate(led, a.index, " ")
    with pytest.raises(UsageError, match="not a verification"):
        om.void_certificate(led, 0, "wrong")
    om.void_certificate(led, a.index, "issued in error", time=T0 + 6)
    s = om.current_status(led, a.index)
    assert s["status"] == "voided" and s["voided"]["reason"] == "issued in error"
    assert "voided by its issuer" in om.status_line(s)
    with pytest.raises(UsageError, match="already voided"):
        om.void_certificate(led, a.index, "again")
    # the certificate itself still verifies (its signatures hold); its history shows the void
    info = verify(blob, keys.issuer_public, keys.log_verifier())
    check_history(led.history("acme:B-0", info.event.seq), info.event)
    led.retire("acme:B-0", "lost", time=T0 + 7)
    assert om.current_status(led, a.index)["status"] == "voided"   # voided says more than retired
    b = led.record_verify("acme:B-1", "pass", time=T0 + 8)
    led.retire("acme:B-1", "destroyed", time=T0 + 9)
    s = om.current_status(led, b.index)
    assert s["status"] == "retired" and "retired since" in om.status_line(s)
    assert s["why"] is None and "destroyed" not in om.status_line(s)   # a retirement's reason stays sealed


def test_org_names_and_shipment_ids_are_checked():
    for bad in ("", "ACME", "a b", "-x", "x" * 33, "é", 5):
        with pytest.raises(UsageError):
            ev.check_org(bad)
    for bad in ({"act": "offer", "ship": "0" * 12}, {"act": "take", "ship": "0" * 12, "to": "x"},
                {"act": "accept", "ship": "0" * 12, "to": "x"}, {"act": "offer", "ship": "XYZ", "to": "x"}):
        with pytest.raises(UsageError):
            ev.check_data(ev.SHIP, bad)


def test_the_commands(tmp_path, capsys):
    """glint org / ship / share / api-key create --org / cert void on a home (thin over the library)."""
    import json

    from glint import cli, publish
    from glint.home import Home

    home = Home(tmp_path / "hq").ensure()
    keys = Keys.load(home.root, create=True)
    with Ledger.open(home.ledger_target, keys=keys, durable=False) as led:
        led.register_item("acme:B-9", "ACME", time=T0)
        a = led.record_verify("acme:B-9", "pass", time=T0 + 1)
        blob = led.issue_certificate(a.index)
    cid = cert_id(a.leaf_hash)
    publish.publish(home, blob, cid)
    h = ["--home", str(home.root)]

    def run(*argv):
        assert cli.main([*argv, *h, "--json"]) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    assert run("org", "create", "shop", "--label", "A shop")["name"] == "shop"
    assert [o["name"] for o in run("org", "list")] == ["default", "shop"]
    assert run("api-key", "create", "--role", "brand", "--label", "shop-1", "--org", "shop")["org"] == "shop"
    assert cli.main(["api-key", "create", "--role", "brand", "--label", "x", "--org", "nobody", *h]) == 2
    assert "no organization nobody" in capsys.readouterr().err
    s = run("ship", "offer", "acme:B-9", "--to", "shop", "--note", "order 7")
    assert s["state"] == "pending" and s["from"] == "default"
    assert run("ship", "reject", s["id"], "--reason", "late")["state"] == "rejected"
    s = run("ship", "offer", "acme:B-9", "--to", "shop")
    assert run("ship", "accept", s["id"])["state"] == "accepted"
    assert [x["state"] for x in run("ship", "list", "--org", "shop")] == ["rejected", "accepted"]
    assert cli.main(["ship", "cancel", s["id"], *h]) == 2
    assert "accepted, not pending" in capsys.readouterr().err
    run("org", "create", "lab")
    assert run("share", "grant", "acme:B-9", "--with", "lab")["act"] == "grant"
    assert run("share", "revoke", "acme:B-9", "--with", "lab")["act"] == "revoke"
    v = run("cert", "void", cid, "--reason", "issued in error")
    assert v["status"]["status"] == "voided" and v["item"] == "acme:B-9"
    assert cli.main(["cert", "void", cid, "--reason", "again", *h]) == 2
    assert "already voided" in capsys.readouterr().err
