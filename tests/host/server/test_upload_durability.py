"""An upload's answer still means both databases are on disk, now that glint.db's commits are
fsynced behind the ledger thread (glint.server.uploads, glint.registry.WalSync owe/flush):
a slow disk, a failing one, and the pending keys' fsync before the ledger commit."""

from __future__ import annotations

import os
import threading
import time

import pytest
from softdevice import ITEM, NOW, register_body

from glint.ledger.log import Ledger


def walsync(api):
    """The server's glint.db WalSync (the ledger thread's registry)."""
    from glint.server.app import _Ctx

    box: list = []
    _worker(api).call(lambda ctx: box.append(ctx) if isinstance(ctx, _Ctx) else None)
    return box[0].registry.walsync


def _worker(api):
    for cell in api.app.view_functions["post_nonce"].__closure__ or ():
        v = cell.cell_contents
        if type(v).__name__ == "LedgerWorker":
            return v
    raise AssertionError("no ledger worker in the app")


@pytest.fixture
def slow_disk(monkeypatch):
    real = os.fsync

    def slow(fd):
        time.sleep(0.05)
        real(fd)

    monkeypatch.setattr("glint.walsync.os.fsync", slow)


def service(i: int) -> dict:
    return {"kind": "service", "item": ITEM, "time": NOW - 60, "data": {"action": f"clean {i}"}}


def test_an_answer_comes_only_once_glint_db_is_on_disk(api, slow_disk):
    ws = walsync(api)
    assert ws is not None  # a SQLite glint.db: its commits are fsynced behind the ledger thread
    assert api.post(register_body(), role="brand").status_code == 201
    for i in range(3):
        r = api.post(service(i), role="brand")
        assert r.status_code == 201, r.get_json()
        # nothing this upload committed is waiting for the disk: the fsync its step 3 was left
        # to (the idle hook's, here) has finished before the answer
        assert not ws._owed and ws.done == ws.asked, (ws.asked, ws.done)


def test_the_ledger_commit_waits_for_the_pending_keys(api, slow_disk, monkeypatch):
    ws = walsync(api)
    seen = []
    real = Ledger.append_group

    def watched(self, specs):
        seen.append((ws.done, ws.asked))
        return real(self, specs)

    monkeypatch.setattr(Ledger, "append_group", watched)
    assert api.post(register_body(), role="brand").status_code == 201
    done, asked = seen[-1]
    assert done == asked > 0  # the keys' commit (the last asked) was durable before the append


def test_concurrent_uploads_share_glint_db_fsyncs(api, slow_disk):
    """8 clients at once: the fsync of one group's step 2 also covers the previous group's
    step 3, so glint.db sees fewer fsyncs than two per group."""
    assert api.post(register_body(), role="brand").status_code == 201
    ws = walsync(api)
    worker = _worker(api)
    s0, g0 = ws.syncs, worker.groups
    errors: list = []

    def client(c):
        for i in range(6):
            r = api.app.test_client().post("/v1/events", json=service(100 * c + i), headers={
                "Idempotency-Key": f"c{c}-{i}", "Authorization": f"Bearer {api.keys['brand']}"})
            if r.status_code != 201:
                errors.append(r.get_json())

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    groups, syncs = worker.groups - g0, ws.syncs - s0
    assert groups < 48 and syncs < 2 * groups, (groups, syncs)


def test_a_failed_glint_db_fsync_is_a_503_not_an_answer(api, monkeypatch):
    assert api.post(register_body(), role="brand").status_code == 201

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("glint.walsync.os.fsync", failing)
    r = api.post(service(0), role="brand")
    assert r.status_code == 503, r.get_json()
    assert "durable" in r.get_json()["error"]
