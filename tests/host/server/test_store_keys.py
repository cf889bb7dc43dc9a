"""The idempotency keys a SQLite ledger keeps (glint.server.store.LedgerKeys): the in-memory filter
in front of the look-up never hides a stored key (it is filled at start, before each commit, and
rebuilt from the stored keys when full), and it spares the look-up of new keys."""

from __future__ import annotations

from glint.ledger.store import SQLiteStore
from glint.server.store import IdempotencyStore, KeyFilter, LedgerKeys, connect


def test_the_filter_has_no_false_negatives_and_few_false_positives(monkeypatch):
    monkeypatch.setattr(KeyFilter, "MIN_CAPACITY", 64)
    f = KeyFilter(2000)
    keys = [f"kid{i % 7}:run-{i}" for i in range(f.capacity)]
    for k in keys:
        f.add(k)
    assert all(f.may_hold(k) for k in keys)
    fp = sum(f.may_hold(f"kid{i % 7}:other-{i}") for i in range(10000))
    assert fp < 10000 * 0.01, fp  # 16 bits and 4 probes a key: about 0.24 % at capacity


def test_stored_keys_are_found_across_a_restart_and_a_rebuild(tmp_path, monkeypatch):
    monkeypatch.setattr(KeyFilter, "MIN_CAPACITY", 64)
    led = SQLiteStore(tmp_path / "ledger.db")
    db = connect(tmp_path / "glint.db")
    ks = IdempotencyStore(db)
    stored = [(f"k:{i}", bytes(32), i, bytes(32)) for i in range(3000)]
    led.put_upload_keys(stored[:100])
    lk = LedgerKeys(led, ks)  # the server's start: the 100 stored keys in the filter
    assert lk.get_many(["k:5", "k:100"]).keys() == {"k:5"} and not lk.legacy
    rest = [k for k, *_ in stored[100:]]
    lk.will_store(rest)  # more than the filter holds: rebuilt larger, then the new keys
    assert lk.filter.capacity >= len(stored)
    led.put_upload_keys(stored[100:])
    got = lk.get_many([k for k, *_ in stored])
    assert len(got) == len(stored) and got["k:997"].idx == 997 and got["k:997"].state == "done"
    assert lk.get_many(["never-stored"]) == {}
    led.close()
    led = SQLiteStore(tmp_path / "ledger.db")
    assert LedgerKeys(led, ks).get_many(["k:1994"])["k:1994"].idx == 1994  # a restart reads them again
    led.close()
    db.close()
