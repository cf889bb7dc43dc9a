"""The exception queue: work that needs a person (a failed bench item, a refused spooled scan,
an upload the remote refused), persisted in table ``exceptions`` of <home>/glint.db.

Entries stay until resolved (``resolve(id)``); ``glint bench --exceptions`` lists them and
``glint status`` counts the open ones.
"""

from __future__ import annotations

import json
import sqlite3
import time as _time
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS exceptions(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    source TEXT NOT NULL,          -- bench | sync | outbox
    subject TEXT NOT NULL,         -- item id, device:counter, outbox key, ...
    reason TEXT NOT NULL,          -- one line
    detail TEXT,                   -- JSON: batch id, port, scan digest, ...
    resolved REAL);
CREATE INDEX IF NOT EXISTS exceptions_open ON exceptions(resolved, id);
"""


@dataclass(frozen=True)
class ExceptionEntry:
    id: int
    created: float
    source: str
    subject: str
    reason: str
    detail: dict
    resolved: float | None

    def as_dict(self) -> dict:
        return {"id": self.id, "created": self.created, "source": self.source, "subject": self.subject,
                "reason": self.reason, "detail": self.detail, "resolved": self.resolved}


class ExceptionQueue:
    """Open problems needing attention, in a host SQLite database (one connection per thread)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        db.executescript(SCHEMA)

    def add(self, source: str, subject: str, reason: str, detail: dict | None = None) -> int:
        """Queue one problem; returns its id. Runs inside the caller's transaction if one is open."""
        cur = self.db.execute(
            "INSERT INTO exceptions(created, source, subject, reason, detail) VALUES(?,?,?,?,?)",
            (_time.time(), source, subject, reason, json.dumps(detail or {}, sort_keys=True, default=str)))
        assert cur.lastrowid is not None  # an INSERT always sets it
        return cur.lastrowid

    def list(self, include_resolved: bool = False, source: str | None = None,
             limit: int | None = None) -> list[ExceptionEntry]:
        q = "SELECT id, created, source, subject, reason, detail, resolved FROM exceptions"
        cond, args = [], []
        if not include_resolved:
            cond.append("resolved IS NULL")
        if source:
            cond.append("source = ?")
            args.append(source)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        q += " ORDER BY id"
        if limit:
            q += f" LIMIT {int(limit)}"
        return [ExceptionEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6])
                for r in self.db.execute(q, args)]

    def open_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM exceptions WHERE resolved IS NULL").fetchone()[0]

    def resolve(self, entry_id: int) -> bool:
        cur = self.db.execute("UPDATE exceptions SET resolved = ? WHERE id = ? AND resolved IS NULL",
                              (_time.time(), entry_id))
        return cur.rowcount == 1
