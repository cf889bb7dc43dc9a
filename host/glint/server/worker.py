"""LedgerWorker: one thread that owns the ledger (and the host db) for a multi-threaded process.

The ledger admits one writer per process (an exclusive lock file) and SQLite
connections belong to the thread that opened them. The HTTP server, the bench's
scanner threads and the daemon therefore hand their ledger work to this single
thread: ``worker.call(fn, *args)`` runs ``fn(ctx, *args)`` there and returns its
result (or raises its exception) in the caller. Work is serialised, which is what a
single-writer log needs anyway.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, TypeVar

_log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 120.0  # a ledger commit never takes this long; a hang is a bug worth an error

Ctx = TypeVar("Ctx")
R = TypeVar("R")


class LedgerWorker(Generic[Ctx]):
    """Runs callables on one dedicated thread against a context built there by ``opener()``.

    ``opener`` returns the context object (e.g. a ``Ledger``, or a small object holding
    the ledger and a sqlite3 connection); ``closer(ctx)`` releases it on ``close()``.
    """

    def __init__(self, opener: Callable[[], Ctx], closer: Callable[[Ctx], None] | None = None,
                 name: str = "ledger"):
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closer = closer
        # Open on the worker thread so its sqlite connections are usable there.
        self._ctx: Ctx = self._pool.submit(opener).result(timeout=CALL_TIMEOUT_S)

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(ctx, *args, **kwargs)`` on the worker thread; return or raise its outcome."""
        if self._pool is None:
            raise RuntimeError("the ledger worker is closed")
        return self._pool.submit(fn, self._ctx, *args, **kwargs).result(timeout=CALL_TIMEOUT_S)

    def submit(self, fn: Callable, *args, **kwargs):
        """Queue ``fn(ctx, *args, **kwargs)`` on the worker thread; return its Future (no waiting)."""
        if self._pool is None:
            raise RuntimeError("the ledger worker is closed")
        return self._pool.submit(fn, self._ctx, *args, **kwargs)

    def close(self) -> None:
        if self._pool is None:
            return
        if self._closer is not None and self._ctx is not None:
            try:
                self._pool.submit(self._closer, self._ctx).result(timeout=CALL_TIMEOUT_S)
            except Exception:  # closing must not hide the error that led here
                _log.exception("closing the ledger worker context failed")
        self._pool.shutdown(wait=True)
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
