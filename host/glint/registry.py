"""The device registry: provisioned scanners, host nonces, the scan log and alerts.

One file, ``<home>/glint.db`` (SQLite, WAL), or the home's PostgreSQL database (schema
``host``; glint.db translates the SQL in one place). Every write that must be atomic runs in one
``BEGIN IMMEDIATE`` transaction (``Registry.transaction()``), so two host processes
sharing a home never consume the same nonce twice or accept the same counter twice.
The SQL is plain (TEXT/BLOB/INTEGER/REAL, no SQLite-only syntax in the schema beyond
AUTOINCREMENT-free integer keys) so it runs on PostgreSQL with the same tables (glint.db.PgConnection).

    reg = Registry.open(home)
    reg.add_device(device_id, pubkey, board, fw, label)     # glint device provision
    nonce = reg.issue_nonce(device_id)                       # single-use, expires after NONCE_TTL_S
    # glint.checks.check_scan(reg, signed) consumes it and logs the scan
    reg.revoke(device_id, reason)                            # its scans are refused from now on

Other host components (the field outbox, sync state) keep their own tables in the
same file: open it with ``Registry.open(home).conn`` or ``connect(path)`` and create
them with ``CREATE TABLE IF NOT EXISTS``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from glint.db import connect, transaction  # noqa: F401  (connect: re-exported for glint.bench.runner)
from glint.errors import UsageError
from glint.home import Home
from glint.walsync import WalSync  # noqa: F401  (re-exported: it began here)

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
NONCE_BYTES = 16
NONCE_TTL_S = 120.0  # a scan must come back within this long after its nonce was issued
NONCE_KEEP_S = 86400.0  # used/expired nonces are kept this long (replay diagnostics), then purged

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id      TEXT PRIMARY KEY,          -- hex of the 8-byte device id (= COSE kid)
    pubkey         BLOB NOT NULL,             -- 65-byte SEC1 P-256 public key
    board          TEXT,
    fw             TEXT,
    label          TEXT,
    provisioned_at REAL NOT NULL,
    revoked_at     REAL,
    revoke_reason  TEXT,
    last_counter   INTEGER NOT NULL DEFAULT -1,  -- highest counter accepted (any scan)
    last_spooled   INTEGER NOT NULL DEFAULT -1   -- highest counter accepted from the offline spool
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_label ON devices(label) WHERE label IS NOT NULL;
CREATE TABLE IF NOT EXISTS device_keys (
    device_id  TEXT NOT NULL,
    pubkey     BLOB NOT NULL,
    added_at   REAL NOT NULL,
    retired_at REAL,
    PRIMARY KEY (device_id, pubkey)
);
CREATE TABLE IF NOT EXISTS nonces (
    nonce      BLOB PRIMARY KEY,
    device_id  TEXT NOT NULL,
    issued_at  REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at    REAL
);
CREATE TABLE IF NOT EXISTS scans (
    id          INTEGER PRIMARY KEY,
    scan_hash   BLOB NOT NULL UNIQUE,          -- SHA-256 of the COSE_Sign1 bytes
    device_id   TEXT NOT NULL,
    counter     INTEGER NOT NULL,
    mode        TEXT NOT NULL,                 -- 'online' (host nonce) or 'spooled' (offline)
    received_at REAL NOT NULL,
    item        TEXT,
    result      TEXT,                          -- pass / fail / identified / unknown / enrolled
    log10_far   REAL,
    ledger_index INTEGER,
    cert_path   TEXT,
    UNIQUE (device_id, counter)
);
CREATE TABLE IF NOT EXISTS alerts (
    id        INTEGER PRIMARY KEY,
    at        REAL NOT NULL,
    device_id TEXT,
    kind      TEXT NOT NULL,                   -- replay, clone, revoked, unknown-device, ...
    detail    TEXT NOT NULL,
    scan_hash BLOB
);
"""


@dataclass(frozen=True)
class Device:
    device_id: str
    pubkey: bytes
    board: str | None
    fw: str | None
    label: str | None
    provisioned_at: float
    revoked_at: float | None
    revoke_reason: str | None
    last_counter: int
    last_spooled: int

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict:
        return {"device_id": self.device_id, "pubkey": self.pubkey.hex(), "board": self.board, "fw": self.fw,
                "label": self.label, "provisioned_at": self.provisioned_at, "revoked_at": self.revoked_at,
                "revoke_reason": self.revoke_reason, "last_counter": self.last_counter,
                "last_spooled": self.last_spooled}


def device_hex(device_id: bytes | str) -> str:
    """Normalise a device id (8 bytes or 16 hex digits) to lower-case hex."""
    if isinstance(device_id, (bytes, bytearray)):
        return bytes(device_id).hex()
    return str(device_id).lower()


class Registry:
    """The registry tables of one glint.db."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None):
        self.conn = conn
        self.path = path
        self._walsync: WalSync | None = None
        self._ticket = 0
        with self.transaction():
            for stmt in _statements(SCHEMA):
                conn.execute(stmt)
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @classmethod
    def open(cls, home: Home | str | Path | None = None) -> "Registry":
        h = home if isinstance(home, Home) else Home(home)
        h.ensure()
        return cls(connect(h.db), None if h.database else h.db_path)

    def close(self) -> None:
        if self._walsync is not None:
            self._walsync.close()  # what was committed with a later sync is synced first
            self._walsync = None
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def transaction(self, sync_later: bool = False, lazy: bool = False):
        """One atomic write transaction (glint.db.transaction: BEGIN IMMEDIATE, joins an outer one).

        ``sync_later``: with ``sync_behind()`` on, commit without waiting for the disk; the
        WAL is fsynced on the helper thread and ``wait_durable()`` waits for it. Without
        ``sync_behind()`` (or inside an outer transaction) it is the ordinary durable commit.
        ``lazy`` (with ``sync_later``): no fsync is started for this commit; the next one
        that starts, the next ``wait_durable()`` or ``close()`` covers it (a note that nothing
        waits for, which then costs no fsync of its own)."""
        if sync_later and self._walsync is not None and not self.conn.in_transaction:
            return self._later(lazy)
        return transaction(self.conn)

    @contextlib.contextmanager
    def _later(self, lazy: bool = False):
        assert self._walsync is not None
        conn = self.conn
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with transaction(conn) as c:
                yield c
        finally:
            conn.execute("PRAGMA synchronous=FULL")
        # A lazy commit's fsync is owed to the next ask (WalSync.owe); an ask's fsync begins after
        # the commit, so it covers every earlier one too.
        self._ticket = self._walsync.owe() if lazy else self._walsync.ask()

    def _later_statement(self, sql: str, args: tuple) -> None:
        """One statement committed as ``transaction(sync_later=True, lazy=True)`` commits (a single
        statement outside a transaction is atomic by itself: no BEGIN / COMMIT round trips)."""
        assert self._walsync is not None
        conn = self.conn
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.execute(sql, args)
        finally:
            conn.execute("PRAGMA synchronous=FULL")
        self._ticket = self._walsync.owe()

    def sync_behind(self) -> None:
        """Let ``transaction(sync_later=True)`` commits be fsynced behind the caller (a SQLite
        glint.db only; on PostgreSQL every commit stays synchronous). See WalSync."""
        if self.path is not None and self._walsync is None:
            self._walsync = WalSync(self.path)

    @property
    def walsync(self) -> WalSync | None:
        """The helper thread's WalSync once ``sync_behind()`` is on (a SQLite glint.db), else None."""
        return self._walsync

    def wait_durable(self) -> None:
        """Return once every ``sync_later`` commit so far is durable (LedgerError if the fsync failed)."""
        if self._walsync is not None and self._ticket:
            self._walsync.flush()  # a lazy commit's owed fsync
            self._walsync.wait(self._ticket)

    # --- devices -----------------------------------------------------------------------
    def add_device(self, device_id: bytes | str, pubkey: bytes, board: str | None = None, fw: str | None = None,
                   label: str | None = None, now: float | None = None) -> Device:
        """Record a provisioned device (or its new key after a re-key; the old key is retired)."""
        did = device_hex(device_id)
        now = time.time() if now is None else now
        if len(pubkey) != 65 or pubkey[0] != 4:
            raise UsageError("device public key must be 65 bytes SEC1 (04||x||y)")
        with self.transaction() as c:
            if label is not None:
                row = c.execute("SELECT device_id FROM devices WHERE label=? AND device_id<>?", (label, did)).fetchone()
                if row:
                    raise UsageError(f"label {label!r} is already used by device {row[0]}", hint="choose another --label")
            old = self.device(did)
            if old is None:
                c.execute("INSERT INTO devices(device_id, pubkey, board, fw, label, provisioned_at) "
                          "VALUES (?,?,?,?,?,?)", (did, bytes(pubkey), board, fw, label, now))
            else:
                if old.pubkey != bytes(pubkey):
                    c.execute("UPDATE device_keys SET retired_at=? WHERE device_id=? AND retired_at IS NULL",
                              (now, did))
                c.execute("UPDATE devices SET pubkey=?, board=?, fw=?, label=COALESCE(?, label), provisioned_at=?, "
                          "revoked_at=NULL, revoke_reason=NULL WHERE device_id=?",
                          (bytes(pubkey), board, fw, label, now, did))
            c.execute("INSERT OR IGNORE INTO device_keys(device_id, pubkey, added_at) VALUES (?,?,?)",
                      (did, bytes(pubkey), now))
        return self._existing(did)

    def device(self, device_id: bytes | str) -> Device | None:
        row = self.conn.execute("SELECT * FROM devices WHERE device_id=?", (device_hex(device_id),)).fetchone()
        return Device(*row) if row else None

    def _existing(self, did: str) -> Device:
        d = self.device(did)
        if d is None:
            raise UsageError(f"no provisioned device {did}", hint="see 'glint device list'")
        return d

    def find_device(self, ref: str) -> Device:
        """A device by id (hex, or a unique prefix of at least 4 digits) or by label; UsageError otherwise."""
        row = self.conn.execute("SELECT * FROM devices WHERE label=?", (ref,)).fetchone()
        if row:
            return Device(*row)
        ref_l = ref.lower()
        # A prefix is hex digits only, compared as a string (never a LIKE pattern: '%%%%' matched
        # every device and revoked the only one).
        is_hex = len(ref_l) >= 4 and all(c in "0123456789abcdef" for c in ref_l)
        rows = self.conn.execute("SELECT * FROM devices WHERE substr(device_id, 1, ?) = ?",
                                 (len(ref_l), ref_l)).fetchall() if is_hex else []
        if len(rows) == 1:
            return Device(*rows[0])
        if len(rows) > 1:
            raise UsageError(f"device {ref!r} is ambiguous ({len(rows)} devices)", hint="give more hex digits")
        raise UsageError(f"no provisioned device {ref!r}", hint="see 'glint device list'")

    def devices(self) -> list[Device]:
        return [Device(*r) for r in self.conn.execute("SELECT * FROM devices ORDER BY provisioned_at")]

    def revoke(self, device_id: bytes | str, reason: str = "revoked by operator", now: float | None = None) -> Device:
        did = device_hex(device_id)
        with self.transaction() as c:
            n = c.execute("UPDATE devices SET revoked_at=?, revoke_reason=? WHERE device_id=? AND revoked_at IS NULL",
                          (time.time() if now is None else now, reason, did)).rowcount
            if n == 0 and self.device(did) is None:
                raise UsageError(f"no provisioned device {did}", hint="see 'glint device list'")
        return self._existing(did)

    # --- nonces ------------------------------------------------------------------------
    def issue_nonce(self, device_id: bytes | str, ttl: float = NONCE_TTL_S, now: float | None = None,
                    sync_later: bool = False) -> bytes:
        """A fresh random nonce for one scan by this device, stored until used or expired.

        ``sync_later`` (see ``transaction``, lazy): a nonce lost to a power cut only fails closed
        (its scan is refused as unknown), and the scan's acceptance syncs it anyway."""
        now = time.time() if now is None else now
        nonce = secrets.token_bytes(NONCE_BYTES)
        with self.transaction(sync_later, lazy=True) as c:
            c.execute("INSERT INTO nonces(nonce, device_id, issued_at, expires_at) VALUES (?,?,?,?)",
                      (nonce, device_hex(device_id), now, now + ttl))
            c.execute("DELETE FROM nonces WHERE expires_at < ?", (now - NONCE_KEEP_S,))
        return nonce

    # --- scan log and alerts -------------------------------------------------------------
    def alert(self, kind: str, detail: str, device_id: str | None = None, scan_hash: bytes | None = None) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO alerts(at, device_id, kind, detail, scan_hash) VALUES (?,?,?,?,?)",
                      (time.time(), device_id, kind, detail, scan_hash))
        _log.info("alert %s (device %s): %s", kind, device_id, detail)

    def alerts(self, device_id: str | None = None) -> list[dict]:
        q = "SELECT at, device_id, kind, detail FROM alerts"
        rows = self.conn.execute(q + (" WHERE device_id=? ORDER BY id" if device_id else " ORDER BY id"),
                                 (device_id,) if device_id else ()).fetchall()
        return [{"at": r[0], "device_id": r[1], "kind": r[2], "detail": r[3]} for r in rows]

    def record_outcome(self, scan_id: int, item: str | None = None, result: str | None = None,
                       log10_far: float | None = None, ledger_index: int | None = None,
                       cert_path: str | None = None, sync_later: bool = False) -> None:
        """Attach what the host concluded (match result, ledger index, certificate) to a logged scan.

        ``sync_later`` (see ``transaction``, lazy): the outcome is a note beside the ledger,
        which holds the durable record of the scan; it is synced with the next scan's
        acceptance, the next ``wait_durable`` or when the registry closes."""
        sql = ("UPDATE scans SET item=COALESCE(?, item), result=COALESCE(?, result), "
               "log10_far=COALESCE(?, log10_far), ledger_index=COALESCE(?, ledger_index), "
               "cert_path=COALESCE(?, cert_path) WHERE id=?")
        args = (item, result, log10_far, ledger_index, cert_path, scan_id)
        if sync_later and self._walsync is not None and not self.conn.in_transaction:
            self._later_statement(sql, args)  # one statement: its own transaction, no BEGIN / COMMIT
            return
        with self.transaction(sync_later, lazy=True) as c:
            c.execute(sql, args)

    def scans(self, device_id: str | None = None, limit: int = 100) -> list[dict]:
        cols = ("id", "scan_hash", "device_id", "counter", "mode", "received_at", "item", "result", "log10_far",
                "ledger_index", "cert_path")
        q = f"SELECT {', '.join(cols)} FROM scans"
        args: tuple = ()
        if device_id:
            q += " WHERE device_id=?"
            args = (device_id,)
        rows = self.conn.execute(q + " ORDER BY id DESC LIMIT ?", args + (limit,)).fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def scan_count(self, device_id: str | None = None) -> int:
        if device_id:
            return self.conn.execute("SELECT COUNT(*) FROM scans WHERE device_id=?", (device_id,)).fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0]


def _statements(script: str) -> list[str]:
    """Split the schema on ';' (no semicolons inside statements): executescript would COMMIT."""
    out = []
    for part in script.split(";"):
        lines = [ln.split("--")[0] for ln in part.splitlines()]
        stmt = "\n".join(lines).strip()
        if stmt:
            out.append(stmt)
    return out
