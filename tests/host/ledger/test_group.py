"""The one ledger writer thread (LedgerWorker): appends from several threads share durable commits (group
commit), each caller gets its own outcome; calls and grouped work keep their queue order."""

from __future__ import annotations

import threading

import pytest

from glint.errors import LedgerError, UsageError
from glint.ledger import EventSpec, Ledger, LedgerWorker

THREADS = 6
PER_THREAD = 20


def _register(gc, items):
    for it in items:
        gc.append("register", it, {"brand": "ACME", "prov": {"class": "factory"}}, time=1)


def test_threads_share_commits_and_every_ack_is_stored(ledger_path, keys):
    items = [f"acme:GRP-{t}" for t in range(THREADS)]
    acks: dict[int, list] = {}
    with LedgerWorker.open(ledger_path, keys=keys) as gc:  # durable: one fsync per group
        _register(gc, items)

        def producer(t):
            acks[t] = [gc.append("verify", items[t], {"res": "pass", "fap": 1e-9}, time=2,
                                 scan=b"scan %d %d" % (t, k)) for k in range(PER_THREAD)]

        threads = [threading.Thread(target=producer, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert gc.items == THREADS * (PER_THREAD + 1)
        assert gc.groups < gc.items  # waiting callers were gathered into shared commits
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
    with LedgerWorker.open(ledger_path, keys=keys, durable=False) as gc:
        _register(gc, ["acme:GRP-A"])
        futs = [gc.submit_event(EventSpec("verify", "acme:GRP-A", {"res": "pass"})),
                gc.submit_event(EventSpec("verify", "acme:GRP-NONE", {"res": "pass"})),  # not registered
                gc.submit_event(EventSpec("verify", "acme:GRP-A", {"res": "maybe"})),   # bad field
                gc.submit_event(EventSpec("verify", "acme:GRP-A", {"res": "fail"}))]
        assert futs[0].result().seq == 1 and futs[3].result().seq == 2
        with pytest.raises(UsageError, match="not registered"):
            futs[1].result()
        with pytest.raises(UsageError, match="pass or fail"):
            futs[2].result()
        assert gc.call(lambda led: led.size) == 3
    with pytest.raises(LedgerError, match="closed"):
        gc.append("verify", "acme:GRP-A", {"res": "pass"})


def test_second_writer_is_refused_in_the_caller(sqlite_ledger_path, keys):
    ledger_path = sqlite_ledger_path
    with Ledger.open(ledger_path, keys=keys, durable=False):
        with pytest.raises(LedgerError, match="another writer"):
            LedgerWorker.open(ledger_path, keys=keys)


def test_groups_of_any_handler_and_calls_keep_their_order(tmp_path):
    """A context other than a Ledger; a handler that takes what queued meanwhile; calls between groups."""
    log: list = []

    def handler(ctx, items):
        ctx.append(("group", list(items)))
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    w = LedgerWorker(lambda: log, name="test-worker")
    gate = threading.Event()
    w.submit(lambda ctx: gate.wait(5))  # the thread is busy: what follows queues up
    futs = [w.group(handler, i) for i in range(4)]
    mid = w.submit(lambda ctx: ctx.append("call") or len(ctx))
    late = w.group(handler, 4)
    gate.set()
    assert futs[0].result(5) == 0 and futs[2].result(5) == 20 and late.result(5) == 40
    with pytest.raises(ValueError, match="odd 1"):
        futs[1].result(5)
    assert mid.result(5) == 2
    assert log == [("group", [0, 1, 2, 3]), "call", ("group", [4])]  # gathered, then in queue order
    assert w.groups == 2 and w.items == 5

    def broken(ctx, items):
        raise OSError("disk full")

    f1, f2 = w.group(broken, 1), w.group(broken, 2)
    for f in (f1, f2):  # every caller of a failing group hears it
        with pytest.raises(OSError, match="disk full"):
            f.result(5)
    w.close()
    with pytest.raises(LedgerError, match="closed"):
        w.call(len)
