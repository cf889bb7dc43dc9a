"""Ledger storage: a small interface (``Store``) and its embedded SQLite implementation.

The ledger logic (glint.ledger.log) talks only to ``Store``; a PostgreSQL backend
implements the same methods (one transaction per ``commit``; ``BYTEA`` for blobs)
without touching callers. Everything a batch writes goes in one atomic, durable
commit: leaves, tree-hash cache nodes, per-item chain heads, scan blobs.

Tree-hash cache: interior perfect-subtree hashes of level >= 2 live in
``nodes(level, idx)``; leaf hashes (level 0) and level-1 nodes are derived on demand
from the leaf bytes (one range read of two rows), which halves the cache and drops a
stored copy of what the leaves already say. Any proof still costs O(log n) look-ups.

Scan bytes live in their event's row; ``scans(key, idx)`` finds them by digest
(key = the digest's first 8 bytes; a look-up re-hashes the candidates, so a prefix
collision cannot return the wrong bytes).

Upload keys (SQLite only, ``Store.upload_keys``): the HTTP server's idempotency keys
(glint.server.uploads) are written in the same commit as the events they name
(``Batch.keys``; table ``upload_keys(key, body_hash, idx, leaf_hash)``), so a key is
recorded exactly when its event is: no pending state, no second database's commit and
fsync before the append. They are the server's bookkeeping, not part of the log (not
hashed, not verified, not copied by a sync).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from glint.errors import LedgerError
from glint.walsync import WalSync

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 10.0
# Larger pages keep the B-trees shallow; set before the first table.
PAGE_SIZE = 8192
# Page cache of a connection (KiB): the right edge of every B-tree plus the scans
# index stay hot, so a commit rarely reads a page back from disk.
CACHE_KIB = 65536
# WAL pages before an automatic checkpoint into the database file (SQLite's default,
# stated here): a small WAL is soon rewritten in place, and an fsync of rewritten blocks
# is cheaper than one of a growing file (4000 was measured slower for one-event commits).
WAL_AUTOCHECKPOINT_PAGES = 1000
# The lowest cache level stored; lower levels are recomputed from the leaves.
MIN_STORED_LEVEL = 2
# Item id -> row id cache of the writer (bounded; a miss costs one upsert).
MAX_CACHED_IDS = 200_000


@dataclass(frozen=True)
class LeafRow:
    """One stored log entry: index, item id, per-item sequence, leaf hash, leaf bytes, scan bytes."""

    idx: int
    item: str
    seq: int
    hash: bytes
    leaf: bytes
    scan: bytes | None = None
    kind: str | None = None  # PostgreSQL's kind column (glint.ledger.pgstore), checked by verify; else None


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
    """Everything one append commit writes; the store applies it atomically.

    Plain tuples, built once per event on the hot path:
    ``leaves``: (idx, item, seq, leaf bytes, scan bytes or None, scan digest or None, event kind);
    ``nodes``: (level, idx, hash) of every completed subtree (the store keeps what it needs);
    ``heads``: item -> (seq, leaf hash, idx) of its last event;
    ``reveals``: (idx, reveal bytes) of the events with sealed values (glint.ledger.sealed);
    ``keys``: (upload key, body hash, idx, leaf hash) of the events an idempotency key names
    (only on a store with ``upload_keys``).
    """

    leaves: list[tuple] = field(default_factory=list)
    reveals: list[tuple[int, bytes]] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    heads: dict[str, tuple[int, bytes, int]] = field(default_factory=dict)
    new_size: int = 0
    keys: list[tuple[str, bytes, int, bytes]] = field(default_factory=list)


class Store(ABC):
    """Storage behind the ledger. Implementations must make ``commit`` atomic and durable.

    ``shared``: other processes may append to the same log (PostgreSQL); the ledger then
    stages and commits inside ``sequenced(since)``, which yields the size acknowledged so
    far and the rows from ``since`` up to it (the writer catches up on what others appended
    before it stages its own events). A store with one writer (SQLite, under its lock file)
    yields (None, None): nothing to catch up.
    """

    shared = False
    upload_keys = False  # stores the server's idempotency keys in its commits (Batch.keys, get_upload_keys)

    def get_upload_keys(self, keys: Sequence[str]) -> dict[str, tuple[bytes, int, bytes]]:
        """key -> (body hash, idx, leaf hash) of the stored ``keys`` (a store with ``upload_keys``)."""
        raise LedgerError("this ledger store does not keep upload keys")

    def upload_key_names(self) -> Iterator[str]:
        """Every stored upload key (a store with ``upload_keys``)."""
        raise LedgerError("this ledger store does not keep upload keys")

    def upload_key_count(self) -> int:
        """How many upload keys are stored (0 on a store without ``upload_keys``)."""
        return 0

    def put_upload_keys(self, rows: Sequence[tuple[str, bytes, int, bytes]]) -> None:
        """Store (key, body hash, idx, leaf hash) rows of keys recorded elsewhere before (durable;
        an existing key is kept)."""
        raise LedgerError("this ledger store does not keep upload keys")

    @contextlib.contextmanager
    def sequenced(self, since: int | None = None) -> Iterator[tuple[int | None, list[LeafRow] | None]]:
        """One append transaction holding the log's sequencer; yields (acknowledged size, the rows
        from ``since`` to it, or None when not fetched) -- (None, None): this process is the only
        writer. Ends committed and durable, or rolled back."""
        yield None, None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one consistent state (a full verification while others append)."""
        yield

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Commits inside may return before they are durable (a store that can: SQLiteStore fsyncs
        them on a helper thread); ``wait_deferred()`` waits for that. Default: each commit is
        durable when it returns, as outside."""
        yield

    def wait_deferred(self) -> None:
        """Return once every commit made inside ``deferred()`` is durable; LedgerError if it cannot be."""
        return None  # default: each was durable when it returned

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

    def item_leaf_range(self, item: str, lo: int, hi: int) -> list[LeafRow]:
        """Rows of one item with ``lo <= seq < hi``, in sequence order (backends may do better)."""
        return [r for r in self.item_leaves(item) if lo <= r.seq < hi]

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
    def reveals(self, idxs: Sequence[int]) -> dict[int, bytes]:
        """Stored reveals (glint.ledger.sealed) of the given log indexes: idx -> bytes (absent: none)."""

    @abstractmethod
    def reveal_range(self, start: int, stop: int) -> dict[int, bytes]:
        """Every stored reveal with ``start <= idx < stop`` (verification)."""

    @abstractmethod
    def set_reveal(self, idx: int, blob: bytes | None) -> None:
        """Replace (or, with None, drop: erasure) the reveal of one event; durable."""

    @abstractmethod
    def add_checkpoint(self, row: CheckpointRow) -> None:
        """Store a signed checkpoint, atomically. It need not be durable on its own (SQLiteStore
        does not fsync it): it covers leaves that already are, and one lost to a power cut is
        signed again byte for byte (origin, size, root; Ed25519 is deterministic)."""

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
    leaf BLOB NOT NULL, scan BLOB);
CREATE INDEX IF NOT EXISTS leaves_by_item ON leaves(item_id, seq);
CREATE TABLE IF NOT EXISTS scans(
    key INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY(key, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes(
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY(level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reveals(idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints(
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS upload_keys(
    key TEXT PRIMARY KEY, body_hash BLOB NOT NULL, idx INTEGER NOT NULL, leaf_hash BLOB NOT NULL) WITHOUT ROWID;
"""
GET_KEYS = 500  # upload keys per look-up query

_LEAF_SELECT = "SELECT l.idx, i.item, l.seq, l.leaf, l.scan FROM leaves l JOIN items i ON i.id = l.item_id"
_sha256 = hashlib.sha256


def scan_key(digest: bytes) -> int:
    """Index key of a scan digest: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(digest[:8], "big", signed=True)


def _row(idx, item, seq, leaf, scan) -> LeafRow:
    return LeafRow(idx, item, seq, _sha256(b"\x00" + leaf).digest(), leaf, scan)


class SQLiteStore(Store):
    """Embedded default store: one SQLite file in WAL mode, FULL sync, one writer.

    PRAGMAs of a writer: page_size=8192, journal_mode=WAL, synchronous=FULL (the WAL
    is fsynced at every commit: a returned commit survives a power cut),
    cache_size=-65536 (64 MiB), wal_autocheckpoint=1000. ``durable=False`` (tests,
    bulk imports) uses synchronous=NORMAL: still atomic and crash-safe for the
    process, but a power cut may lose the last commits.
    """

    def __init__(self, path: str | os.PathLike, readonly: bool = False, durable: bool = True,
                 check_same_thread: bool = True):
        self.path = Path(path)
        self.readonly = readonly
        self.durable = durable and not readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise LedgerError(f"no ledger at {self.path}", "append an event or pass --ledger")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                          check_same_thread=check_same_thread)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                          check_same_thread=check_same_thread)
                self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=" + ("FULL" if durable else "NORMAL"))
                self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
                old = self._schema_of_existing()
                if old == "1":
                    _migrate_v1(self.db)
                _create_schema(self.db)
                if self.meta("schema") is None:
                    self.set_meta("schema", str(SCHEMA_VERSION))
            self.db.execute(f"PRAGMA cache_size={-CACHE_KIB}")
            self.db.execute("PRAGMA foreign_keys=OFF")
            schema = self.meta("schema")
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"cannot open ledger {self.path}: {e}") from None
        if schema != str(SCHEMA_VERSION):
            hint = "open it once for writing (e.g. 'glint ledger checkpoint') to upgrade it" if schema == "1" else ""
            raise LedgerError(f"ledger {self.path} has schema {schema}, this glint reads {SCHEMA_VERSION}", hint)
        self._item_ids: dict[str, int] = {}
        self._walsync: WalSync | None = None  # once ``deferred()`` is first used
        self._defer = False
        self._ticket = 0
        # A ledger written before sealed values (no reveals table) is read as one with no reveals.
        self._has_reveals = self.db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'reveals'").fetchone() is not None
        self.upload_keys = not readonly  # its writer created the table (_SCHEMA)

    def _schema_of_existing(self) -> str | None:
        if not self.db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'meta'").fetchone():
            return None
        return self.meta("schema")

    # -- writes

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Commits inside are written with synchronous=NORMAL (to the WAL, no fsync) and the WAL is
        fsynced on a helper thread (glint.walsync) while the caller goes on; ``wait_deferred()``
        returns once that fsync is done. A durable store only (``durable=False`` syncs nothing)."""
        if not self.durable or self._defer:
            yield
            return
        if self._walsync is None:
            self._walsync = WalSync(self.path, name="glint-ledger-sync")
        self._defer = True
        try:
            yield
        finally:
            self._defer = False

    def wait_deferred(self) -> None:
        if self._walsync is not None and self._ticket:
            self._walsync.wait(self._ticket)

    def commit(self, batch: Batch) -> None:
        if not self._defer:
            return self._commit(batch)
        assert self._walsync is not None
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._commit(batch)
            self._ticket = self._walsync.ask()  # committed: its fsync is asked before anything else can fail
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def _commit(self, batch: Batch) -> None:
        if self.readonly:
            raise LedgerError("ledger is open read-only")
        db = self.db
        known = self._item_ids
        try:
            db.execute("BEGIN IMMEDIATE")
            ids = {}
            updates = []
            for item, (seq, head, idx) in batch.heads.items():
                rid = known.get(item)
                if rid is not None:
                    ids[item] = rid
                    updates.append((seq, head, idx, rid))
                    continue
                cur = db.execute(
                    "INSERT INTO items(item, seq, head, idx) VALUES(?,?,?,?) "
                    "ON CONFLICT(item) DO UPDATE SET seq=excluded.seq, head=excluded.head, idx=excluded.idx "
                    "RETURNING id",
                    (item, seq, head, idx),
                )
                ids[item] = cur.fetchone()[0]
            if updates:
                db.executemany("UPDATE items SET seq = ?, head = ?, idx = ? WHERE id = ?", updates)
            leaves = batch.leaves
            db.executemany("INSERT INTO leaves(idx, item_id, seq, leaf, scan) VALUES(?,?,?,?,?)",
                           [(r[0], ids[r[1]], r[2], r[3], r[4]) for r in leaves])
            scans = [(scan_key(r[5]), r[0]) for r in leaves if r[5] is not None]
            if scans:
                db.executemany("INSERT INTO scans(key, idx) VALUES(?,?)", scans)
            nodes = [n for n in batch.nodes if n[0] >= MIN_STORED_LEVEL]
            if nodes:
                db.executemany("INSERT INTO nodes(level, idx, hash) VALUES(?,?,?)", nodes)
            if batch.reveals:
                db.executemany("INSERT INTO reveals(idx, data) VALUES(?,?)", batch.reveals)
            if batch.keys:
                db.executemany("INSERT INTO upload_keys(key, body_hash, idx, leaf_hash) VALUES(?,?,?,?)", batch.keys)
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('size', ?)", (str(batch.new_size),))
            db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise LedgerError(f"ledger commit failed: {e}", "is the disk full or another writer running?") from None
        if len(known) > MAX_CACHED_IDS:
            known.clear()
        known.update(ids)

    def get_upload_keys(self, keys: Sequence[str]) -> dict[str, tuple[bytes, int, bytes]]:
        out: dict[str, tuple[bytes, int, bytes]] = {}
        if not self.upload_keys:
            return out
        db = self.db
        for i in range(0, len(keys), GET_KEYS):
            part = list(keys[i:i + GET_KEYS])
            q = "SELECT key, body_hash, idx, leaf_hash FROM upload_keys WHERE key IN (" + ",".join("?" * len(part)) + ")"
            for k, h, idx, lh in db.execute(q, part):
                out[k] = (h, idx, lh)
        return out

    def upload_key_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM upload_keys").fetchone()[0] if self.upload_keys else 0

    def upload_key_names(self) -> Iterator[str]:
        if self.upload_keys:
            for (k,) in self.db.execute("SELECT key FROM upload_keys"):
                yield k

    def put_upload_keys(self, rows: Sequence[tuple[str, bytes, int, bytes]]) -> None:
        if not self.upload_keys:
            raise LedgerError("ledger is open read-only")
        with self._tx():
            self.db.executemany("INSERT OR IGNORE INTO upload_keys(key, body_hash, idx, leaf_hash) VALUES(?,?,?,?)",
                                rows)

    def add_checkpoint(self, row: CheckpointRow) -> None:
        # Atomic but without its own fsync (one per certificate otherwise): the leaves it signs were
        # fsynced by their commit, the WAL keeps commit order (the next durable commit syncs it too),
        # and a process kill loses nothing (the OS holds the write). See Store.add_checkpoint.
        db = self.db
        relax = self.durable
        if relax:
            db.execute("PRAGMA synchronous=NORMAL")
        try:  # one statement: its own transaction (no BEGIN / COMMIT round trips)
            db.execute(
                "INSERT OR REPLACE INTO checkpoints(size, root, note, time) VALUES(?,?,?,?)",
                (row.size, row.root, row.note, row.time),
            )
        finally:
            if relax:
                db.execute("PRAGMA synchronous=FULL")

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    def _tx(self) -> "_Tx":
        return _Tx(self.db)

    # -- reads

    def size(self) -> int:
        v = self.meta("size")
        return int(v) if v is not None else 0

    def leaf(self, idx: int) -> LeafRow | None:
        row = self.db.execute(_LEAF_SELECT + " WHERE l.idx = ?", (idx,)).fetchone()
        return _row(*row) if row else None

    def leaves(self, start: int = 0, stop: int | None = None) -> Iterator[LeafRow]:
        stop = (1 << 62) if stop is None else stop
        # LEFT JOIN so that a row whose item was tampered with still shows up.
        cur = self.db.execute(
            "SELECT l.idx, coalesce(i.item, ''), l.seq, l.leaf, l.scan FROM leaves l "
            "LEFT JOIN items i ON i.id = l.item_id WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx",
            (start, stop),
        )
        for row in cur:
            yield _row(*row)

    def item_leaves(self, item: str) -> list[LeafRow]:
        cur = self.db.execute(_LEAF_SELECT + " WHERE i.item = ? ORDER BY l.seq", (item,))
        return [_row(*r) for r in cur]

    def item_leaf_range(self, item: str, lo: int, hi: int) -> list[LeafRow]:
        cur = self.db.execute(_LEAF_SELECT + " WHERE i.item = ? AND l.seq >= ? AND l.seq < ? ORDER BY l.seq",
                              (item, lo, hi))
        return [_row(*r) for r in cur]

    def get_nodes(self, keys):
        # Point look-ups on the primary keys: a proof needs O(log n) of them, and
        # SQLite answers each from the index in microseconds (a row-value IN list is
        # planned as a scan, which is why this is not one statement). Levels below
        # MIN_STORED_LEVEL come from the leaves: a level-1 node is one range read of
        # its two leaves.
        out = {}
        db = self.db
        for lv, i in keys:
            if lv >= MIN_STORED_LEVEL:
                row = db.execute("SELECT hash FROM nodes WHERE level = ? AND idx = ?", (lv, i)).fetchone()
                if row is not None:
                    out[(lv, i)] = row[0]
                continue
            lo, n = i << lv, 1 << lv
            rows = db.execute("SELECT leaf FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
                              (lo, lo + n)).fetchall()
            if len(rows) != n:
                continue
            hashes = [_sha256(b"\x00" + r[0]).digest() for r in rows]
            while len(hashes) > 1:
                hashes = [_sha256(b"\x01" + hashes[k] + hashes[k + 1]).digest() for k in range(0, len(hashes), 2)]
            out[(lv, i)] = hashes[0]
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
        if not isinstance(digest, (bytes, bytearray)) or len(digest) < 8:
            return None
        cur = self.db.execute(
            "SELECT l.scan FROM scans s JOIN leaves l ON l.idx = s.idx WHERE s.key = ? ORDER BY s.idx",
            (scan_key(digest),),
        )
        for (data,) in cur:
            if data is not None and _sha256(data).digest() == digest:
                return data
        return None

    def reveals(self, idxs: Sequence[int]) -> dict[int, bytes]:
        if not self._has_reveals or not idxs:
            return {}
        out: dict[int, bytes] = {}
        for k in range(0, len(idxs), 500):
            chunk = list(idxs[k:k + 500])
            q = "SELECT idx, data FROM reveals WHERE idx IN (" + ",".join("?" * len(chunk)) + ")"
            out.update(self.db.execute(q, chunk).fetchall())
        return out

    def reveal_range(self, start: int, stop: int) -> dict[int, bytes]:
        if not self._has_reveals:
            return {}
        return dict(self.db.execute("SELECT idx, data FROM reveals WHERE idx >= ? AND idx < ?", (start, stop)))

    def set_reveal(self, idx: int, blob: bytes | None) -> None:
        if self.readonly:
            raise LedgerError("ledger is open read-only")
        with self._tx():
            if blob is None:
                self.db.execute("DELETE FROM reveals WHERE idx = ?", (idx,))
            else:
                self.db.execute("INSERT OR REPLACE INTO reveals(idx, data) VALUES(?, ?)", (idx, blob))

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
        if self._walsync is not None:
            self._walsync.close()  # what was committed inside deferred() is synced first
            self._walsync = None
        self.db.close()


class _Tx:
    """One write transaction: BEGIN IMMEDIATE, then COMMIT (ROLLBACK on an exception)."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _create_schema(db: sqlite3.Connection) -> None:
    # Statement by statement: executescript() would commit an open transaction first.
    for stmt in _SCHEMA.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Rewrite a schema-1 ledger (stored leaf hashes, level-1 nodes, a digest-keyed blobs
    table) into schema 2, in one transaction. The log itself is unchanged byte for byte."""
    from glint.ledger.events import decode_leaf

    _log.warning("upgrading ledger schema 1 -> %d", SCHEMA_VERSION)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE leaves RENAME TO leaves_v1")
        db.execute("DROP INDEX IF EXISTS leaves_by_item")
        _create_schema(db)
        cur = db.execute("SELECT idx, item_id, seq, leaf FROM leaves_v1 ORDER BY idx")
        for idx, item_id, seq, leaf in cur.fetchall():
            digest = decode_leaf(leaf, LedgerError, strict=False).data.get("scan")
            scan = None
            if isinstance(digest, bytes):
                row = db.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
                scan = row[0] if row else None
            db.execute("INSERT INTO leaves(idx, item_id, seq, leaf, scan) VALUES(?,?,?,?,?)",
                       (idx, item_id, seq, leaf, scan))
            if scan is not None and digest is not None:
                db.execute("INSERT INTO scans(key, idx) VALUES(?,?)", (scan_key(digest), idx))
        db.execute("DELETE FROM nodes WHERE level < ?", (MIN_STORED_LEVEL,))
        db.execute("DROP TABLE leaves_v1")
        db.execute("DROP TABLE blobs")
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?)", (str(SCHEMA_VERSION),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
