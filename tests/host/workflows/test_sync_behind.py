"""A live scan's acceptance is fsynced while the scan is matched (Registry.sync_behind), and
HostSession.process records nothing before it is durable (a slow disk, a failing one)."""

from __future__ import annotations

import os
import sqlite3
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

    monkeypatch.setattr("glint.registry.os.fsync", slow_fsync)
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

    monkeypatch.setattr("glint.registry.os.fsync", failing_fsync)
    size0 = host.ledger.size
    checked = scan(host, device, probes, size)
    with pytest.raises(LedgerError, match="cannot make glint.db-wal durable: .*Input/output error"):
        host.process(checked, item=ITEM)
    assert host.ledger.size == size0
