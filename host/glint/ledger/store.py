"""Ledger storage: a small interface (``Store``) and its embedded SQLite implementation.

The ledger logic (glint.ledger.log) talks only to ``Store``; a PostgreSQL backend
implements the same methods (one transaction per ``commit``; ``BYTEA`` for blobs)
without touching callers. Everything a batch writes goes in one atomic, durable
commit: leaves, tree-hash cache nodes, per-item chain heads, scan blobs.

Tree-hash cache: leaf hashes (level 0) live in the ``leaves`` rows, interior
perfect-subtree hashes in ``nodes(level, idx)``; together they answer any proof
with O(log n) point look-ups.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from glint.errors import LedgerError

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
# Larger pages keep the B-trees of 32-byte hashes shallow; set before the first table.
PAGE_SIZE = 8192
# Item id -> row id cache of the writer (bounded; a miss costs one upsert).
MAX_CACHED_IDS = 200_000


@dataclass(frozen=True)
class LeafRow:
    """One stored log entry: index, item id, per-item sequence, leaf hash, leaf bytes."""

    idx: int
    item: str
    seq: int
    hash: bytes
    leaf: bytes


@dataclass(frozen=True)
class ItemHead:
    """The head of an item's hash chain: last sequence number, leaf hash and log index."""

    item: str
    seq: int
    head: bytes
    idx: int


@dataclass(frozen=True)
class CheckpointRow:
    size: int
    root: bytes
    note: str
    time: int


@dataclass
class Batch:
    """Everything one append commit writes; the store applies it atomically."""

    leaves: list[LeafRow] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    heads: dict[str, ItemHead] = field(default_factory=dict)
    blobs: dict[bytes, bytes] = field(default_factory=dict)
    new_size: int = 0


class Store(ABC):
    """Storage behind the ledger. Implementations must make ``commit`` atomic and durable."""

    @abstractmethod
    def size(self) -> int:
        """Number of leaves acknowledged by the last commit (the stored tree size)."""

    @abstractmethod
    def commit(self, batch: Batch) -> None:
        """Write a batch in one durable transaction; on error nothing of it is stored."""

    @abstractmethod
    def leaf(self, idx: int) -> LeafRow | None: ...

    @abstractmethod
    def leaves(self, start: int = 0, stop: int | None = None) -> Iterator[LeafRow]:
        """Stored rows in index order (as stored: verification looks for gaps itself)."""

    @abstractmethod
    def item_leaves(self, item: str) -> list[LeafRow]:
        """Rows of one item in sequence order."""

    @abstractmethod
    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        """Tree-hash cache look-up: (level, index) -> hash; level 0 are leaf hashes."""

    @abstractmethod
    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        """Every interior node of the cache (level >= 1), for verification."""

    @abstractmethod
    def head(self, item: str) -> ItemHead | None: ...

    @abstractmethod
    def heads(self) -> Iterator[ItemHead]: ...

    @abstractmethod
    def items(self, prefix: str = "") -> list[str]: ...

    @abstractmethod
    def blob(self, digest: bytes) -> bytes | None: ...

    @abstractmethod
    def add_checkpoint(self, row: CheckpointRow) -> None: ...

    @abstractmethod
    def checkpoints(self) -> list[CheckpointRow]:
        """Every signed checkpoint, by increasing size."""

    @abstractmethod
    def latest_checkpoint(self) -> CheckpointRow | None: ...

    @abstractmethod
    def meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items(
    id INTEGER PRIMARY KEY, item TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL, head BLOB NOT NULL, idx INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leaves(
    idx INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    hash BLOB NOT NULL, leaf BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS leaves_by_item ON leaves(item_id, seq);
CREATE TABLE IF NOT EXISTS nodes(
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY(level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs(digest BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints(
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, time INTEGER NOT NULL);
"""

_LEAF_SELECT = "SELECT l.idx, i.item, l.seq, l.hash, l.leaf FROM leaves l JOIN items i ON i.id = l.item_id"


class SQLiteStore(Store):
    """Embedded default store: one SQLite file in WAL mode, FULL sync, one writer.

    ``durable=False`` (tests, benchmarks of the upper bound) uses synchronous=NORMAL:
    still atomic and crash-safe for the process, but a power cut may lose the last commits.
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False, durable: bool = True):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise LedgerError(f"no ledger at {self.path}", "append an event or pass --ledger")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
                self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=" + ("FULL" if durable else "NORMAL"))
                self.db.executescript(_SCHEMA)
                if self.meta("schema") is None:
                    self.set_meta("schema", str(SCHEMA_VERSION))
            self.db.execute("PRAGMA foreign_keys=OFF")
            schema = self.meta("schema")
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"cannot open ledger {self.path}: {e}") from None
        if schema != str(SCHEMA_VERSION):
            raise LedgerError(f"ledger {self.path} has schema {schema}, this glint reads {SCHEMA_VERSION}")
        self._item_ids: dict[str, int] = {}

    # -- writes

    def commit(self, batch: Batch) -> None:
        if self.readonly:
            raise LedgerError("ledger is open read-only")
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            ids = {}
            known = self._item_ids
            db.executemany(
                "UPDATE items SET seq = ?, head = ?, idx = ? WHERE id = ?",
                [(h.seq, h.head, h.idx, known[it]) for it, h in batch.heads.items() if it in known],
            )
            for item, head in batch.heads.items():
                if item in known:
                    ids[item] = known[item]
                    continue
                cur = db.execute(
                    "INSERT INTO items(item, seq, head, idx) VALUES(?,?,?,?) "
                    "ON CONFLICT(item) DO UPDATE SET seq=excluded.seq, head=excluded.head, idx=excluded.idx "
                    "RETURNING id",
                    (item, head.seq, head.head, head.idx),
                )
                ids[item] = cur.fetchone()[0]
            db.executemany(
                "INSERT INTO leaves(idx, item_id, seq, hash, leaf) VALUES(?,?,?,?,?)",
                [(r.idx, ids[r.item], r.seq, r.hash, r.leaf) for r in batch.leaves],
            )
            if batch.nodes:
                db.executemany("INSERT INTO nodes(level, idx, hash) VALUES(?,?,?)", batch.nodes)
            if batch.blobs:
                db.executemany("INSERT OR IGNORE INTO blobs(digest, data) VALUES(?,?)", batch.blobs.items())
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('size', ?)", (str(batch.new_size),))
            db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise LedgerError(f"ledger commit failed: {e}", "is the disk full or another writer running?") from None
        if len(self._item_ids) > MAX_CACHED_IDS:
            self._item_ids.clear()
        self._item_ids.update(ids)

    def add_checkpoint(self, row: CheckpointRow) -> None:
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO checkpoints(size, root, note, time) VALUES(?,?,?,?)",
                (row.size, row.root, row.note, row.time),
            )

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    def _tx(self):
        db = self.db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    # -- reads

    def size(self) -> int:
        v = self.meta("size")
        return int(v) if v is not None else 0

    def leaf(self, idx: int) -> LeafRow | None:
        row = self.db.execute(_LEAF_SELECT + " WHERE l.idx = ?", (idx,)).fetchone()
        return LeafRow(*row) if row else None

    def leaves(self, start: int = 0, stop: int | None = None) -> Iterator[LeafRow]:
        stop = (1 << 62) if stop is None else stop
        # LEFT JOIN so that a row whose item was tampered with still shows up.
        cur = self.db.execute(
            "SELECT l.idx, coalesce(i.item, ''), l.seq, l.hash, l.leaf FROM leaves l "
            "LEFT JOIN items i ON i.id = l.item_id WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx",
            (start, stop),
        )
        for row in cur:
            yield LeafRow(*row)

    def item_leaves(self, item: str) -> list[LeafRow]:
        cur = self.db.execute(_LEAF_SELECT + " WHERE i.item = ? ORDER BY l.seq", (item,))
        return [LeafRow(*r) for r in cur]

    def get_nodes(self, keys):
        # Point look-ups on the primary keys: a proof needs O(log n) of them, and
        # SQLite answers each from the index in microseconds (a row-value IN list is
        # planned as a scan, which is why this is not one statement).
        out = {}
        db = self.db
        for lv, i in keys:
            if lv == 0:
                row = db.execute("SELECT hash FROM leaves WHERE idx = ?", (i,)).fetchone()
            else:
                row = db.execute("SELECT hash FROM nodes WHERE level = ? AND idx = ?", (lv, i)).fetchone()
            if row is not None:
                out[(lv, i)] = row[0]
        return out

    def iter_nodes(self):
        yield from self.db.execute("SELECT level, idx, hash FROM nodes ORDER BY level, idx")

    def head(self, item: str) -> ItemHead | None:
        row = self.db.execute("SELECT item, seq, head, idx FROM items WHERE item = ?", (item,)).fetchone()
        return ItemHead(*row) if row else None

    def heads(self):
        for row in self.db.execute("SELECT item, seq, head, idx FROM items ORDER BY item"):
            yield ItemHead(*row)

    def items(self, prefix: str = "") -> list[str]:
        cur = self.db.execute(
            "SELECT item FROM items WHERE substr(item, 1, ?) = ? ORDER BY item", (len(prefix), prefix)
        )
        return [r[0] for r in cur]

    def blob(self, digest: bytes) -> bytes | None:
        row = self.db.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def checkpoints(self) -> list[CheckpointRow]:
        cur = self.db.execute("SELECT size, root, note, time FROM checkpoints ORDER BY size")
        return [CheckpointRow(*r) for r in cur]

    def latest_checkpoint(self) -> CheckpointRow | None:
        row = self.db.execute("SELECT size, root, note, time FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return CheckpointRow(*row) if row else None

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
