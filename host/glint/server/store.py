"""The server's idempotency records: which Idempotency-Key produced which ledger event.

A SQLite ledger keeps them itself (``keys_in_ledger``): table ``upload_keys`` of ledger.db,
written in the same commit as the event a key names (glint.ledger.store, ``Batch.keys``), so
a key exists exactly when its event does and nothing is pending.

Otherwise (a PostgreSQL ledger): table ``idempotency`` in the serving host's glint.db. A key
moves ``pending`` (written before the ledger append) -> ``done`` (with the event's index and
leaf hash). A key left ``pending`` by a crash between the two is reconciled on the next
request with that key: if the item's log already holds the same event (kind, time, data),
the key is bound to it instead of appending again, so a retried upload is never recorded
twice. A server that moves to ledger-kept keys takes the ``done`` ones over at start
(``adopt``); the ``pending`` ones stay in glint.db and are still looked up and reconciled
there.
"""

from __future__ import annotations

import sqlite3
import time as _time
from dataclasses import dataclass
from pathlib import Path

from glint.db import connect as db_connect
from glint.errors import LedgerError

MAX_KEY_LEN = 128
GET_MANY = 500  # keys per look-up query (SQLite's variable limit is far above)

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency(
    key TEXT PRIMARY KEY,
    body_hash BLOB NOT NULL,
    state TEXT NOT NULL,            -- pending | done
    idx INTEGER,
    leaf_hash BLOB,
    created REAL NOT NULL,
    done_at REAL);
"""


def connect(path: str | Path):
    """Open (creating) glint.db (a file or a PostgreSQL URL) through glint.db.connect;
    LedgerError when the database cannot be opened."""
    try:
        return db_connect(path)
    except sqlite3.DatabaseError as e:
        raise LedgerError(f"cannot open {path}: {e}") from None


@dataclass(frozen=True)
class KeyRecord:
    key: str
    body_hash: bytes
    state: str
    idx: int | None
    leaf_hash: bytes | None


class IdempotencyStore:
    """Idempotency keys of POST /v1/events (used from the server's ledger thread only)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        db.executescript(SCHEMA)

    def get(self, key: str) -> KeyRecord | None:
        row = self.db.execute("SELECT key, body_hash, state, idx, leaf_hash FROM idempotency WHERE key = ?",
                              (key,)).fetchone()
        return KeyRecord(*row) if row else None

    def get_many(self, keys: list[str]) -> dict[str, KeyRecord]:
        """The records of ``keys`` that exist (one query per GET_MANY keys)."""
        out: dict[str, KeyRecord] = {}
        for i in range(0, len(keys), GET_MANY):
            part = keys[i:i + GET_MANY]
            for row in self.db.execute("SELECT key, body_hash, state, idx, leaf_hash FROM idempotency WHERE key IN "
                                       f"({','.join('?' * len(part))})", part):
                out[row[0]] = KeyRecord(*row)
        return out

    def begin_many(self, pairs: list[tuple[str, bytes]]) -> None:
        """``begin`` for several (key, body hash) pairs in one statement."""
        now = _time.time()
        self.db.executemany("INSERT OR REPLACE INTO idempotency(key, body_hash, state, created) VALUES(?,?,?,?)",
                            [(k, h, "pending", now) for k, h in pairs])

    def finish_many(self, done: list[tuple[str, int, bytes]]) -> None:
        """``finish`` for several (key, index, leaf hash) in one statement."""
        now = _time.time()
        self.db.executemany("UPDATE idempotency SET state='done', idx=?, leaf_hash=?, done_at=? WHERE key=?",
                            [(idx, h, now, k) for k, idx, h in done])

    def begin(self, key: str, body_hash: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO idempotency(key, body_hash, state, created) VALUES(?,?,?,?)",
                        (key, body_hash, "pending", _time.time()))

    def finish(self, key: str, idx: int, leaf_hash: bytes) -> None:
        self.db.execute("UPDATE idempotency SET state='done', idx=?, leaf_hash=?, done_at=? WHERE key=?",
                        (idx, leaf_hash, _time.time(), key))

    def forget(self, key: str) -> None:
        self.db.execute("DELETE FROM idempotency WHERE key = ? AND state = 'pending'", (key,))

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM idempotency WHERE state='done'").fetchone()[0]

    def adopt(self, ledger_store) -> bool:
        """Move the ``done`` keys into ``ledger_store`` (a store with ``upload_keys``): copied in one
        durable ledger commit, then deleted here (a crash between leaves them in both: the ledger's
        copy is read first). True when ``pending`` keys are left here (looked up after the ledger's)."""
        rows = self.db.execute("SELECT key, body_hash, idx, leaf_hash FROM idempotency WHERE state='done'").fetchall()
        if rows:
            ledger_store.put_upload_keys([tuple(r) for r in rows])
            self.db.execute("DELETE FROM idempotency WHERE state='done'")
        return self.db.execute("SELECT 1 FROM idempotency LIMIT 1").fetchone() is not None


def lookup(ledger_store, keystore: IdempotencyStore, keys: list[str], in_ledger: bool,
           legacy: bool) -> dict[str, KeyRecord]:
    """The records of ``keys`` that exist: from the ledger (``in_ledger``), then, with ``legacy``
    (pending keys left in glint.db by an earlier server), glint.db for the rest; else glint.db."""
    if not in_ledger:
        return keystore.get_many(keys)
    out = {k: KeyRecord(k, h, "done", idx, lh) for k, (h, idx, lh) in ledger_store.get_upload_keys(keys).items()}
    if legacy:
        rest = [k for k in keys if k not in out]
        if rest:
            out.update(keystore.get_many(rest))
    return out
