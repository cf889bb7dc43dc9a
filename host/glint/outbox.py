"""The outbox: local ledger events waiting to be uploaded to a remote ledger.

The host works offline on its local ledger; the outbox mirrors every local event
into table ``outbox`` of <home>/glint.db (``collect``) and uploads them in log order
to another glint host (``upload``, over glint.server.client). Each entry carries an
idempotency key, the hex leaf hash of the local event, sent as the ``Idempotency-Key``
header: a retry after a lost answer, a crash or a restart is recognised by the
remote and never recorded twice.

Retries: a transient failure (remote down, timeout, 5xx) leaves the entry pending
with ``next_try`` pushed back by exponential backoff (BACKOFF_BASE_S doubling up to
BACKOFF_MAX_S, plus up to BACKOFF_JITTER of random spread so a fleet does not retry
in step) and stops the round so that later events never overtake earlier ones.
A permanent refusal (4xx: the remote does not know the item, ...) marks the entry
``rejected`` and queues an exception for a person.

Entries go REQUEST_EVENTS at a time through POST /v1/events/batch (each answered on its
own), or one per POST /v1/events to a remote without that route (docs/api.md, Client
behaviour).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time as _time
from dataclasses import dataclass, field
from pathlib import Path

from glint.bench.exceptions import ExceptionQueue
from glint.db import transaction
from glint.server import wire
from glint.server.client import RemoteError, RemoteLedger
from glint.server.store import connect

_log = logging.getLogger(__name__)

HOST_DB = "glint.db"
BACKOFF_BASE_S = 2.0       # first retry delay
BACKOFF_FACTOR = 2.0       # delay multiplier per failed attempt
BACKOFF_MAX_S = 600.0      # never wait longer than this between attempts
BACKOFF_JITTER = 0.2       # up to +20 % random spread
UPLOAD_BATCH = 200         # entries per upload round
REQUEST_EVENTS = 50        # entries per POST /v1/events/batch request
COLLECT_BATCH = 1000       # ledger events read per collect transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,          -- idempotency key: hex leaf hash of the local event
    local_index INTEGER NOT NULL,
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    body TEXT NOT NULL,                -- JSON request body (glint.server.wire)
    created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | rejected
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT,
    remote_index INTEGER,
    sent_at REAL);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state, id);
CREATE INDEX IF NOT EXISTS outbox_local ON outbox(local_index);
CREATE TABLE IF NOT EXISTS host_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
CURSOR_KEY = "outbox.cursor"   # next local ledger index to mirror


def open_host_db(home: str | Path) -> sqlite3.Connection:
    """<home>/glint.db with the outbox and exception tables present."""
    from glint.home import Home

    db = connect(Home(home).db)
    db.executescript(SCHEMA)
    ExceptionQueue(db)
    return db


def _reference_of(db, item: str, digest: bytes) -> dict | None:
    import hashlib

    from glint.match.database import to_record
    from glint.server.admit import reference_wire

    if item not in db:
        return None
    ref = db.reference(item)
    if hashlib.sha256(to_record(ref).tobytes()).digest() != digest:
        return None  # re-enrolled since: the remote refuses the event, a person looks at it
    return reference_wire(ref)


def backoff_delay(attempts: int, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_MAX_S,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th consecutive failure (1, 2, ...)."""
    delay = min(cap, base * BACKOFF_FACTOR ** max(0, attempts - 1))
    return delay * (1.0 + (rng or random).uniform(0.0, BACKOFF_JITTER))


@dataclass
class UploadReport:
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0                  # transient failures this round (it stops at the first; later entries
                                     # of the same batch that were refused count too: they are retried)
    pending: int = 0                 # still waiting after the round
    next_try: float | None = None    # when the head entry is due again
    errors: list[str] = field(default_factory=list)


class Outbox:
    """Local events waiting for the remote ledger (use from one thread; give it its own connection)."""

    def __init__(self, db: sqlite3.Connection, base_s: float = BACKOFF_BASE_S, max_s: float = BACKOFF_MAX_S,
                 clock=_time.time):
        self.db = db
        self.base_s, self.max_s, self.clock = base_s, max_s, clock
        db.executescript(SCHEMA)
        self.exceptions = ExceptionQueue(db)

    # --- filling
    def cursor(self) -> int:
        row = self.db.execute("SELECT value FROM host_meta WHERE key = ?", (CURSOR_KEY,)).fetchone()
        return int(row[0]) if row else 0

    def collect(self, ledger, references=None) -> int:
        """Mirror local ledger events not yet in the outbox; return how many were added.

        ``references``: the home's matcher Database; an enroll event goes out with the
        reference it enrolled (the remote checks its scan against it and keeps it for
        later verifications) when the database still holds that exact reference.

        The cursor moves in the same transaction as the inserts, and keys are unique,
        so a crash mid-way neither loses nor doubles an entry.
        """
        added = 0
        start = self.cursor()
        size = ledger.size
        if start > size:
            _log.warning("outbox cursor %d is past the ledger size %d: was the ledger replaced?", start, size)
            return 0
        while start < size:
            stop = min(size, start + COLLECT_BATCH)
            rows = []
            now = self.clock()
            for e in ledger.events(start, stop):
                data = dict(e.data)
                scan = None
                if isinstance(data.get("scan"), bytes):
                    scan = ledger.scan_bytes(data["scan"])
                    if scan is not None:
                        del data["scan"]  # the remote recomputes the digest from the bytes
                body = wire.event_body(e.kind, e.item, e.time, data, scan)
                if e.kind == "enroll" and references is not None and isinstance(data.get("ref"), bytes):
                    ref = _reference_of(references, e.item, data["ref"])
                    if ref is not None:
                        body["reference"] = ref
                rows.append((e.hash.hex(), e.index, e.kind, e.item, _json(body), now, now))
            db = self.db
            with transaction(db):
                cur = db.executemany(
                    "INSERT OR IGNORE INTO outbox(key, local_index, kind, item, body, created, next_try) "
                    "VALUES(?,?,?,?,?,?,?)", rows)
                added += cur.rowcount
                db.execute("INSERT OR REPLACE INTO host_meta(key, value) VALUES(?, ?)", (CURSOR_KEY, str(stop)))
            start = stop
        if added:
            _log.info("outbox: %d new event(s) to upload", added)
        return added

    # --- looking
    def depth(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]

    def counts(self) -> dict:
        out = {"pending": 0, "sent": 0, "rejected": 0}
        for state, n in self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
            out[state] = n
        return out

    def entries(self, state: str | None = None, limit: int = 100) -> list[dict]:
        q = ("SELECT id, key, local_index, kind, item, state, attempts, next_try, last_error, remote_index "
             "FROM outbox" + (" WHERE state = ?" if state else "") + " ORDER BY id LIMIT ?")
        cols = ["id", "key", "local_index", "kind", "item", "state", "attempts", "next_try", "last_error",
                "remote_index"]
        args = (state, limit) if state else (limit,)
        return [dict(zip(cols, r)) for r in self.db.execute(q, args)]

    # --- sending
    def upload(self, remote: RemoteLedger, limit: int = UPLOAD_BATCH, force: bool = False) -> UploadReport:
        """Upload due entries in log order; stop at the first transient failure.

        Entries go REQUEST_EVENTS at a time through POST /v1/events/batch (each answered on its
        own), or one per POST /v1/events to a remote without the batch route (or whose key's
        burst is smaller than a batch). After a transient failure, the later entries of the
        same batch that the remote refused are retried too (their refusal may follow from
        the earlier one's absence, as a service after an unsent register), never rejected.
        ``force`` ignores ``next_try`` (an operator's "sync now").
        """
        rep = UploadReport()
        rows = self.db.execute(
            "SELECT id, key, body, attempts, next_try FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?",
            (limit,)).fetchall()
        due = []
        for row in rows:
            if not force and row[4] > self.clock():
                rep.next_try = row[4]
                break
            due.append(row)
        batched = bool(getattr(remote, "batch", False)) and len(due) > 1
        i = 0
        while i < len(due):
            chunk = due[i:i + (REQUEST_EVENTS if batched else 1)]
            chunk, skip = self._remote_indexes(chunk, rep)
            i += skip
            if not chunk:
                if not skip:  # the event it refers to is still on the way: a later round sends it
                    break
                continue
            outs: list = []
            if batched:
                try:
                    outs = remote.post_events([(key, _unjson(body)) for _oid, key, body, _a, _n in chunk])
                except RemoteError as e:
                    if e.status in (400, 404, 405):  # no batch route there, or a batch larger than the key's burst
                        if e.status != 400:
                            remote.batch = False
                        _log.info("outbox: %s takes no batch (%s); one event per request", remote.url, e.status)
                        batched = False
                        continue
                    chunk, outs = chunk[:1], [e]  # the request failed as a whole: as one failed upload
            else:
                try:
                    outs = [remote.post_event(chunk[0][1], _unjson(chunk[0][2]))]
                except RemoteError as e:
                    outs = [e]
            i += len(chunk)
            if self._settle(chunk, outs, rep):
                break
        rep.pending = self.depth()
        return rep

    def _remote_indexes(self, chunk: list, rep: UploadReport) -> tuple[list, int]:
        """The chunk with each body's local log indexes (a void's ``event``, a lifecycle event's
        ``verified``) written as the remote's indexes of the same events, cut before the first entry
        whose referenced event's remote index is not known yet; and how many leading entries were
        rejected here (their referenced event was refused by the remote, or never in this outbox)."""
        out: list = []
        rejected = 0
        for oid, key, body, attempts, nxt in chunk:
            b = _unjson(body)
            data: dict = b["data"] if isinstance(b.get("data"), dict) else {}
            refs = [k for k in ("verified",) if type(data.get(k)) is int]
            if b.get("kind") == "void" and type(data.get("event")) is int:
                refs.append("event")
            why = None
            for k in refs:
                row = self.db.execute("SELECT state, remote_index FROM outbox WHERE local_index = ?",
                                      (data[k],)).fetchone()
                if row is not None and row[0] == "sent" and row[1] is not None:
                    data[k] = row[1]
                    continue
                if row is not None and row[0] == "pending":
                    return out, rejected   # sent once that event has its remote index
                why = (f"its {k} names local event {data[k]}, which the remote "
                       + ("refused" if row is not None else "was never sent (not in this outbox)"))
                break
            if why is not None:
                if out:  # settle the ones before it first, in order
                    return out, rejected
                self._reject(oid, key, attempts + 1, why)
                rep.rejected += 1
                rep.errors.append(why)
                rejected += 1
                continue
            out.append((oid, key, _json(b) if refs else body, attempts, nxt))
        return out, rejected

    def _settle(self, chunk: list, outs: list, rep: UploadReport) -> bool:
        """Record each entry's outcome; True when a transient failure ends the round."""
        stop = False
        for (oid, key, _body, attempts, _next), out in zip(chunk, outs):
            now = self.clock()
            if isinstance(out, RemoteError):
                if out.transient or stop:
                    attempts += 1
                    due = now + backoff_delay(attempts, self.base_s, self.max_s)
                    self.db.execute("UPDATE outbox SET attempts=?, next_try=?, last_error=? WHERE id=?",
                                    (attempts, due, out.msg[:500], oid))
                    rep.failed += 1
                    rep.next_try = due if rep.next_try is None else min(rep.next_try, due)
                    rep.errors.append(out.msg)
                    _log.warning("outbox: upload of %s failed (attempt %d, next in %.1f s): %s",
                                 key[:16], attempts, due - now, out.msg)
                    stop = True
                    continue
                self._reject(oid, key, attempts + 1, out.msg)
                rep.rejected += 1
                rep.errors.append(out.msg)
                continue
            result, dup = out
            self.db.execute("UPDATE outbox SET state='sent', attempts=?, remote_index=?, sent_at=?, last_error=NULL "
                            "WHERE id=?", (attempts + 1, result.get("index"), now, oid))
            rep.sent += 1
            rep.duplicates += int(dup)
        return stop

    def _reject(self, oid: int, key: str, attempts: int, msg: str) -> None:
        db = self.db
        with transaction(db):
            db.execute("UPDATE outbox SET state='rejected', attempts=?, last_error=? WHERE id=?",
                       (attempts, msg[:500], oid))
            self.exceptions.add("outbox", key, msg[:300], {"outbox_id": oid})
        _log.error("outbox: remote refused %s: %s", key[:16], msg)

    def retry_rejected(self) -> int:
        """Put rejected entries back in the queue (after the cause was fixed on the remote)."""
        cur = self.db.execute("UPDATE outbox SET state='pending', next_try=? WHERE state='rejected'",
                              (self.clock(),))
        return cur.rowcount


def _json(body: dict) -> str:
    import json

    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _unjson(text: str) -> dict:
    import json

    return json.loads(text)
