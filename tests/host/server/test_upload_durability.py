"""What an upload's answer means now that glint.db's commits are fsynced behind the ledger thread
(glint.server.uploads, glint.walsync.WalSync owe/flush) and a SQLite ledger keeps the idempotency
keys in its own commit (docs/api.md, "Durability"): the event and its key are on disk in ledger.db;
an upload with a signed scan also waits for glint.db's fsync (its acceptance); a scan-less one's
quota charge is committed, fsynced behind; a failing disk answers 503.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from softdevice import ITEM, NOW, enroll_body, register_body

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


def test_a_scan_upload_is_answered_only_once_glint_db_is_on_disk(api, slow_disk, device, coating):
    ws = walsync(api)
    assert ws is not None  # a SQLite glint.db: its commits are fsynced behind the ledger thread
    assert api.post(register_body(), role="brand").status_code == 201
    r = api.post(enroll_body(device, coating))
    assert r.status_code == 201, r.get_json()
    # the scan's acceptance (counter, nonce) was fsynced before the answer: nothing owed or in flight
    assert not ws._owed and ws.done == ws.asked > 0, (ws.asked, ws.done)


def test_a_scanless_upload_and_its_key_are_one_ledger_commit(api, slow_disk, monkeypatch):
    """No pending key and no glint.db fsync before the append: the key is written by the ledger commit
    that stores the event (ledger.db, fsynced), and the answer does not wait for glint.db's disk."""
    ws = walsync(api)
    assert api.post(register_body(), role="brand").status_code == 201
    seen = []
    real = Ledger.append_group

    def watched(self, specs, keys=None):
        seen.append(keys)
        return real(self, specs, keys=keys)

    monkeypatch.setattr(Ledger, "append_group", watched)
    waits = []
    real_wait = type(ws).wait
    monkeypatch.setattr(type(ws), "wait", lambda self, ticket: (waits.append(ticket), real_wait(self, ticket)))
    r = api.post(service(0), role="brand", idem="svc-0")
    assert r.status_code == 201, r.get_json()
    assert waits == []  # nothing waited for glint.db's disk on the way (its fsync is asked behind)
    (key, digest), = seen[-1]
    assert key.endswith(":svc-0")
    stored, legacy = _worker(api).call(lambda c: (c.ledger_keys and c.ledger.store.get_upload_keys([key]),
                                                  c.keystore.get(key)))
    assert stored[key][1] == r.get_json()["index"] and legacy is None  # in ledger.db, none in glint.db
    again = api.post(service(0), role="brand", idem="svc-0")
    assert again.status_code == 200 and again.get_json()["duplicate"] and again.get_json()["index"] == r.get_json()["index"]


def test_concurrent_uploads_share_glint_db_fsyncs(api, slow_disk):
    """8 clients at once: scan-less uploads leave glint.db's fsync to the idle hook, so glint.db
    sees fewer fsyncs than groups."""
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
    assert groups < 48 and syncs <= groups, (groups, syncs)


def test_a_failed_glint_db_fsync_is_a_503_not_an_answer(api, monkeypatch, device, coating):
    assert api.post(register_body(), role="brand").status_code == 201

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("glint.walsync.os.fsync", failing)
    r = api.post(enroll_body(device, coating))  # waits for glint.db's fsync: it failed
    assert r.status_code == 503, r.get_json()
    assert "durable" in r.get_json()["error"]
    r = api.post(service(0), role="brand")  # and nothing more is taken once glint.db's disk failed
    assert r.status_code == 503, r.get_json()
    assert "durable" in r.get_json()["error"]
