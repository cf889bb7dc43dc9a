"""Group commit: appends from several threads share durable commits; each caller gets its own outcome."""

from __future__ import annotations

import threading

import pytest

from glint.errors import LedgerError, UsageError
from glint.ledger import EventSpec, GroupCommitter, Ledger

THREADS = 6
PER_THREAD = 20


def _register(gc, items):
    for it in items:
        gc.append("register", it, {"brand": "ACME", "prov": {"class": "factory"}}, time=1)


def test_threads_share_commits_and_every_ack_is_stored(ledger_path, keys):
    items = [f"acme:GRP-{t}" for t in range(THREADS)]
    acks: dict[int, list] = {}
    with GroupCommitter.open(ledger_path, keys=keys) as gc:  # durable: one fsync per group
        _register(gc, items)

        def producer(t):
            acks[t] = [gc.append("verify", items[t], {"res": "pass", "fap": 1e-9}, time=2,
                                 scan=b"scan %d %d" % (t, k)) for k in range(PER_THREAD)]

        threads = [threading.Thread(target=producer, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert gc.events == THREADS * (PER_THREAD + 1)
        assert gc.groups < gc.events  # waiting callers were gathered into shared commits
        note = gc.call(lambda led: led.checkpoint())
        assert note.startswith(keys.origin)
    with Ledger.open(ledger_path, keys=keys, readonly=True) as led:
        assert led.size == THREADS * (PER_THREAD + 1)
        for t, out in acks.items():
            assert [a.seq for a in out] == list(range(1, PER_THREAD + 1))  # one thread's order is kept
            for a in out:
                assert led.event(a.index).hash == a.leaf_hash
        assert led.verify().ok
        assert led.scan_bytes(led.event(acks[0][3].index).data["scan"]) == b"scan 0 3"


def test_a_refused_event_fails_only_its_caller(ledger_path, keys):
    with GroupCommitter.open(ledger_path, keys=keys, durable=False) as gc:
        _register(gc, ["acme:GRP-A"])
        futs = [gc.submit(EventSpec("verify", "acme:GRP-A", {"res": "pass"})),
                gc.submit(EventSpec("verify", "acme:GRP-NONE", {"res": "pass"})),  # not registered
                gc.submit(EventSpec("verify", "acme:GRP-A", {"res": "maybe"})),   # bad field
                gc.submit(EventSpec("verify", "acme:GRP-A", {"res": "fail"}))]
        assert futs[0].result().seq == 1 and futs[3].result().seq == 2
        with pytest.raises(UsageError, match="not registered"):
            futs[1].result()
        with pytest.raises(UsageError, match="pass or fail"):
            futs[2].result()
        assert gc.call(lambda led: led.size) == 3
    with pytest.raises(LedgerError, match="closed"):
        gc.append("verify", "acme:GRP-A", {"res": "pass"})


def test_second_writer_is_refused_in_the_caller(ledger_path, keys):
    with Ledger.open(ledger_path, keys=keys, durable=False):
        with pytest.raises(LedgerError, match="another writer"):
            GroupCommitter.open(ledger_path, keys=keys)
