"""The server's idempotency records: which Idempotency-Key produced which ledger event.

A SQLite ledger keeps them itself (``LedgerKeys``): table ``upload_keys`` of ledger.db,
written in the same commit as the event a key names (glint.ledger.store, ``Batch.keys``), so
a key exists exactly when its event does and nothing is pending; an in-memory filter of the
stored keys (``KeyFilter``) spares the look-up of a group whose keys are all new.

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


class KeyFilter:
    """A Bloom filter of idempotency keys (16 bits and 4 probes a key: about 0.24 % false
    positives at capacity): ``may_hold(key)`` is False only for a key never added. Positions come
    from Python's own string hash (per process: the filter is never stored)."""

    BITS_PER_KEY = 16
    MIN_CAPACITY = 1 << 16

    def __init__(self, capacity: int = 0):
        self.capacity = max(self.MIN_CAPACITY, int(capacity))
        self.m = self.BITS_PER_KEY * self.capacity
        self.bits = bytearray(self.m // 8 + 1)
        self.n = 0  # keys added

    def add(self, key: str) -> None:
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        a, b, m, bits = h & 0xFFFFFFFF, (h >> 32) | 1, self.m, self.bits
        for p in (a % m, (a + b) % m, (a + 2 * b) % m, (a + 3 * b) % m):
            bits[p >> 3] |= 1 << (p & 7)
        self.n += 1

    def may_hold(self, key: str) -> bool:
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        a, b, m, bits = h & 0xFFFFFFFF, (h >> 32) | 1, self.m, self.bits
        for p in (a % m, (a + b) % m, (a + 2 * b) % m, (a + 3 * b) % m):
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True


class LedgerKeys:
    """The idempotency keys a ledger store with ``upload_keys`` keeps in its commits, as the group
    commit reads them (``get_many``, KeyRecords in state ``done``), with a KeyFilter of every stored
    key in front: a group whose keys are all new (every upload but a retry) costs no look-up.
    Built on the ledger thread at start: glint.db's done keys are taken over (``adopt``), every
    stored key read into the filter (2.6 s of CPU and 8 MB per million keys). ``will_store(keys)`` before
    the commit that may store them (a key in the filter that was not stored is only a false
    positive: one look-up). With pending keys left in glint.db (``legacy``), every group is
    looked up in ledger.db and then glint.db."""

    def __init__(self, ledger_store, keystore: IdempotencyStore):
        self.store = ledger_store
        self.keystore = keystore
        self.legacy = keystore.adopt(ledger_store)
        self.filter = self._load(0)

    def _load(self, extra: int) -> KeyFilter:
        f = KeyFilter(4 * (self.store.upload_key_count() + extra))
        add = f.add
        for k in self.store.upload_key_names():  # streamed: a million keys are never one list
            add(k)
        return f

    def get_many(self, keys: list[str]) -> dict[str, KeyRecord]:
        """The records of ``keys`` that exist (the ledger's, then glint.db's pending ones if any)."""
        if not self.legacy:
            may = self.filter.may_hold
            keys = [k for k in keys if may(k)]
            if not keys:
                return {}
        out = {k: KeyRecord(k, h, "done", idx, lh) for k, (h, idx, lh) in self.store.get_upload_keys(keys).items()}
        if self.legacy:
            rest = [k for k in keys if k not in out]
            if rest:
                out.update(self.keystore.get_many(rest))
        return out

    def will_store(self, keys: list[str]) -> None:
        """``keys`` go into the next ledger commit (called before it: never a stored key outside the filter)."""
        f = self.filter
        if f.n + len(keys) > f.capacity:  # full: rebuilt from the stored keys, four times larger
            f = self.filter = self._load(len(keys))
        for k in keys:
            f.add(k)
