"""Spool sync: offline (button-triggered) scans move from a scanner's spool into the ledger.

At-least-once delivery, exactly-once recording. For each spooled counter, oldest first:

1. ``spool_get`` the signed scan (COSE_Sign1 bytes, descriptor without a nonce);
2. a scan already recorded under (device id, counter) with the same bytes is a re-send
   (the host died after recording, before the ack): acknowledge it, record nothing;
3. check it: the device is in the registry (not revoked), the signature verifies with
   the registered key, the counter equals the spool's and is strictly above every counter
   synced from that device before;
4. identify it against the matcher database and record a ``verify`` event in the ledger
   (the scan bytes go with it, content-addressed by their SHA-256), then the row
   (device id, counter) -> digest, item, ledger index in table ``spool_sync`` of glint.db;
5. only then ``spool_ack`` it, and mark the row acknowledged.

The ledger and glint.db are two SQLite files, so step 4 is two commits made idempotent
by their keys: the ledger commit stores the scan bytes under their digest atomically
with the event, so a host killed between the two commits finds the digest in the
ledger on the re-send and writes the missing row without a second event. A refused
scan is recorded once as well (row state ``refused`` plus one exception-queue entry)
and then acknowledged, so a bad entry cannot block the spool; its bytes stay in the
exception's detail. Scans of a device this host does not know are left in the spool.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time as _time
from dataclasses import dataclass, field

from glint.bench.exceptions import ExceptionQueue
from glint.checks import MODE_SPOOLED, R_UNKNOWN_DEVICE, ScanRefused, check_scan
from glint.errors import GlintError, LinkError, UsageError, VerificationError
from glint.registry import device_hex
from glintcore import cose
from glintcore import descriptor as D

_log = logging.getLogger(__name__)

FAULT_ENV = "GLINT_FAULT"          # test hook: pause forever at the named fault point
FAULT_PAUSE_S = 3600.0
MAX_SPOOL_PER_SYNC = 1000          # entries handled per sync call (a full device spool is 64)

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_sync(
    device_id TEXT NOT NULL,         -- hex
    counter INTEGER NOT NULL,
    digest BLOB NOT NULL,            -- SHA-256 of the signed scan
    state TEXT NOT NULL,             -- recorded | no-match | refused
    item TEXT,
    ledger_index INTEGER,
    reason TEXT,
    recorded REAL NOT NULL,
    acked REAL,
    PRIMARY KEY(device_id, counter));
CREATE TABLE IF NOT EXISTS sync_runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT, port TEXT, device_id TEXT, started REAL, finished REAL,
    listed INTEGER, recorded INTEGER, resent INTEGER, refused INTEGER, acked INTEGER, error TEXT);
"""


def fault_point(name: str) -> None:
    """Fault injection for crash tests: when $GLINT_FAULT == name, announce it and hang (to be killed)."""
    if os.environ.get(FAULT_ENV) == name:
        sys.stderr.write(f"GLINT_FAULT {name}\n")
        sys.stderr.flush()
        while True:
            _time.sleep(FAULT_PAUSE_S)


@dataclass
class SyncReport:
    port: str = ""
    device_id: str = ""
    listed: int = 0
    recorded: int = 0       # newly recorded (ledger event or no-match row)
    resent: int = 0         # already recorded before: acknowledged only
    refused: int = 0        # failed a check: exception queued
    skipped: int = 0        # left in the spool (unknown device, link trouble)
    acked: int = 0
    items: list = field(default_factory=list)   # (counter, state, item) in order
    error: str | None = None

    def line(self) -> str:
        return (f"{self.port or '?'}: {self.listed} spooled, {self.recorded} recorded, {self.resent} re-sent, "
                f"{self.refused} refused, {self.skipped} left, {self.acked} acknowledged")


@dataclass
class Checked:
    """An accepted spooled scan: its registry scan-log id and descriptor bytes."""

    scan_id: int
    device_id: str
    counter: int
    digest: bytes
    payload: bytes


class SpoolSync:
    """Syncs scanners' spools into one host's ledger and glint.db (use from one thread).

    ``ledger``: an open writable glint.ledger.Ledger; ``registry``: the home's
    glint.registry.Registry (device keys, scan log; its connection holds the sync tables);
    ``matcher``: a glint.match.Database or None (then every scan is recorded "no match");
    ``policy``: glint.checks.FirmwarePolicy.
    """

    def __init__(self, ledger, registry, matcher=None, policy=None, operator: str | None = None,
                 location: str | None = None):
        self.ledger = ledger
        self.registry = registry
        self.db = registry.conn
        self.matcher = matcher
        self.policy = policy
        self.operator, self.location = operator, location
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                self.db.execute(stmt)
        self.exceptions = ExceptionQueue(self.db)

    # --- the loop over one scanner
    def sync(self, scanner) -> SyncReport:
        """Sync every spooled scan of ``scanner`` (a glint.link.Scanner); never raises for one bad entry."""
        rep = SyncReport(port=getattr(scanner, "url", ""))
        started = _time.time()
        try:
            info = scanner.info()
            rep.device_id = device_hex(info.get("device_id") or b"")
            counters = sorted(scanner.spool_list())[:MAX_SPOOL_PER_SYNC]
            rep.listed = len(counters)
            for c in counters:
                self._guarded(scanner, c, rep)
        except GlintError as e:  # link lost mid-way: what was acked is done, the rest is re-sent next time
            rep.error = e.oneline()
            _log.warning("sync of %s stopped: %s", rep.port, rep.error)
        self.db.execute(
            "INSERT INTO sync_runs(port, device_id, started, finished, listed, recorded, resent, refused, acked, "
            "error) VALUES(?,?,?,?,?,?,?,?,?,?)",
            (rep.port, rep.device_id, started, _time.time(), rep.listed, rep.recorded, rep.resent, rep.refused,
             rep.acked, rep.error))
        _log.info("%s", rep.line())
        return rep

    def _guarded(self, scanner, counter: int, rep: SyncReport) -> None:
        """One entry; whatever it holds, it cannot stop the entries after it.

        A lost link ends the run (LinkError propagates). An entry the device cannot hand over
        is left on it and the run goes on. An entry whose bytes arrived but could not be
        processed (any other failure, bugs included) is quarantined: refused with its bytes in
        the exception queue, then acknowledged, so nothing is lost and the spool drains.
        """
        try:
            signed = bytes(scanner.spool_get(counter))
        except LinkError:
            raise
        except GlintError as e:
            rep.skipped += 1
            rep.items.append((counter, "skipped", None))
            _log.warning("spool entry %d left on the device: %s", counter, e.oneline())
            return
        try:
            self._one(scanner, counter, rep, signed)
        except LinkError:
            raise
        except Exception as e:  # noqa: BLE001 - quarantine, never let one entry block the spool
            reason = f"quarantined: could not be processed ({type(e).__name__}: {e})"
            _log.error("spool entry %d %s", counter, reason, exc_info=not isinstance(e, GlintError))
            digest = hashlib.sha256(signed).digest()
            ident = _identity(signed)
            device_id = ident[0] if ident else rep.device_id
            self._refuse(device_id, counter, digest, signed, reason, rep, scanner,
                         record=self._row(device_id, counter) is None)

    def _one(self, scanner, counter: int, rep: SyncReport, signed: bytes) -> None:
        digest = hashlib.sha256(signed).digest()
        ident = _identity(signed)
        device_id = ident[0] if ident else rep.device_id
        row = self._row(device_id, counter)
        if row is not None:
            if row[0] == digest:  # recorded before; the ack was lost (or the host died before it)
                rep.resent += 1
                rep.items.append((counter, "resent", row[2]))
                self._ack(scanner, device_id, counter, rep)
                return
            # the same (device, counter) with other bytes: a counter reuse. Never overwrite the record.
            self._refuse(device_id, counter, digest, signed, "counter reused with a different scan", rep, scanner,
                         record=False)
            return
        logged = self.db.execute("SELECT id FROM scans WHERE scan_hash = ?", (digest,)).fetchone()
        if logged is not None:  # accepted by the checks before a crash: finish recording, do not re-check
            if self.ledger.scan_bytes(digest) is not None:  # ... and the ledger event was written too
                self._insert(device_id, counter, digest, "recorded", None, None, "recovered after a crash")
                rep.resent += 1
                rep.items.append((counter, "resent", None))
                _log.info("spool %s/%d: already in the ledger (crash recovery), acknowledging", device_id, counter)
                self._ack(scanner, device_id, counter, rep)
                return
            payload = bytes(cose.decode1(signed).payload)
            checked = Checked(logged[0], device_id, counter, digest, payload)
        else:
            try:
                checked = self._check(signed, counter, rep.device_id)
            except ScanRefused as e:
                if e.reason == R_UNKNOWN_DEVICE:
                    rep.skipped += 1
                    rep.items.append((counter, "skipped", None))
                    _log.warning("spool %s/%d left on the device: %s", device_id, counter, e.msg)
                    return
                self._refuse(device_id, counter, digest, signed, e.msg, rep, scanner)
                return
            except VerificationError as e:
                self._refuse(device_id, counter, digest, signed, e.msg, rep, scanner)
                return
        self._record(checked, signed, rep)
        self._ack(scanner, device_id, counter, rep)

    # --- checks
    def _check(self, signed: bytes, counter: int, spool_device: str) -> Checked:
        ident = _identity(signed)
        if ident is not None and ident[1] != counter:
            raise VerificationError(f"spool entry {counter} holds a scan with counter {ident[1]}")
        c = check_scan(self.registry, signed, self.policy, expect_mode=MODE_SPOOLED,
                       expect_device=spool_device or None)
        return Checked(c.scan_id, c.device_id, c.counter, c.scan_hash, c.payload)

    # --- recording
    def _record(self, c: Checked, signed: bytes, rep: SyncReport) -> None:
        item, fap, why = self._identify(c)
        index = None
        if item is not None:
            try:
                if not self.ledger.store.item_leaves(item):  # enrolled in the matcher only: give it a twin
                    self.ledger.register_twin(item, self.operator)
                a = self.ledger.record_verify(item, "pass", fap=fap, device=c.device_id, operator=self.operator,
                                              location=self.location, scan=signed)
                index = a.index
            except UsageError as e:  # identified, but the ledger has no (live) twin for it
                item, why = None, f"identified as {item} but the ledger refused it: {e.msg}"
        fault_point("sync:after-ledger")
        state = "recorded" if index is not None else "no-match"
        with self.registry.transaction():
            self._insert(c.device_id, c.counter, c.digest, state, item, index, why)
            self.registry.record_outcome(c.scan_id, item, "pass" if index is not None else "unknown",
                                         ledger_index=index)
            if index is None:
                self.exceptions.add("sync", f"{c.device_id}:{c.counter}", why or "no enrolled item matches",
                                    {"digest": c.digest.hex(), "scan": signed.hex()})
        fault_point("sync:after-record")
        rep.recorded += 1
        rep.items.append((c.counter, state, item))

    def _identify(self, c: Checked) -> tuple[str | None, float | None, str | None]:
        if self.matcher is None or len(self.matcher) == 0:
            return None, None, "no matcher database to identify against"
        from glint.errors import MatchError
        from glint.match import identify
        from glint.match.spots import spots_from_descriptor

        try:
            res = identify(self.matcher, spots_from_descriptor(c.payload, f"{c.device_id}:{c.counter}"))
        except MatchError as e:
            return None, None, f"identification failed: {e.msg}"
        if res.item is None:
            return None, None, "no enrolled item matches"
        return res.item, float(10.0 ** res.log10_far), None

    def _refuse(self, device_id, counter, digest, signed, reason, rep, scanner, record=True) -> None:
        with self.registry.transaction():
            if record:
                self._insert(device_id, counter, digest, "refused", None, None, reason)
            self.exceptions.add("sync", f"{device_id}:{counter}", reason, {"digest": digest.hex(), "scan": signed.hex()})
        rep.refused += 1
        rep.items.append((counter, "refused", None))
        _log.warning("spool %s/%d refused: %s", device_id, counter, reason)
        self._ack(scanner, device_id, counter, rep)

    def _insert(self, device_id, counter, digest, state, item, index, reason) -> None:
        self.db.execute("INSERT INTO spool_sync(device_id, counter, digest, state, item, ledger_index, reason, "
                        "recorded) VALUES(?,?,?,?,?,?,?,?)",
                        (device_id, counter, digest, state, item, index, reason, _time.time()))

    def _row(self, device_id: str, counter: int):
        return self.db.execute("SELECT digest, state, item FROM spool_sync WHERE device_id = ? AND counter = ?",
                               (device_id, counter)).fetchone()

    def _ack(self, scanner, device_id: str, counter: int, rep: SyncReport) -> None:
        scanner.spool_ack(counter)
        self.db.execute("UPDATE spool_sync SET acked = ? WHERE device_id = ? AND counter = ? AND acked IS NULL",
                        (_time.time(), device_id, counter))
        rep.acked += 1

    # --- status
    def last_run(self) -> dict | None:
        return last_sync_run(self.db)


def _identity(signed: bytes) -> tuple[str, int] | None:
    """(device id hex, counter) of a signed scan if it decodes, else None (checked properly later)."""
    try:
        desc = D.decode(bytes(cose.decode1(signed).payload))
        return bytes(desc[D.K_DEVICE]).hex(), int(desc[D.K_COUNTER])
    except Exception:  # noqa: BLE001 - anything undecodable is checked (and refused) properly later
        return None


def last_sync_run(db) -> dict | None:
    """The latest sync run recorded in glint.db (None if there is none, or no sync ever ran here)."""
    if db.execute("SELECT name FROM sqlite_master WHERE name='sync_runs'").fetchone() is None:
        return None
    row = db.execute("SELECT port, device_id, started, finished, listed, recorded, resent, refused, acked, "
                     "error FROM sync_runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    keys = ["port", "device_id", "started", "finished", "listed", "recorded", "resent", "refused", "acked", "error"]
    return dict(zip(keys, row))
