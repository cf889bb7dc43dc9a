"""The one way to open the host's database (glint.db) and to write to it atomically.

    db = connect(home.db)                 # a path (SQLite) or a postgresql:// URL (PostgreSQL)
    with transaction(db):                 # BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception)
        db.execute(...)

The registry, the outbox, the bench's exception queue, the sync state and the server's
idempotency keys and API keys share glint.db; each module owns its tables and goes
through these two. (The ledger keeps its own storage rules: glint.ledger.store, and
glint.ledger.pgstore on PostgreSQL.)

SQLite (the embedded default): one file, WAL, FULL sync, foreign keys, a busy timeout;
autocommit (transactions are explicit).

PostgreSQL (a shared deployment: ``database = "postgresql://..."`` in config.toml or
``$GLINT_DATABASE``): ``connect`` returns a ``PgConnection``, which speaks the subset of
sqlite3's connection API the modules use (execute / executemany / executescript, cursors
with fetchone / fetchall / rowcount / lastrowid, in_transaction) and translates their
SQL in this one place (``translate``): ``?`` placeholders, ``INSERT OR IGNORE`` /
``INSERT OR REPLACE`` (upsert on the first listed column, which is every such table's
key), two-argument ``MAX`` (``GREATEST``), SQLite column types (BLOB -> BYTEA, REAL ->
DOUBLE PRECISION, INTEGER -> BIGINT, an ``id INTEGER PRIMARY KEY`` -> an identity column),
``PRAGMA user_version``. ``BEGIN IMMEDIATE`` becomes ``BEGIN`` plus a transaction-scoped
advisory lock, so write transactions are serialised exactly as SQLite serialises them
(a nonce consumed once, a counter accepted once, across every host of the deployment).
The host tables live in the schema ``host`` of the database (the ledger in ``ledger``,
the references in ``refs``). Errors surface as sqlite3's classes (``DatabaseError``,
``IntegrityError``, ...), so callers catch one hierarchy whatever the backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

BUSY_TIMEOUT_S = 10.0  # another process holding the write lock: wait this long, then "database is locked"
DATABASE_ENV = "GLINT_DATABASE"
HOST_SCHEMA = "host"

# What callers catch, whatever the backend (PostgreSQL errors are re-raised as these).
Error = sqlite3.Error
DatabaseError = sqlite3.DatabaseError
IntegrityError = sqlite3.IntegrityError


def is_url(target: object) -> bool:
    """True for a PostgreSQL URL (``postgresql://`` or ``postgres://``), False for a file path."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """A URL fit for messages and logs: the password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def with_dbname(url: str, name: str) -> str:
    """The same server URL naming another database (``postgresql://u@h/OLD?x`` -> ``.../NAME?x``)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    u = urlsplit(url)
    return urlunsplit((u.scheme, u.netloc, "/" + quote(name), u.query, u.fragment))


def connect(target: str | Path, schema: str = HOST_SCHEMA) -> Any:
    """Open (creating) a glint.db: a SQLite file path, or a PostgreSQL URL (tables in ``schema``).

    Usable from several threads (each caller serialises its own use; see glint.bench.runner)."""
    if is_url(target):
        return PgConnection(str(target), schema)
    path = Path(target)
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
def transaction(conn):
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


# ------------------------------------------------------------------ PostgreSQL


def pg_connect(url: str, schema: str, autocommit: bool = True):
    """A psycopg connection with ``search_path`` = ``schema`` (created if missing).

    A missing driver or an unreachable server is a glint UsageError with a hint."""
    from glint.errors import UsageError

    try:
        import psycopg
    except ImportError:
        raise UsageError("this home's database is PostgreSQL but psycopg is not installed",
                         hint="pip install 'glint[postgres]'") from None
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise UsageError(f"not a schema name: {schema!r}")
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=int(BUSY_TIMEOUT_S))
    except psycopg.Error as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot connect to {redact(url)}: {msg}",
                         hint="is the PostgreSQL server running and the URL right (config.toml "
                              "'database' or $GLINT_DATABASE)?") from None
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("glint.schema"),))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(f"SET search_path TO {schema}")
    except BaseException:
        conn.close()
        raise
    conn.autocommit = autocommit
    return conn


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?|%")
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO", re.I)
_OR_REPLACE = re.compile(r"^\s*INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I)
_MAX2 = re.compile(r"\bMAX\(([^(),]+),", re.I)
_ID_PK = re.compile(r"\bid\s+INTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?", re.I)
_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
_INSERT_INTO = re.compile(r"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+(\w+)", re.I)
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*(\w+))?\s*$", re.I)
_MASTER = re.compile(r"\bsqlite_(?:master|schema)\b", re.I)
_TABLES_VIEW = ("(SELECT table_name AS name, 'table' AS type FROM information_schema.tables "
                "WHERE table_schema = current_schema()) AS sqlite_master")

# Tables created with an ``id INTEGER PRIMARY KEY`` (an identity column in PostgreSQL): an
# INSERT into one returns the new id, which the cursor offers as ``lastrowid``.
_ID_TABLES: set[str] = set()
_CACHE: dict[str, tuple[str, bool]] = {}
_CACHE_LOCK = threading.Lock()


def translate(sql: str) -> tuple[str, bool]:
    """SQLite-flavoured SQL of the glint.db modules -> PostgreSQL; (sql, returns_id)."""
    hit = _CACHE.get(sql)
    if hit is not None:
        return hit
    out = sql
    m = _CREATE.match(out)
    if m:
        if _ID_PK.search(out):
            _ID_TABLES.add(m.group(1).lower())
        out = _ID_PK.sub("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", out)
        out = re.sub(r"\bWITHOUT\s+ROWID\b", "", out, flags=re.I)
        out = re.sub(r"\bBLOB\b", "BYTEA", out, flags=re.I)
        out = re.sub(r"\bREAL\b", "DOUBLE PRECISION", out, flags=re.I)
        out = re.sub(r"\bINTEGER\b", "BIGINT", out, flags=re.I)
    upsert = ""
    m = _OR_REPLACE.match(out)
    if m:
        cols = [c.strip() for c in m.group(2).split(",")]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols[1:])
        upsert = f" ON CONFLICT ({cols[0]}) DO " + (f"UPDATE SET {sets}" if sets else "NOTHING")
        out = re.sub(r"\bOR\s+REPLACE\s+", "", out, count=1, flags=re.I)
    elif _OR_IGNORE.match(out):
        upsert = " ON CONFLICT DO NOTHING"
        out = re.sub(r"\bOR\s+IGNORE\s+", "", out, count=1, flags=re.I)
    out = _MAX2.sub(r"GREATEST(\1,", out)
    out = _MASTER.sub(_TABLES_VIEW, out)
    out = _PLACEHOLDER.sub(lambda t: "%s" if t.group(0) == "?" else ("%%" if t.group(0) == "%" else t.group(0)), out)
    out = out.rstrip().rstrip(";") + upsert
    returns_id = False
    m = _INSERT_INTO.match(sql)
    if m and m.group(1).lower() in _ID_TABLES and not re.search(r"\bRETURNING\b", out, re.I):
        out += " RETURNING id"
        returns_id = True
    with _CACHE_LOCK:
        if len(_CACHE) > 4096:
            _CACHE.clear()
        _CACHE[sql] = (out, returns_id)
    return out, returns_id


def _as_sqlite_error(e: Exception) -> sqlite3.Error:
    import psycopg

    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, psycopg.errors.IntegrityError):
        return sqlite3.IntegrityError(msg)
    if isinstance(e, psycopg.errors.OperationalError):
        return sqlite3.OperationalError(msg)
    if isinstance(e, psycopg.errors.ProgrammingError):
        return sqlite3.ProgrammingError(msg)
    return sqlite3.DatabaseError(msg)


class PgCursor:
    """The result of one statement: fetchone / fetchall / iteration, rowcount, lastrowid."""

    def __init__(self, rows: list[tuple] | None, rowcount: int, lastrowid: int | None = None):
        self._rows = rows or []
        self._pos = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self):
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchall(self) -> list[tuple]:
        rows = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple]:
        while True:
            row = self.fetchone()
            if row is None:
                return
            yield row


class PgConnection:
    """glint.db on PostgreSQL, with the sqlite3 connection API the host modules use."""

    def __init__(self, url: str, schema: str = HOST_SCHEMA):
        self.url = url
        self.schema = schema
        self._conn = pg_connect(url, schema)
        self._lock = threading.RLock()
        self._write_key = _lock_key(f"glint.{schema}.write")
        self._pragmas_ready = False

    def __repr__(self) -> str:
        return f"PgConnection({redact(self.url)!r}, schema={self.schema!r})"

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: tuple | list = ()) -> PgCursor:
        import psycopg

        head = sql.lstrip()[:20].upper()
        with self._lock:
            try:
                if head.startswith("BEGIN"):
                    self._conn.execute("BEGIN")
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_key,))
                    return PgCursor(None, -1)
                if head.startswith("PRAGMA"):
                    return self._pragma(sql)
                text, returns_id = translate(sql)
                cur = self._conn.execute(text, tuple(params) if params else None)
                rows = cur.fetchall() if cur.description is not None else None
                if returns_id:
                    return PgCursor(None, cur.rowcount, rows[0][0] if rows else None)
                return PgCursor(rows, cur.rowcount)
            except psycopg.Error as e:
                raise _as_sqlite_error(e) from None

    def executemany(self, sql: str, seq) -> PgCursor:
        import psycopg

        text, _ = translate(sql)
        text = text.removesuffix(" RETURNING id")
        rows = [tuple(p) for p in seq]
        if not rows:
            return PgCursor(None, 0)
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.executemany(text, rows)
                    return PgCursor(None, cur.rowcount)
            except psycopg.Error as e:
                raise _as_sqlite_error(e) from None

    def executescript(self, script: str) -> None:
        """The statements of a schema script, in one transaction under the write lock (several
        hosts creating the same tables at once would otherwise collide in the catalog)."""
        text = "\n".join(ln.split("--")[0] for ln in script.splitlines())  # comments may hold ';'
        stmts = [stmt.strip() for stmt in text.split(";") if stmt.strip()]
        with transaction(self):
            for s in stmts:
                self.execute(s)

    def _pragma(self, sql: str) -> PgCursor:
        m = _PRAGMA.match(sql)
        if not m or m.group(1).lower() != "user_version":
            return PgCursor(None, -1)  # journal modes, sync levels, foreign keys: PostgreSQL's own
        if not self._pragmas_ready:
            self._conn.execute("CREATE TABLE IF NOT EXISTS glint_pragma(name TEXT PRIMARY KEY, value BIGINT NOT NULL)")
            self._pragmas_ready = True
        if m.group(2) is not None:
            self._conn.execute("INSERT INTO glint_pragma(name, value) VALUES('user_version', %s) "
                               "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", (int(m.group(2)),))
            return PgCursor(None, 1)
        row = self._conn.execute("SELECT value FROM glint_pragma WHERE name = 'user_version'").fetchone()
        return PgCursor([(row[0] if row else 0,)], 1)

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


def database_url(config: dict) -> str | None:
    """The PostgreSQL URL a home's data lives in: ``$GLINT_DATABASE``, else ``database`` in its
    config.toml; None for the embedded SQLite files. Anything else is refused with a reason."""
    from glint.errors import UsageError

    value = os.environ.get(DATABASE_ENV) or config.get("database")
    if value is None or value == "" or value == "sqlite":
        return None
    if not is_url(value):
        raise UsageError(f"database {str(value)[:80]!r} is not a postgresql:// URL",
                         hint="set database = \"postgresql://USER@HOST/DB\" in config.toml or "
                              "$GLINT_DATABASE, or remove it for the embedded SQLite files")
    return value


__all__ = ["connect", "transaction", "is_url", "redact", "with_dbname", "database_url", "pg_connect", "PgConnection",
           "translate", "BUSY_TIMEOUT_S", "DATABASE_ENV", "Error", "DatabaseError", "IntegrityError"]
