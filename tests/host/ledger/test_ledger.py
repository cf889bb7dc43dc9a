"""Ledger library: appends, twins (coatings, components, provenance, custody), checkpoints, proofs."""

from __future__ import annotations

import pytest

from glint.errors import LedgerError, UsageError, VerificationError
from glint.ledger import EventSpec, Keys, Ledger, verify_consistency, verify_inclusion
from glint.ledger import merkle
from glint.ledger.note import open_checkpoint
from glint.ledger.store import MIN_STORED_LEVEL
from glint.ledger.twins import assess_parts

from .conftest import ITEM, T0, populate, raw_db


def test_append_returns_index_and_leaf_hash(ledger):
    a = ledger.register_item(ITEM, "ACME", time=T0)
    b = ledger.add_coating(ITEM, "c1", ref=bytes(32), time=T0)
    assert (a.index, b.index) == (0, 1)
    assert b.leaf_hash == merkle.leaf_hash(ledger.event(1).raw)
    assert ledger.event(1).prev == a.leaf_hash
    assert ledger.root() == merkle.root_of([a.leaf_hash, b.leaf_hash])


def test_item_ids_and_fields_are_checked(ledger):
    with pytest.raises(UsageError, match="check digit"):
        ledger.register_item("https://id.example.com/01/09506000134353/21/X", "ACME")
    with pytest.raises(UsageError, match="/21/"):
        ledger.register_item("https://id.example.com/01/09506000134352", "ACME")
    with pytest.raises(UsageError, match="not registered"):
        ledger.record_verify(ITEM, "pass")
    ledger.register_item(ITEM, "ACME")
    with pytest.raises(UsageError, match="unknown fields"):
        ledger.append_event("verify", ITEM, {"res": "pass", "colour": "red"})
    with pytest.raises(UsageError, match="pass or fail"):
        ledger.record_verify(ITEM, "maybe")
    with pytest.raises(UsageError, match="already registered"):
        ledger.register_item(ITEM, "ACME")
    assert ledger.size == 1


def test_batch_is_all_or_nothing(ledger):
    ledger.register_item(ITEM, "ACME")
    root = ledger.root()
    with pytest.raises(UsageError):
        ledger.append_batch([EventSpec("verify", ITEM, {"res": "pass"}),
                             EventSpec("enroll", ITEM, {"coat": "c1", "replaces": "nope"})])
    assert ledger.size == 1 and ledger.root() == root and len(ledger.item(ITEM).events) == 1
    out = ledger.append_batch([EventSpec("enroll", ITEM, {"coat": "c1"}), EventSpec("verify", ITEM, {"res": "pass"})])
    assert [a.index for a in out] == [1, 2] and ledger.verify().ok


def test_recoat_keeps_old_coating_in_history(ledger):
    ledger.register_item(ITEM, "ACME")
    ledger.add_coating(ITEM, "c1")
    ledger.service(ITEM, "repair", by="atelier", note="new strap")
    ledger.add_coating(ITEM, "c2", replaces="c1")
    st = ledger.item(ITEM)
    assert [(c.id, c.active, c.replaced_by) for c in st.coatings] == [("c1", False, "c2"), ("c2", True, None)]
    assert st.repairs[0]["action"] == "repair"
    with pytest.raises(UsageError, match="not an active coating"):
        ledger.add_coating(ITEM, "c3", replaces="c1")


def test_provenance_custody_and_retirement(ledger):
    with pytest.raises(UsageError, match="authenticator"):
        ledger.register_item("acme:VINTAGE-1", "ACME", provenance={"class": "later"})
    ledger.register_item("acme:VINTAGE-1", "ACME",
                         provenance={"class": "later", "by": "Authentica Ltd", "at": T0, "reason": "vintage"})
    st = ledger.item("acme:VINTAGE-1")
    assert "Authentica Ltd" in st.provenance_line() and "vintage" in st.provenance_line()
    ledger.transfer("acme:VINTAGE-1", owner="bob")
    ledger.rental_out("acme:VINTAGE-1", to="carol")
    with pytest.raises(UsageError, match="already rented"):
        ledger.rental_out("acme:VINTAGE-1", to="dave")
    ledger.rental_return("acme:VINTAGE-1", condition="good")
    ledger.update_passport("acme:VINTAGE-1", {"materials": "calf leather 92%, brass 8%"})
    ledger.retire("acme:VINTAGE-1", reason="destroyed")
    st = ledger.item("acme:VINTAGE-1")
    assert (st.owner, st.rented_to, st.retired, st.passport["materials"][:4]) == ("bob", None, True, "calf")
    with pytest.raises(UsageError, match="retired"):
        ledger.record_verify("acme:VINTAGE-1", "pass")


def test_components_say_which_part_does_not_belong(ledger):
    bag, other = "acme:BAG-1", "acme:BAG-2"
    ledger.register_item(bag, "ACME", parts={"clasp": "acme:CLASP-1", "body": "acme:BODY-1"})
    ledger.register_item(other, "ACME", parts={"clasp": "acme:CLASP-2", "body": "acme:BODY-2"})
    for part, asm, name in (("acme:CLASP-1", bag, "clasp"), ("acme:BODY-1", bag, "body"),
                            ("acme:CLASP-2", other, "clasp"), ("acme:BODY-2", other, "body")):
        ledger.register_item(part, "ACME", part_of=(asm, name))
    # A genuine clasp of BAG-2 on what claims to be BAG-1, whose body does not verify at all.
    results = {"clasp": {"res": "pass", "item": "acme:CLASP-2"}, "body": {"res": "fail", "item": None}}
    states = {"acme:CLASP-2": ledger.item("acme:CLASP-2")}
    verdicts = {v.part: v for v in assess_parts(ledger.item(bag), results, states)}
    assert not verdicts["clasp"].belongs and "part of acme:BAG-2" in verdicts["clasp"].reason
    assert not verdicts["body"].belongs and "did not verify" in verdicts["body"].reason
    ok = assess_parts(ledger.item(bag), {"clasp": {"res": "pass", "item": "acme:CLASP-1"}}, {})
    assert ok[0].belongs
    a = ledger.record_verify(bag, "fail", parts={k: {"res": v.result, "ok": v.belongs} for k, v in verdicts.items()})
    assert ledger.event(a.index).data["parts"]["clasp"] == {"res": "pass", "ok": False}


def test_checkpoints_proofs_and_reopen(ledger_path, keys):
    with Ledger.open(ledger_path, keys=keys, durable=False) as led:
        populate(led, 4, 2)
        note1 = led.checkpoint()
        assert led.checkpoint() == note1  # nothing new: same checkpoint
        cp1 = open_checkpoint(note1, keys.log_verifier(), keys.origin)
        led.record_verify("acme:BAG-0000", "fail", fap=0.5)
        size_before = led.size
    with Ledger.open(ledger_path, keys=keys, durable=False) as led:  # right edge rebuilt from storage
        assert led.size == size_before
        led.record_verify("acme:BAG-0001", "pass")
        cp2 = open_checkpoint(led.checkpoint(), keys.log_verifier())
        verify_consistency(cp1.size, cp2.size, led.prove_consistency(cp1.size, cp2.size), cp1.root, cp2.root)
        for i in range(cp2.size):
            p = led.prove(i, cp2.size)
            verify_inclusion(p.leaf_hash, i, cp2.size, p.hashes, cp2.root)
        assert led.verify().ok


def test_refuses_checkpoint_inconsistent_with_last(ledger_path, keys):
    with Ledger.open(ledger_path, keys=keys, durable=False) as led:
        populate(led, 2, 1)
        led.checkpoint()
    db = raw_db(ledger_path)
    (leaf,) = db.execute("SELECT leaf FROM leaves WHERE idx = 1").fetchone()
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = 1", (leaf.replace(b"ACME", b"ACNE"),))  # rewrite history
    db.execute("DELETE FROM nodes")
    db.close()
    with pytest.raises(LedgerError, match="cache"):
        Ledger.open(ledger_path, keys=keys)
    db = raw_db(ledger_path)
    # Rebuild a self-consistent (forged) cache so that only the signed checkpoint can notice.
    rows = [merkle.leaf_hash(leaf) for (leaf,) in db.execute("SELECT leaf FROM leaves ORDER BY idx")]
    cr = merkle.CompactRange()
    for h in rows:
        for lv, ix, nh in cr.append(h):
            if lv >= MIN_STORED_LEVEL:
                db.execute("INSERT INTO nodes VALUES(?,?,?)", (lv, ix, nh))
    db.close()
    with Ledger.open(ledger_path, keys=keys) as led:
        led.record_verify("acme:BAG-0000", "pass")
        with pytest.raises(LedgerError, match="inconsistent with the last one"):
            led.checkpoint()


def test_other_log_key_is_refused(ledger, keys):
    populate(ledger, 1, 1)
    ledger.checkpoint()
    ledger.keys = Keys.generate("glint.test/other")
    with pytest.raises(LedgerError, match="belongs to log"):
        ledger.checkpoint()


def test_single_writer(sqlite_ledger_path, keys):
    ledger_path = sqlite_ledger_path
    with Ledger.open(ledger_path, keys=keys):
        with pytest.raises(LedgerError, match="another writer"):
            Ledger.open(ledger_path)
        with Ledger.open(ledger_path, readonly=True) as reader:
            assert reader.size == 0


def test_writers_on_postgresql_share_one_log(pg_url, keys):
    """Several writers of one PostgreSQL ledger: each catches up on the others' events (indexes,
    chains and the tree stay one), a checkpoint covers them all, a reader sees the same."""
    with Ledger.open(pg_url, keys=keys, durable=False) as a, Ledger.open(pg_url, keys=keys, durable=False) as b:
        a.register_item("acme:SHARED-1", "ACME")
        b.add_coating("acme:SHARED-1", "c1", ref=bytes(32))      # b has not seen the register yet
        x = a.record_verify("acme:SHARED-1", "pass", fap=1e-9)
        y = b.record_verify("acme:SHARED-1", "fail")
        assert (x.index, x.seq, y.index, y.seq) == (2, 2, 3, 3)
        with pytest.raises(UsageError, match="already enrolled"):  # a's cached state followed b's enroll
            a.add_coating("acme:SHARED-1", "c1")
        note = b.checkpoint()
        assert open_checkpoint(note, keys.log_verifier(), keys.origin).size == 4 == a.size
        assert a.prove(3).root == open_checkpoint(note, keys.log_verifier()).root
    with Ledger.open(pg_url, readonly=True) as r:
        assert r.verify().ok and r.size == 4 and [e.seq for e in r.item("acme:SHARED-1").events] == [0, 1, 2, 3]


def test_verification_error_for_bad_proof(ledger):
    populate(ledger, 2, 1)
    p = ledger.prove(3)
    with pytest.raises(VerificationError):
        verify_inclusion(p.leaf_hash, 2, p.tree_size, p.hashes, p.root)


def test_checkpoint_row_is_atomic_and_appends_stay_fsynced(sqlite_ledger_path, keys):
    """A checkpoint is stored without its own fsync, as it re-signs byte for byte; every append after
    it is a FULL-sync commit again."""
    from glint.ledger.note import sign_checkpoint

    with Ledger.open(sqlite_ledger_path, keys=keys) as led:
        led.register_item(ITEM, "ACME", time=T0)
        note = led.checkpoint()
        assert led.store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        led.add_coating(ITEM, "c1", ref=bytes(32), time=T0)
        assert led.store.checkpoints()[-1].note == note
        led.store.db.execute("DELETE FROM checkpoints")  # as if a power cut had lost the row
        cp = open_checkpoint(note, keys.log_verifier(), keys.origin)
        assert sign_checkpoint(cp, keys.log_signer) == note  # what a lost row held is signed again exactly
    with Ledger.open(sqlite_ledger_path, keys=keys) as led:
        assert led.size == 2 and led.verify().ok
        assert led.checkpoint() != note and led.verify().ok
