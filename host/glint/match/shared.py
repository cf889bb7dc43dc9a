"""Enrolled references shared through PostgreSQL; each host keeps its own 1:N index and follows.

A deployment on PostgreSQL keeps the references in its database (schema ``refs``)::

    meta(key, value)                       'frame' (JSON: width, height, MatchParams), 'version'
    refs(row, item, record, alive, ver)    one fixed-size reference record (glint.match.database.RECORD)
                                           per enrolled row; ``ver`` = the version that last changed it

Every change (an add, a re-enroll, a removal, a calibration) runs in one transaction that
locks the ``version`` row (``SELECT ... FOR UPDATE``: the writers of all hosts take turns),
assigns the next rows, and moves ``version`` on by one.

Each host builds its 1:N index from these rows in a local cache directory (the
``glint.match.Database`` files: records, alive map, quad-code index) and **follows
additions by polling a high-water mark**: every read first compares the stored
``version`` with the one its cache reached (one indexed single-row read) and, when it
moved, fetches only the rows with a newer ``ver``: new rows are appended to the local
records and index (a delta, as a local add), removed rows are tombstoned, a new frame or
calibration rewrites the local parameters. Polling was chosen over LISTEN/NOTIFY: it needs
no connection held open and listening per host, cannot miss a notification sent while a
host was down or reconnecting (it simply catches up from its version), and costs one
primary-key read per look-up, negligible beside matching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np

from glint.db import pg_connect, redact
from glint.errors import MatchError, UsageError
from glint.match.database import DB_FORMAT, RECORD, Database, append_rows, check_additions, to_record
from glint.match.index import bits_for
from glint.match.params import MatchParams
from glint.match.reference import Reference

log = logging.getLogger(__name__)

REFS_SCHEMA = "refs"
CACHE_STATE = "shared.json"

_DDL = [
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS refs(row BIGINT PRIMARY KEY, item TEXT NOT NULL, record BYTEA NOT NULL, "
    "alive BOOLEAN NOT NULL, ver BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS refs_by_ver ON refs(ver)",
    "CREATE UNIQUE INDEX IF NOT EXISTS refs_alive_item ON refs(item) WHERE alive",
    "INSERT INTO meta(key, value) VALUES('version', '0') ON CONFLICT DO NOTHING",
]


def cache_dir_for(home_root: Path, url: str) -> Path:
    """The local cache of one database's references under a home (one per URL)."""
    tag = hashlib.sha256(redact(url).encode()).hexdigest()[:12]
    return Path(home_root) / "match-cache" / tag


class SharedDatabase(Database):
    """``glint.match.Database`` whose rows live in PostgreSQL; the local files are a cache."""

    def __init__(self, url: str, cache: str | Path):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._pg_lock = threading.RLock()
        self._conn = pg_connect(url, REFS_SCHEMA)
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(7355609)")  # DDL of concurrent openers
                for stmt in _DDL:
                    self._conn.execute(stmt)
        except psycopg.Error as e:
            raise MatchError(f"cannot open the references in {redact(url)}: {_one_line(e)}") from None
        self.cache = Path(cache)
        self._version = self._cache_version()
        super().__init__(self.cache)
        self.refresh()

    def __repr__(self) -> str:
        return f"SharedDatabase({redact(self.url)!r}, cache={str(self.cache)!r})"

    # --- following ------------------------------------------------------------------------
    def _cache_version(self) -> int:
        """The version the local cache reached; a cache of another database is wiped."""
        state = self.cache / CACHE_STATE
        want = redact(self.url)
        try:
            st = json.loads(state.read_text())
            if st.get("url") == want and isinstance(st.get("version"), int):
                return st["version"]
        except (OSError, ValueError):
            pass
        if self.cache.exists():
            shutil.rmtree(self.cache)
        return 0

    def _stored_version(self) -> int:
        row = self._q("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def _q(self, sql: str, args: tuple = ()):
        with self._pg_lock:
            try:
                return self._conn.execute(sql, args or None)
            except self._psycopg.Error as e:
                raise MatchError(f"references in {redact(self.url)}: {_one_line(e)}",
                                 hint="is the PostgreSQL server up?") from None

    def refresh(self) -> bool:
        """Catch up with the stored references (the polled high-water mark); True if anything changed."""
        if self._stored_version() == self._version:
            return False
        with self._writing():
            self._apply_changes()
        return True

    def _apply_changes(self) -> None:
        """Under the local write lock: fetch rows changed since the cache's version and apply them."""
        with self._pg_lock:
            rows = self._q("SELECT row, item, record, alive, ver FROM refs WHERE ver > %s ORDER BY row",
                           (self._version,)).fetchall()
            frame = self._q("SELECT value FROM meta WHERE key = 'frame'").fetchone()
            version = self._stored_version()
        self._version = max([self._version, version] + [r[4] for r in rows])
        if frame is not None:
            m = json.loads(frame[0])
            meta = {"format": DB_FORMAT, "width": m["width"], "height": m["height"], "params": m["params"]}
            self.cache.mkdir(parents=True, exist_ok=True)
            cur = self.cache / "meta.json"
            text = json.dumps(meta, indent=1, sort_keys=True)
            if not cur.exists() or cur.read_text() != text:
                tmp = self.cache / "meta.json.tmp"
                tmp.write_text(text)
                tmp.replace(cur)
                self._load()
                if self.ids:
                    self._reindex()
        first = len(self.ids)
        new = [r for r in rows if r[0] >= first]
        dead = [r[0] for r in rows if r[0] < first and not r[3]]
        if [r[0] for r in new] != list(range(first, first + len(new))):
            raise MatchError(f"references in {redact(self.url)}: rows are not contiguous after {first}",
                             hint="remove the local cache " + str(self.cache))
        if new:
            recs = np.frombuffer(b"".join(bytes(r[2]) for r in new), RECORD)
            append_rows(self.cache, recs.tobytes(), bytes(1 if r[3] else 0 for r in new), [r[1] for r in new])
        if dead:
            self._tombstone(dead)
        self._load()
        if new:
            self._index_added(first, len(new))
        (self.cache / CACHE_STATE).write_text(json.dumps({"url": redact(self.url), "version": self._version}))
        if new or dead:
            log.info("references: %d new, %d removed (version %d)", len(new), len(dead), self._version)

    def _reindex(self) -> None:
        """A fresh base index of the live rows (rows keep their numbers: they are the shared ones)."""
        if not self.ids or self.index is None or self.params is None:
            return
        bits = bits_for(len(self.ids) * self.params.index_codes)
        live = np.nonzero(self.alive)[0]
        b, e = self._entries(live, bits)
        self.index.write_base(b, e, bits)

    def _rebuild_locked(self) -> None:  # the base class compacts rows: shared rows keep their numbers
        self._reindex()

    # --- reads follow the shared rows ------------------------------------------------------
    def __len__(self) -> int:
        self.refresh()
        return super().__len__()

    def __contains__(self, item: str) -> bool:
        self.refresh()
        return super().__contains__(item)

    def items(self) -> list[str]:
        self.refresh()
        return super().items()

    def reference(self, item: str) -> Reference:
        self.refresh()
        return super().reference(item)

    # --- writes go to the database, then the cache follows ------------------------------------
    def add_many(self, items: list[str], refs: list[Reference], replace: bool = False) -> None:
        check_additions(items, refs)
        if not items:
            return
        psycopg = self._psycopg
        with self._pg_lock:
            try:
                with self._conn.transaction():
                    ver = int(self._conn.execute("SELECT value FROM meta WHERE key = 'version' FOR UPDATE")
                              .fetchone()[0]) + 1
                    frame = self._conn.execute("SELECT value FROM meta WHERE key = 'frame'").fetchone()
                    if frame is None:
                        r0 = refs[0]
                        m = {"width": r0.width, "height": r0.height, "params": r0.params.to_dict()}
                        self._conn.execute("INSERT INTO meta(key, value) VALUES('frame', %s)",
                                           (json.dumps(m, sort_keys=True),))
                    else:
                        m = json.loads(frame[0])
                    for r in refs:
                        if (r.width, r.height) != (m["width"], m["height"]):
                            raise MatchError(f"reference frame {r.width}x{r.height} differs from the database's "
                                             f"{m['width']}x{m['height']}")
                    dup = [row[0] for row in self._conn.execute(
                        "SELECT item FROM refs WHERE alive AND item = ANY(%s)", (items,)).fetchall()]
                    if dup and not replace:
                        raise MatchError(f"item {dup[0]!r} is already enrolled", hint="use --replace to re-enroll it")
                    if dup:
                        self._conn.execute("UPDATE refs SET alive = false, ver = %s WHERE alive AND item = ANY(%s)",
                                           (ver, dup))
                    first = int(self._conn.execute("SELECT coalesce(max(row) + 1, 0) FROM refs")
                                .fetchone()[0])
                    if first + len(items) > (1 << 24):
                        raise MatchError("database is full (16.7M rows)")
                    with self._conn.cursor() as cur:
                        cur.executemany("INSERT INTO refs(row, item, record, alive, ver) VALUES(%s,%s,%s,true,%s)",
                                        [(first + k, it, to_record(r).tobytes(), ver)
                                         for k, (it, r) in enumerate(zip(items, refs))])
                    self._conn.execute("UPDATE meta SET value = %s WHERE key = 'version'", (str(ver),))
            except psycopg.Error as e:
                raise MatchError(f"cannot enroll into {redact(self.url)}: {_one_line(e)}") from None
        self.refresh()
        log.info("added %d item(s) to %s", len(items), redact(self.url))

    def remove(self, item: str) -> None:
        with self._pg_lock:
            with self._conn.transaction():
                ver = int(self._conn.execute("SELECT value FROM meta WHERE key = 'version' FOR UPDATE")
                          .fetchone()[0]) + 1
                n = self._conn.execute("UPDATE refs SET alive = false, ver = %s WHERE alive AND item = %s",
                                       (ver, item)).rowcount
                if n == 0:
                    raise MatchError(f"unknown item {item!r} in {redact(self.url)}")
                self._conn.execute("UPDATE meta SET value = %s WHERE key = 'version'", (str(ver),))
        self.refresh()

    def set_calibration(self, constants: dict) -> None:
        import dataclasses

        from glint.match.scanner import CALIBRATED

        bad = [k for k in constants if k not in CALIBRATED]
        if bad:
            raise UsageError(f"not a calibration constant: {bad[0]}", hint="one of: " + ", ".join(CALIBRATED))
        with self._pg_lock:
            with self._conn.transaction():
                ver = int(self._conn.execute("SELECT value FROM meta WHERE key = 'version' FOR UPDATE")
                          .fetchone()[0]) + 1
                frame = self._conn.execute("SELECT value FROM meta WHERE key = 'frame' FOR UPDATE").fetchone()
                if frame is None:
                    raise MatchError(f"database {redact(self.url)} is empty", hint="enroll one item first")
                m = json.loads(frame[0])
                params = dataclasses.replace(MatchParams.from_dict(m["params"]), **constants)
                m["params"] = params.to_dict()
                self._conn.execute("UPDATE meta SET value = %s WHERE key = 'frame'", (json.dumps(m, sort_keys=True),))
                self._conn.execute("UPDATE meta SET value = %s WHERE key = 'version'", (str(ver),))
        self.refresh()

    def rebuild(self) -> None:
        """Rebuild this host's local index from its cache (the shared rows keep their numbers)."""
        self.refresh()
        with self._writing():
            self._reindex()

    def close(self) -> None:
        with self._pg_lock:
            self._conn.close()


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
