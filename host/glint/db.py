"""The one way to open the host's SQLite database (glint.db) and to write to it atomically.

    db = connect(home.db_path)            # autocommit mode; WAL, FULL sync, foreign keys, busy timeout
    with transaction(db):                 # BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception)
        db.execute(...)

The registry, the outbox, the bench's exception queue, the sync state and the server's
idempotency keys share glint.db; each module owns its tables and goes through these two.
(The ledger keeps its own ledger.db with its own storage rules: glint.ledger.store.)
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_S = 10.0  # another process holding the write lock: wait this long, then "database is locked"


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating) a glint.db: autocommit (transactions are explicit), WAL, FULL sync, foreign keys.

    Usable from several threads (each caller serialises its own use; see glint.bench.runner)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection):
    """One atomic write transaction (BEGIN IMMEDIATE: the write lock is taken up front).
    Inside another transaction it joins that one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


__all__ = ["connect", "transaction", "BUSY_TIMEOUT_S"]
