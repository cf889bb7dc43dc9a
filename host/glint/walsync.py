"""fsync of a SQLite write-ahead log on a helper thread: a commit made durable behind the caller.

Used by the registry (``Registry.sync_behind``: a live scan's acceptance is fsynced while
the scan is matched) and the ledger (``Ledger.sync_later``: the verify event of ``glint
scan`` is fsynced while its certificate is built). A commit made with
``synchronous=NORMAL`` is written to the WAL but not fsynced; once the WAL is fsynced it is
as durable as a ``FULL`` commit (SQLite's WAL mode fsyncs the WAL before a checkpoint copies
it and the database after, and its frames' running checksums mean a later commit never
survives a power cut that an earlier one did not).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from glint.errors import LedgerError


class WalSync:
    """fsync of one database's write-ahead log (``<db>-wal``) on a helper thread.

    ``ask()`` after a ``synchronous=NORMAL`` commit returns a ticket; ``wait(ticket)``
    returns once an fsync that began after the commit has finished (one fsync covers every
    commit asked before it began), or raises LedgerError when it failed (sticky: nothing
    later is called durable either). The first fsync also syncs the folder, so a WAL file
    SQLite created under ``NORMAL`` (which syncs nothing) has a durable name. The fsync
    runs while the caller goes on, so the disk's latency overlaps the CPU's work.
    """

    def __init__(self, db_path: Path | str, name: str = "glint-db-sync"):
        self.wal = Path(str(db_path) + "-wal")
        self.name = name
        lock = threading.Lock()
        self._cv = threading.Condition(lock)      # the fsync thread waits on it for asks
        self._synced = threading.Condition(lock)  # the waiters, for fsyncs done
        self.asked = 0
        self.done = 0
        self.syncs = 0  # fsyncs run (tests, diagnostics)
        self._owed = False  # a commit's fsync was left to the next ask (owe)
        self._error: OSError | None = None
        self._stop = False
        self._thread: threading.Thread | None = None

    def ask(self) -> int:
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self.asked += 1
            self._owed = False
            self._cv.notify()  # only the fsync thread: the waiters wake when an fsync is done
            return self.asked

    def owe(self) -> int:
        """The ticket of a commit just made whose fsync is left to the next ``ask()`` (or
        ``flush()``): a later commit's fsync covers both. The committer must see that one of
        them follows (the server's ledger thread flushes before it waits for work)."""
        with self._cv:
            self._owed = True
            return self.asked + 1

    def flush(self) -> None:
        """Ask the fsync that an ``owe()`` left pending, if any."""
        with self._cv:
            owed = self._owed
        if owed:
            self.ask()

    def wait(self, ticket: int) -> None:
        with self._cv:
            while self.done < ticket:
                self._synced.wait()
            err = self._error
        if err is not None:
            raise LedgerError(f"cannot make {self.wal.name} durable: {err}", "is the disk full or failing?")

    def check(self) -> None:
        """Raise LedgerError if an fsync has failed (sticky), without waiting for anything."""
        err = self._error
        if err is not None:
            raise LedgerError(f"cannot make {self.wal.name} durable: {err}", "is the disk full or failing?")

    def close(self) -> None:
        """Finish what was asked (and owed), then stop the thread."""
        self.flush()
        with self._cv:
            self._stop = True
            self._cv.notify_all()
            t = self._thread
        if t is not None:
            t.join()

    def _run(self) -> None:
        fd = None
        try:
            while True:
                with self._cv:
                    while self.done >= self.asked and not self._stop:
                        self._cv.wait()
                    if self.done >= self.asked:
                        return
                    target = self.asked
                err = None
                try:
                    if fd is None:
                        fd = os.open(self.wal, os.O_RDONLY)
                        dfd = os.open(self.wal.parent, os.O_RDONLY)
                        try:
                            os.fsync(dfd)
                        finally:
                            os.close(dfd)
                    os.fsync(fd)
                except OSError as e:
                    err = e
                with self._cv:
                    self.syncs += 1
                    if err is not None and self._error is None:
                        self._error = err  # sticky: nothing later is called durable either
                    self.done = target
                    self._synced.notify_all()
        finally:
            if fd is not None:
                os.close(fd)
