"""Schema 1 ledgers (stored leaf hashes and level-1 nodes, digest-keyed blobs) upgrade to schema 2 on open."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from glint.errors import LedgerError
from glint.ledger import Ledger, merkle, verify_inclusion

from .conftest import populate


def _downgrade_to_v1(path) -> None:
    """Rewrite a schema-2 file into the schema-1 layout (what glint wrote before)."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT idx, item_id, seq, leaf, scan FROM leaves ORDER BY idx").fetchall()
    db.executescript("""
        DROP INDEX leaves_by_item; DROP TABLE leaves; DROP TABLE scans;
        CREATE TABLE leaves(idx INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, seq INTEGER NOT NULL,
                            hash BLOB NOT NULL, leaf BLOB NOT NULL);
        CREATE INDEX leaves_by_item ON leaves(item_id, seq);
        CREATE TABLE blobs(digest BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    """)
    cr = merkle.CompactRange()
    for idx, item_id, seq, leaf, scan in rows:
        lh = merkle.leaf_hash(leaf)
        db.execute("INSERT INTO leaves VALUES(?,?,?,?,?)", (idx, item_id, seq, lh, leaf))
        if scan is not None:
            db.execute("INSERT OR IGNORE INTO blobs VALUES(?,?)", (hashlib.sha256(scan).digest(), scan))
        for lv, ix, h in cr.append(lh):
            if lv == 1:
                db.execute("INSERT INTO nodes VALUES(?,?,?)", (lv, ix, h))
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.commit()
    db.close()


def test_schema_1_is_upgraded_by_a_writer(sqlite_ledger_path, keys):
    ledger_path = sqlite_ledger_path
    with Ledger.open(ledger_path, keys=keys, durable=False) as led:
        items = populate(led, 3, 2)
        note = led.checkpoint()
        size, root = led.size, led.root()
        scan_digest = led.event(size - 1).data["scan"]
    _downgrade_to_v1(ledger_path)
    with pytest.raises(LedgerError, match="schema 1"):
        Ledger.open(ledger_path, readonly=True)
    with Ledger.open(ledger_path, keys=keys) as led:
        assert led.size == size and led.root() == root
        assert led.verify().ok
        assert led.scan_bytes(scan_digest) == f"scan-{items[-1]}-1".encode()
        p = led.prove(4, size)
        verify_inclusion(p.leaf_hash, 4, size, p.hashes, root)
        led.record_verify(items[0], "pass")
        assert led.checkpoint() != note  # consistent with the checkpoint signed before the upgrade
    with Ledger.open(ledger_path, readonly=True) as led:
        assert led.verify().ok
