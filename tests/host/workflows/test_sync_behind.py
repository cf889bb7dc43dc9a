"""A live scan's acceptance is fsynced while the scan is matched (Registry.sync_behind), and
HostSession.process records nothing before it is durable (a slow disk, a failing one)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest
from softdevice import ITEM, SoftDevice, sim_coating

from glint.checks import check_scan
from glint.errors import LedgerError
from glint.workflows import HostSession


@pytest.fixture(scope="module")
def coating():
    return sim_coating(7)


@pytest.fixture
def session(tmp_path, coating):
    host = HostSession(tmp_path / "home")
    device = SoftDevice(5)
    host.registry.add_device(device.device_id, device.pub, "sim", "0.4.0")
    ref, probes, size = coating
    host.db.add(ITEM, ref)
    host.ledger.register_item(ITEM, brand="acme")
    yield host, device, probes, size
    host.close()


def scan(host, device, probes, size, k=0):
    nonce = host.registry.issue_nonce(device.device_id)
    return check_scan(host.registry, device.sign(probes[k], *size, nonce=nonce), sync_later=True)


def test_the_ledger_records_a_scan_only_once_its_acceptance_is_durable(session, monkeypatch):
    host, device, probes, size = session
    real_fsync = os.fsync

    def slow_fsync(fd):  # a slow disk: the fsync outlasts the matching
        time.sleep(0.3)
        real_fsync(fd)

    monkeypatch.setattr("glint.walsync.os.fsync", slow_fsync)
    ws = host.registry._walsync
    seen = []
    record = host.ledger.record_verify

    def watched(*a, **kw):
        seen.append((ws.done, host.registry._ticket))
        return record(*a, **kw)

    monkeypatch.setattr(host.ledger, "record_verify", watched)
    checked = scan(host, device, probes, size)
    assert host.registry._ticket > ws.done  # committed, its fsync still running
    assert host.registry.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for other commits
    out = host.process(checked, item=ITEM)
    assert out.passed and out.ledger_index is not None
    done, ticket = seen[0]
    assert done >= ticket > 0  # the acceptance was durable before the ledger recorded the scan
    assert ws.syncs >= 1
    path = host.home.db_path
    host.close()  # the outcome (synced later) is on disk once the session closes
    row = sqlite3.connect(path).execute("SELECT result, ledger_index FROM scans WHERE id=?",
                                        (checked.scan_id,)).fetchone()
    assert row == ("pass", out.ledger_index)


def test_a_failed_fsync_records_nothing(session, monkeypatch):
    host, device, probes, size = session

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("glint.walsync.os.fsync", failing_fsync)
    size0 = host.ledger.size
    checked = scan(host, device, probes, size)
    with pytest.raises(LedgerError, match="cannot make glint.db-wal durable: .*Input/output error"):
        host.process(checked, item=ITEM)
    assert host.ledger.size == size0


def test_the_certificate_is_saved_only_once_the_verify_event_is_durable(session, monkeypatch):
    """The verify event is fsynced while its certificate is built (Ledger.sync_later); the certificate
    file, the outcome note and process()'s answer wait for that fsync."""
    host, device, probes, size = session
    real_fsync = os.fsync

    def slow_ledger_fsync(fd):  # a slow disk under the ledger: the fsync outlasts the certificate's build
        if threading.current_thread().name == "glint-ledger-sync":
            time.sleep(0.3)
        real_fsync(fd)

    monkeypatch.setattr("glint.walsync.os.fsync", slow_ledger_fsync)
    store = host.ledger.store
    seen = []
    issue, save = host.ledger.issue_certificate, host.save_certificate

    def watched_issue(*a, **kw):
        seen.append(("issue", store._walsync.done, store._ticket))
        return issue(*a, **kw)

    staged = []

    def watched_save(*a, **kw):
        seen.append(("save", store._walsync.done, store._ticket))
        tmp, final = kw["staged"]  # written while the fsync ran, under a temporary name only
        staged.append((os.path.exists(tmp), os.path.exists(final)))
        return save(*a, **kw)

    monkeypatch.setattr(host.ledger, "issue_certificate", watched_issue)
    monkeypatch.setattr(host, "save_certificate", watched_save)
    out = host.process(scan(host, device, probes, size), item=ITEM)
    assert out.passed and out.cert_path is not None and out.cert_path.exists()
    (_, done_i, ticket_i), (_, done_s, ticket_s) = seen
    assert ticket_i == ticket_s > done_i  # the certificate was built while the event's fsync ran ...
    assert done_s >= ticket_s  # ... and saved only once it was done
    assert staged == [(True, False)]  # written meanwhile under a temporary name, named once durable
    assert not any(host.home.certs_dir.rglob("*.tmp"))
    assert store._walsync.done >= store._ticket
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for every other commit
    a = host.ledger.service(ITEM, "inspected")  # outside sync_later: durable on return
    assert a.index == out.ledger_index + 1 and store._ticket == ticket_s


def test_a_failed_ledger_fsync_hands_out_nothing(session, monkeypatch):
    host, device, probes, size = session
    real_fsync = os.fsync

    def failing_ledger_fsync(fd):
        if threading.current_thread().name == "glint-ledger-sync":
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr("glint.walsync.os.fsync", failing_ledger_fsync)
    checked = scan(host, device, probes, size)
    with pytest.raises(LedgerError, match="cannot make ledger.db-wal durable: .*Input/output error"):
        host.process(checked, item=ITEM)
    # the certificate was written under a temporary name while the fsync ran: removed, nothing named
    assert not host.home.certs_dir.exists() or not any(host.home.certs_dir.rglob("*.cose"))
    assert not host.home.certs_dir.exists() or not any(host.home.certs_dir.rglob("*.tmp"))
    row = host.registry.conn.execute("SELECT result, ledger_index FROM scans WHERE id=?",
                                     (checked.scan_id,)).fetchone()
    assert row == (None, None)  # no outcome noted for a scan whose event may be lost
    with pytest.raises(LedgerError, match="durable"):  # and nothing later is called durable either
        host.process(scan(host, device, probes, size, 1), item=ITEM)


def test_notes_nothing_waits_for_start_no_fsync_of_their_own(session):
    """A live scan's nonce and its outcome note are lazy sync_later commits: the acceptance's fsync
    (or the next wait_durable / close) covers them."""
    host, device, probes, size = session
    reg = host.registry
    ws = reg._walsync
    asked = ws.asked
    nonce = reg.issue_nonce(device.device_id, sync_later=True)
    assert ws.asked == asked and ws._owed
    checked = check_scan(reg, device.sign(probes[0], *size, nonce=nonce), sync_later=True)
    assert ws.asked == asked + 1 and not ws._owed  # one fsync covers the nonce and the acceptance
    host.process(checked, item=ITEM)
    assert ws.asked == asked + 1 and ws._owed  # the outcome note waits for the next fsync
    reg.wait_durable()
    assert ws.asked == asked + 2 and ws.done == ws.asked and not ws._owed
