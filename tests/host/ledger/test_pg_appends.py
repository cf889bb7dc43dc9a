"""What keeps a PostgreSQL append cheap (docs/deployments.md, throughput): the item reads happen
before the sequencer is taken and are applied once, the catch-up under it reads no scan bytes and
decodes with cbor2's C decoder (the same events as the strict decoder), and the commit and the
flush wait go in one round trip."""

from __future__ import annotations

import hashlib
import os

import pytest

from glint.errors import LedgerError
from glint.ledger import Ledger
from glint.ledger import events as ev
from glint.ledger import log as ledger_log
from glint.ledger.store import LeafRow

ITEM = "acme:PG-1"


def _count_item_reads(store, seen: list[bool]) -> None:
    orig = store.item_leaves

    def item_leaves(item):
        seen.append(store._in_seq)
        return orig(item)

    store.item_leaves = item_leaves


def test_item_state_is_read_outside_the_sequencer_and_applied_once(pg_url, keys):
    with Ledger.open(pg_url, keys=keys, durable=False) as a, Ledger.open(pg_url, keys=keys, durable=False) as b:
        a.register_item(ITEM, "ACME")
        _ = b.size  # b's edge follows; its item cache does not hold ITEM
        a.add_coating(ITEM, "c1", ref=bytes(32))  # appended after b's edge: b catches it up under the sequencer
        reads: list[bool] = []
        _count_item_reads(b.store, reads)
        # b reads ITEM (register + enroll) before the sequencer; the catch-up must not apply the
        # enroll a second time ("coating c1 is already enrolled" would drop the state: a second read).
        v = b.record_verify(ITEM, "pass", coating="c1")
        assert reads == [False]
        assert (v.index, v.seq) == (2, 2)
        w = b.record_verify(ITEM, "pass", coating="c1")
        assert reads == [False] and w.seq == 3  # cached since
        with pytest.raises(Exception, match="already enrolled"):
            b.add_coating(ITEM, "c1", ref=bytes(32))
    with Ledger.open(pg_url, readonly=True) as r:
        assert r.verify().ok and [e.seq for e in r.item(ITEM).events] == [0, 1, 2, 3]


def test_catch_up_reads_leaves_not_scans(pg_url, keys):
    with Ledger.open(pg_url, keys=keys, durable=False) as a, Ledger.open(pg_url, keys=keys, durable=False) as b:
        a.register_item(ITEM, "ACME")
        a.record_verify(ITEM, "pass", scan=os.urandom(300))
        since = b._cr.size
        with b.store.sequenced(since) as (acked, fresh):
            assert acked == 2 and [r.idx for r in fresh] == [0, 1]
            assert all(r.scan is None for r in fresh)  # the scan bytes stay on the server
        assert b.store.leaf(1).scan is not None


def test_commit_and_flush_wait_are_one_round_trip(pg_url, keys, monkeypatch):
    """A durable append does not call the separate flush wait: it goes with the COMMIT; the
    writer's flush row still moves once per append (its flush transaction ran)."""
    with Ledger.open(pg_url, keys=keys) as led:
        store = led.store

        def flushes() -> int:
            return store.db.execute("SELECT n FROM flushes WHERE writer = %s", (store._writer_id,)).fetchone()[0]

        monkeypatch.setattr(type(store), "wait_durable", lambda self: pytest.fail("a separate flush round trip"))
        n0 = flushes()
        led.register_item(ITEM, "ACME")
        led.record_verify(ITEM, "pass", scan=b"s" * 40)
        assert flushes() == n0 + 2
        assert led.verify().ok and led.scan_bytes(hashlib.sha256(b"s" * 40).digest()) == b"s" * 40


def _row_of(raw: bytes, idx: int, seq: int) -> LeafRow:
    return LeafRow(idx, "acme:X", seq, ev.leaf_hash(raw), raw)


@pytest.mark.parametrize("kind,data,seq,prev", [
    ("register", {"brand": "ACME", "prov": {"class": "factory"}}, 0, None),
    ("verify", {"res": "pass", "fap": 1e-9, "dev": "a1b2c3d4e5f60708", "scan": bytes(range(32)),
                "via": {"scheme": "gtin", "value": "x"}}, 7, bytes(32)),
    ("transfer", {"owner": "Ana \u00e9", "custodian": "b" * 300}, 2 ** 40, b"\xff" * 32),
])
def test_stored_event_decodes_as_the_strict_decoder(kind, data, seq, prev):
    raw = ev.encode_leaf(12345, kind, "acme:X", seq, prev, 1_700_000_000, data)
    assert ledger_log._stored_event(_row_of(raw, 12345, seq)) == ev.decode_leaf(raw)


def test_stored_event_falls_back_to_the_strict_decoder_for_what_is_not_an_event():
    for raw in (b"\xa1\x61v\x01", b"\xff\x00", b"\x80"):
        with pytest.raises(LedgerError):
            ledger_log._stored_event(_row_of(raw, 0, 0))
    raw = ev.encode_leaf(3, "verify", "acme:X", 1, bytes(32), 5, {"res": "pass"})
    assert ledger_log._stored_event(_row_of(raw, 3, 1)) == ev.decode_leaf(raw, strict=False)
