"""Sealed values: who/where and non-public passport values are commitments in the leaves, revealed
per audience from beside the log, checked by every reader; erasure; old leaves (both backends)."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from glint.errors import LedgerError, VerificationError
from glint.ledger import Ledger, sealed, verify_certificate
from glint.ledger import cert as certmod
from glint.ledger import passport as pp
from glintcore import cbor

from .conftest import T0, raw_db

ITEM = "acme:SEAL-1"
# a distinctive value per audience and per who/where field, to look for in bytes
PASSPORT = {aud: f"val-{aud}-7f3a" for aud in ("public", "owner", "regulator", "recycler", "brand")}
WHO = {"operator": "op-ana-7f3a", "location": "loc-paris-7f3a", "owner": "own-bob-7f3a"}


def _fill(led: Ledger) -> int:
    led.register_item(ITEM, "ACME", passport={"origin": "reg-origin-7f3a"}, operator=WHO["operator"],
                      location=WHO["location"], time=T0)
    led.add_coating(ITEM, "c1", ref=bytes(32), time=T0 + 1)
    for aud, value in PASSPORT.items():
        pp.set_fields(led, ITEM, {f"f-{aud}": value}, audience=aud, operator=WHO["operator"], time=T0 + 2)
    led.transfer(ITEM, owner=WHO["owner"], time=T0 + 3)
    return led.record_verify(ITEM, "pass", fap=1e-9, device="a1b2c3d4", operator=WHO["operator"],
                             location=WHO["location"], scan=b"signed scan", time=T0 + 4).index


def test_commitment_is_sha256_of_the_cbor_of_salt_name_value():
    salt = bytes(range(16))
    assert sealed.commitment(salt, "op", "ana") == hashlib.sha256(cbor.dumps([salt, "op", "ana"])).digest()
    data, reveal = sealed.seal("verify", {"res": "pass", "op": "ana", "loc": "Paris"}, urandom=lambda n: salt * (n // 16))
    assert data == {"res": "pass", "sealed": {"op": sealed.commitment(salt, "op", "ana"),
                                              "loc": sealed.commitment(salt, "loc", "Paris")}}
    assert reveal == {"op": [salt, "ana"], "loc": [salt, "Paris"]}
    assert sealed.seal("verify", {"res": "pass"}) == ({"res": "pass"}, None)  # nothing private: as before
    public = {"set": {"colour": "red"}, "aud": "public"}
    assert sealed.seal("passport", public) == (public, None)
    # the fast encoder sealing uses is glintcore.cbor's deterministic encoding, byte for byte
    for v in ([salt, "op", "ana"], [1.5, None, True, b"x" * 30, -7, 2 ** 40], list(range(30)), {"b": [1], "a": {"c": 0.1}},
              {1: "x"}, [], {}, "é" * 40, [[[]]], {"set": {f"f{i}": [salt, i] for i in range(30)}}):
        assert sealed._dumps(v) == cbor.dumps(v), v


def test_leaves_hold_no_private_value_and_readers_see_their_audiences(ledger):
    """Property over every reader and every value: the public leaves never hold a non-public value; the
    reveals a reader is handed hold exactly the values its audience may read, each checked."""
    idx = _fill(ledger)
    leaves = ledger.history(ITEM)
    blob = b"".join(leaves)
    for value in itertools.chain(WHO.values(), (v for a, v in PASSPORT.items() if a != "public"), ["reg-origin-7f3a"]):
        assert value.encode() not in blob, value
    assert PASSPORT["public"].encode() in blob  # a public value stays in the clear
    assert ledger.verify().ok
    st = ledger.item(ITEM)  # the local view: everything
    assert st.owner == WHO["owner"] and st.passport["origin"] == "reg-origin-7f3a"
    assert {k: st.passport[f"f-{k}"] for k in PASSPORT} == PASSPORT
    assert ledger.event(idx).data["op"] == WHO["operator"]
    events = [ledger.event(i) for i in range(ledger.size)]  # opened: decode the raw leaves again
    raw = [certmod.ev.decode_leaf(e.raw) for e in events]
    for reader in sealed.READS:
        rev = ledger.reveals_for(raw, reader)
        got = cbor.dumps({k: v for k, v in rev.items()})
        for aud, value in PASSPORT.items():
            if aud != "public":
                assert (value.encode() in got) == pp.may_read(reader, aud), (reader, aud)
        for value in WHO.values():
            assert (value.encode() in got) == (reader in ("owner", "brand")), (reader, value)
        st = ledger.item(ITEM, reader)
        assert {k: str(st.passport[f"f-{k}"]) for k in PASSPORT} == {
            k: (v if pp.may_read(reader, k) else "[sealed]") for k, v in PASSPORT.items()}
        assert (st.owner == WHO["owner"]) == (reader in ("owner", "brand"))


def test_a_tampered_reveal_is_caught_by_verify_and_refused_by_readers(ledger, ledger_path, keys):
    idx = _fill(ledger)
    cert = ledger.issue_certificate(idx)
    blob = ledger.store.reveals([idx])[idx]
    forged = blob.replace(WHO["location"].encode(), b"loc-lyon--7f3a")
    db = raw_db(ledger_path)
    q = "UPDATE reveals SET data = ? WHERE idx = ?"
    db.execute(q, (forged, idx))
    ledger._states.clear()
    rep = ledger.verify()
    assert not rep.ok and rep.row == idx and "reveal was edited" in rep.problem and "'loc'" in rep.problem
    with pytest.raises(LedgerError, match="does not match its commitment"):
        ledger.item(ITEM)
    # a forged reveal handed to a certificate check is refused with the event and field named
    rv = {idx: sealed.decode(forged)}
    with pytest.raises(VerificationError, match=f"event {idx}: the revealed 'loc' does not match"):
        verify_certificate(cert, keys.issuer_public, keys.log_verifier(), reveals=rv)
    db.execute(q, (blob, idx))  # put back: verifies again
    assert ledger.verify().ok
    db.close()


def test_erasure_drops_values_and_the_log_still_verifies(ledger, keys):
    idx = _fill(ledger)
    cert = ledger.issue_certificate(idx)
    assert ledger.erase(ITEM, ["op"]) == 7  # register, 5 passport events, verify
    st = ledger.item(ITEM)
    assert st.events[idx].data["op"] == "[sealed]" and st.events[idx].data["loc"] == WHO["location"]
    assert ledger.verify().ok
    assert ledger.erase(ITEM) > 0
    st = ledger.item(ITEM)
    assert st.owner == "[sealed]" and st.passport["f-brand"] == "[sealed]" and st.passport["f-public"] == PASSPORT["public"]
    assert ledger.verify().ok and ledger.store.reveals(list(range(ledger.size))) == {}
    bundle = ledger.bundle(cert, "owner")  # nothing left to reveal: a plain bundle
    c, hist, rev = certmod.read_bundle(bundle)
    assert rev is None and verify_certificate(c, keys.issuer_public, keys.log_verifier(), hist).history_checked


@pytest.fixture
def sqlite_ledger(sqlite_ledger_path, keys):
    """What only the bundle and compatibility cases need: one backend (the reveals' storage runs on both above)."""
    with Ledger.open(sqlite_ledger_path, keys=keys, durable=False) as led:
        yield led


def test_owner_bundle_reveals_owner_fields_and_public_bundle_none(sqlite_ledger, keys):
    ledger = sqlite_ledger
    idx = _fill(ledger)
    cert = ledger.issue_certificate(idx)
    public, owner = ledger.bundle(cert), ledger.bundle(cert, "owner")
    for value in list(WHO.values()) + [PASSPORT["owner"], PASSPORT["brand"], PASSPORT["regulator"]]:
        assert value.encode() not in public, value
    for value in list(WHO.values()) + [PASSPORT["owner"]]:
        assert value.encode() in owner, value
    for value in (PASSPORT["brand"], PASSPORT["regulator"], "reg-origin-7f3a"):
        assert value.encode() not in owner, value
    c, hist, rev = certmod.read_bundle(owner)
    info = verify_certificate(c, keys.issuer_public, keys.log_verifier(), hist, rev)
    assert (info.operator, info.location, info.state.owner) == (WHO["operator"], WHO["location"], WHO["owner"])
    assert info.state.passport["f-owner"] == PASSPORT["owner"] and info.state.passport["f-brand"] == "[sealed]"
    assert certmod.read_bundle(public)[2] is None and cbor.loads(public)["glint-bundle"] == 1
    with pytest.raises(VerificationError, match="not an event of this certificate's history"):
        verify_certificate(c, keys.issuer_public, keys.log_verifier(), hist, {**rev, 999: {}})


def test_old_leaves_with_values_in_the_clear_still_read_and_verify(sqlite_ledger, monkeypatch):
    """A ledger written before sealing: values in the leaves, no reveals; it reads and verifies as before,
    and new events beside them are sealed."""
    ledger = sqlite_ledger
    with monkeypatch.context() as m:
        m.setattr(sealed, "seal_encoded", lambda kind, data, urandom=None: (data, None, None))
        ledger.register_item(ITEM, "ACME", passport={"origin": "IT"}, operator="ana", time=T0)
        ledger.transfer(ITEM, owner="bob", time=T0 + 1)
    ledger._states.clear()
    ledger.transfer(ITEM, owner="carol", time=T0 + 2)
    assert b"bob" in ledger.history(ITEM)[1] and b"carol" not in ledger.history(ITEM)[2]
    st = ledger.item(ITEM, "public")
    assert st.passport == {"origin": "IT"} and st.owner == "[sealed]"
    assert ledger.item(ITEM).owner == "carol" and ledger.verify().ok


def test_a_sqlite_ledger_without_the_reveals_table_reads(sqlite_ledger_path, keys):
    with Ledger.open(sqlite_ledger_path, keys=keys, durable=False) as led:
        led.register_item(ITEM, "ACME", time=T0)
    db = raw_db(sqlite_ledger_path)
    db.execute("DROP TABLE reveals")  # as a ledger from before sealed values
    db.close()
    with Ledger.open(sqlite_ledger_path, readonly=True) as led:
        assert led.item(ITEM).brand == "ACME" and led.verify().ok
    with Ledger.open(sqlite_ledger_path, keys=keys, durable=False) as led:  # a writer adds the table
        led.transfer(ITEM, owner="bob")
        assert led.item(ITEM).owner == "bob" and led.verify().ok


def test_another_hosts_sealed_events_update_this_writers_state(backend, ledger, ledger_path, keys):
    """PostgreSQL, two writers: the events one appends (sealed) reach the other's cached custody state
    with their values (its catch-up opens them from the reveals)."""
    if backend is None:
        pytest.skip("one writer per SQLite ledger")
    ledger.register_item(ITEM, "ACME", time=T0)
    ledger.transfer(ITEM, owner="bob", time=T0 + 1)
    with Ledger.open(ledger_path, keys=keys, durable=False) as other:
        other.rental_out(ITEM, to="carol", time=T0 + 2)
    ledger.rental_return(ITEM, time=T0 + 3)  # accepted: this writer's state saw the rental, catching up
    assert ledger._states[ITEM].state == "enrolled"
    with pytest.raises(Exception, match="not rented out"):
        ledger.rental_return(ITEM, time=T0 + 4)
    st = ledger.item(ITEM)
    assert st.owner == "bob" and [e.kind for e in st.events][-2:] == ["rental-out", "rental-return"]
    assert st.events[-2].data["to"] == "carol" and ledger.verify().ok


def test_passport_erase_command(tmp_path, capsys):
    """`glint passport erase ITEM FIELD... | --all`: the values go, the log still verifies (one line each)."""
    import json

    from glint import cli
    from glint.home import Home
    from glint.ledger import Keys

    root = tmp_path / "home"
    Home(root).ensure()
    with Ledger.open(root / "ledger.db", keys=Keys.load(root, create=True), durable=False) as led:
        _fill(led)
    assert cli.main(["--home", str(root), "passport", "erase", ITEM, "op", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"item": ITEM, "fields": ["op"], "dropped": 7, "log_ok": True}
    assert cli.main(["--home", str(root), "passport", "erase", ITEM]) == 2  # neither fields nor --all
    assert "name the fields to erase, or --all" in capsys.readouterr().err
    assert cli.main(["--home", str(root), "passport", "erase", ITEM, "--all"]) == 0
    assert "the log verifies" in capsys.readouterr().out
    with Ledger.open(root / "ledger.db", readonly=True) as led:
        assert led.item(ITEM).owner == "[sealed]" and led.verify().ok
