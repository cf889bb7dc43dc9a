"""The server's idempotency records: which Idempotency-Key produced which ledger event.

Table ``idempotency`` in the serving host's glint.db. A key moves ``pending`` (written
before the ledger append) -> ``done`` (with the event's index and leaf hash). A key
left ``pending`` by a crash between the two is reconciled on the next request with
that key: if the item's log already holds the same event (kind, time, data), the key
is bound to it instead of appending again, so a retried upload is never recorded twice.
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
