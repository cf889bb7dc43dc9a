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
from glint.ledger.log import EventSpec
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


# -- verify events appended by the server under the sequencer (Ledger._append_verifies)

def _two(pg_url, keys):
    return Ledger.open(pg_url, keys=keys, durable=False), Ledger.open(pg_url, keys=keys, durable=False)


def _sql(led, sql, args=()):
    return led.store.db.execute(sql, args or None).fetchall()


def test_cbor_heads_built_by_the_server_are_the_hosts(pg_url, keys):
    with Ledger.open(pg_url, keys=keys, durable=False) as led:
        for v in (0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1):
            assert bytes(_sql(led, "SELECT cbor_head(0, %s)", (v,))[0][0]) == ev.dumps(v)
        for s in ("", "a" * 23, "a" * 24, "\u00e9" * 200, "x" * 70000):
            n = len(s.encode())
            assert bytes(_sql(led, "SELECT cbor_head(3, %s)", (n,))[0][0]) + s.encode() == ev.dumps(s)


def test_server_side_verifies_are_the_leaves_the_host_makes_and_keep_the_tree(pg_url, keys, monkeypatch):
    """Two hosts' verifies on shared items, appended by the server (never through the client-side
    sequenced transaction): strict leaves, chains across hosts, the tree-hash cache past several
    levels, proofs and checkpoints from either host."""
    a, b = _two(pg_url, keys)
    with a, b:
        items = [f"acme:PG-{k}" for k in range(3)] + ["https://id.example.com/01/09506000134352/21/ABC123"]
        for it in items:
            a.register_item(it, "ACME", operator="ana")
        monkeypatch.setattr(type(a.store), "sequenced", lambda *_: pytest.fail("a verify took the client-side path"))
        got = []
        for k in range(70):
            led = (a, b)[k % 2]
            got.append(led.record_verify(items[k % len(items)], "pass", fap=1e-9, operator="op", location="Paris",
                                         scan=os.urandom(40), time=1_700_000_000 + k * 1000))
        monkeypatch.undo()
        assert [g.index for g in got] == list(range(4, 74))
        for g in got:
            raw = a.store.leaf(g.index).leaf
            e = ev.decode_leaf(raw)  # strict: deterministic CBOR
            assert (e.index, e.item, e.seq, e.hash) == (g.index, g.item, g.seq, g.leaf_hash)
        assert a.verify().ok and b.verify().ok
        note = b.checkpoint()
        assert a.size == b.size == 74 and a.root() == b.root()
        a.prove(40).verify()
        assert note in {r.note for r in a.store.checkpoints()}
        assert b.item(items[1]).scans == [g.index for g in got if g.item == items[1]]
        assert [r[0] for r in _sql(a, "SELECT kind FROM leaves ORDER BY idx")] == ["register"] * 4 + ["verify"] * 70


def test_a_stale_cache_cannot_record_a_verify_the_rules_refuse(pg_url, keys):
    """Host b cached the item; host a retires it; b's verify is refused (the server does not take an
    event whose item moved on by more than verifies; the sequenced path catches up and refuses)."""
    a, b = _two(pg_url, keys)
    with a, b:
        a.register_item(ITEM, "ACME")
        b.record_verify(ITEM, "pass")
        a.record_verify(ITEM, "pass")  # a verify between: b's next verify is still taken
        v = b.record_verify(ITEM, "fail")
        assert v.seq == 3 and b.current(ITEM).scans == [1, 3]  # b's cached state misses a's verify
        assert b.item(ITEM).scans == [1, 2, 3]
        b.append_event(ev.VOID, ITEM, {"event": 2, "reason": "test"})  # a's scan: b reads the item again first
        assert sorted(b.current(ITEM).voided) == [2] and b.current(ITEM).scans == [1, 2, 3]
        a.retire(ITEM, reason="stolen")
        with pytest.raises(Exception, match="retired"):
            b.record_verify(ITEM, "pass")
        assert b.current(ITEM).retired  # read again on the sequenced path
        out = b.append_group([EventSpec("verify", ITEM, {"res": "pass"}), EventSpec("verify", "acme:NONE", {"res": "pass"}),
                              EventSpec("verify", "acme:PG-2", {"bad": 1})])
        assert all(isinstance(o, Exception) for o in out)
        assert b.size == 6 and b.verify().ok


def test_rows_of_an_older_glint_count_as_custody_events(pg_url, keys):
    """A row without a kind (written before the column) is not taken as a verify: the event goes
    through the sequenced path, and is appended there."""
    a, b = _two(pg_url, keys)
    with a, b:
        a.register_item(ITEM, "ACME")
        b.record_verify(ITEM, "pass")
        a.record_verify(ITEM, "pass")
        _sql(a, "UPDATE leaves SET kind = NULL WHERE idx = 2 RETURNING 1")
        seen = []
        orig = b.store.append_verifies
        b.store.append_verifies = lambda *args: seen.append(orig(*args)) or seen[-1]
        v = b.record_verify(ITEM, "pass")
        assert seen == [[]] and (v.index, v.seq) == (3, 3) and b.verify().ok


def test_verify_names_a_kind_column_that_disagrees_with_its_leaf(pg_url, keys):
    """The kind column is what append_verifies trusts: a retire relabelled as a verify (so that a stale
    host's verify would be taken) is an edited row for ``glint ledger verify``."""
    with Ledger.open(pg_url, keys=keys, durable=False) as a:
        a.register_item(ITEM, "ACME")
        a.retire(ITEM, reason="stolen")
        assert a.verify().ok
        _sql(a, "UPDATE leaves SET kind = 'verify' WHERE idx = 1 RETURNING 1")
        rep = a.verify()
        assert not rep.ok and rep.row == 1 and "kind column" in rep.problem
