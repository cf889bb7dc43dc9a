"""LedgerWorker: the one thread that writes a process's ledger, with group commit.

The ledger admits one writer per process (an exclusive lock file) and SQLite
connections belong to the thread that opened them, so a multi-threaded process (the
HTTP server, the bench's scanner threads, a fleet) hands its ledger work to this one
thread. It runs two kinds of jobs, in the order they were queued:

- ``call(fn, *args)`` / ``submit(fn, *args)``: ``fn(ctx, *args)`` on the writer thread
  (reads, checkpoints, anything that needs the writer's connections);
- ``group(handler, item)``: group commit. Every item queued for the same ``handler``
  while the thread was busy (the previous commit syncing) is handed to
  ``handler(ctx, items)`` in one call, which answers each item (a result or an
  exception, in order) after one shared durable commit. No delay is added: a lone
  caller pays one commit, concurrent callers share it, and each is still acknowledged
  only once its own work is durable. ``group_many(handler, items)`` queues several items
  as one job (they share a round). ``idle(ctx)`` (optional) runs whenever the thread is
  about to wait for work and before every call: a handler may leave work there that must
  not wait for the next group (the server's uploads leave glint.db's fsync to the next
  group's commit, or to it). ``append(...)`` is this for plain ledger events
  (``Ledger.append_group``: an event refused by a custody rule refuses only itself; a
  failed commit raises LedgerError in every caller of the group and stores none of it).

    with LedgerWorker.open(path, keys=keys) as w:       # opens (and owns) the writer Ledger
        a = w.append("verify", item, {"res": "pass"})    # from any thread; returns once durable
        note = w.call(lambda led: led.checkpoint())      # on the writer thread, between groups

    w = LedgerWorker(opener, closer)                     # any context: the server's holds the
    out = w.group(handle_uploads, upload).result()       # ledger, glint.db and the matcher

Jobs of one thread run in the order that thread queued them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Generic, TypeVar

from glint.errors import LedgerError
from glint.ledger.log import Appended, EventSpec, Ledger

_log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 2000  # items handed to one handler call (bounds a commit's latency and memory)
CALL_TIMEOUT_S = 120.0   # a ledger commit never takes this long; a hang is a bug worth an error
CLOSE_TIMEOUT_S = 60.0   # how long close() waits for the writer thread to finish what was queued

Ctx = TypeVar("Ctx")
R = TypeVar("R")

_STOP = object()


class _Call:
    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs


class _Grouped:
    __slots__ = ("handler", "item")

    def __init__(self, handler, item):
        self.handler, self.item = handler, item


class _GroupedMany:
    """Several items for one handler, queued as one job so that they never straddle a round."""

    __slots__ = ("handler", "items")

    def __init__(self, handler, items):
        self.handler, self.items = handler, items


def _jobs(job) -> list:
    """The queue entry ``job`` as (what, future) pairs (a _GroupedMany becomes one pair per item)."""
    what, fut = job
    if isinstance(what, _GroupedMany):
        return [(_Grouped(what.handler, it), f) for it, f in zip(what.items, fut)]
    return [job]


class LedgerWorker(Generic[Ctx]):
    """One writer thread over a context built there by ``opener()`` (a ``Ledger``, or an object
    holding one); ``closer(ctx)`` releases it on ``close()``. Thread-safe ``call``/``submit``/
    ``group``/``append``. ``groups`` and ``items`` count handler calls and the items they took
    (a mean group size is ``items / groups``)."""

    def __init__(self, opener: Callable[[], Ctx], closer: Callable[[Ctx], None] | None = None,
                 name: str = "ledger", max_group: int = MAX_GROUP_EVENTS,
                 idle: Callable[[Ctx], None] | None = None):
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._max_group = max(1, int(max_group))
        self._closer = closer
        self._idle = idle  # run before the thread waits for work, and before a call (see _loop)
        self.groups = 0
        self.items = 0
        self._closed = False
        self._lock = threading.Lock()
        ready: Future = Future()
        self._thread = threading.Thread(target=self._run, args=(opener, ready), name=name, daemon=True)
        self._thread.start()
        ready.result(timeout=CALL_TIMEOUT_S)  # re-raises an opening error (e.g. a second writer) in the caller

    @classmethod
    def open(cls, path=None, keys=None, durable: bool = True, max_group: int = MAX_GROUP_EVENTS,
             name: str = "ledger") -> "LedgerWorker[Ledger]":
        """The worker of the ledger at ``path`` (opened as ``Ledger.open`` on the writer thread)."""
        return LedgerWorker(lambda: Ledger.open(path, keys=keys, durable=durable), Ledger.close,
                            name=name, max_group=max_group)

    # ------------------------------------------------------------ producers

    def _put(self, job, fut: Future) -> Future:
        with self._lock:  # nothing slips in behind the stop marker
            if self._closed:
                raise LedgerError("the ledger worker is closed")
            self._q.put((job, fut))
        return fut

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(ctx, *args, **kwargs)``; return its Future (no waiting)."""
        return self._put(_Call(fn, args, kwargs), Future())

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(ctx, *args, **kwargs)`` on the writer thread; return or raise its outcome."""
        return self.submit(fn, *args, **kwargs).result(timeout=CALL_TIMEOUT_S)

    def group(self, handler: Callable[[Ctx, list], list], item: Any) -> Future:
        """Queue ``item`` for ``handler(ctx, items)``, which takes every item queued for it meanwhile
        and returns one outcome per item, in order: a value, or an exception raised in that
        item's caller. A handler that raises fails every item of its group."""
        return self._put(_Grouped(handler, item), Future())

    def group_many(self, handler: Callable[[Ctx, list], list], items: list) -> list[Future]:
        """``group`` for several items at once: they join the same round (one commit) unless it is
        full (``max_group``); one Future per item, in order."""
        futs: list[Future] = [Future() for _ in items]
        if futs:
            with self._lock:
                if self._closed:
                    raise LedgerError("the ledger worker is closed")
                self._q.put((_GroupedMany(handler, list(items)), futs))
        return futs

    def submit_event(self, spec: EventSpec) -> Future:
        """Queue one ledger event (group commit); the Future resolves to its ``Appended`` once durable."""
        return self.group(_append_events, spec)

    def append(self, kind: str, item: str, data: dict, time: int | None = None,
               scan: bytes | None = None) -> Appended:
        """Append one event and wait until it is durable (like ``Ledger.append_event``)."""
        return self.submit_event(EventSpec(kind, item, data, time, scan)).result(timeout=CALL_TIMEOUT_S)

    def close(self) -> None:
        """Run what is queued, then release the context (``closer``) and stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._q.put((_STOP, None))
        self._thread.join(CLOSE_TIMEOUT_S)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ writer thread

    def _run(self, opener, ready: Future) -> None:
        try:
            ctx = opener()
        except BaseException as e:  # handed to the constructor's caller
            ready.set_exception(e)
            return
        ready.set_result(None)
        try:
            self._loop(ctx)
        finally:
            if self._closer is not None:
                try:
                    self._closer(ctx)
                except Exception:  # closing must not hide the error that led here
                    _log.exception("closing the ledger worker's context failed")

    def _loop(self, ctx) -> None:
        q = self._q
        idle = self._idle
        while True:
            try:
                first = q.get_nowait()
            except queue.Empty:
                if idle is not None:  # e.g. the server's uploads: ask the fsync a group left for later
                    idle(ctx)
                first = q.get()
            jobs = _jobs(first)
            # Let callers woken by the last commit queue their next item before this group closes.
            time.sleep(0)
            # Everything that queued up while the last commit was syncing joins this round.
            while len(jobs) < self._max_group:
                try:
                    jobs.extend(_jobs(q.get_nowait()))
                except queue.Empty:
                    break
            pending: list = []  # consecutive items of one handler, in queue order
            for job in jobs:
                what, fut = job
                if isinstance(what, _Grouped):
                    if pending and pending[0][0].handler is not what.handler:
                        self._handle(ctx, pending)
                        pending = []
                    pending.append(job)
                    continue
                self._handle(ctx, pending)  # keep queue order around calls and the stop marker
                pending = []
                if idle is not None:
                    idle(ctx)
                if what is _STOP:
                    return
                _resolve(fut, what.fn, ctx, *what.args, **what.kwargs)
            self._handle(ctx, pending)

    def _handle(self, ctx, jobs: list) -> None:
        if not jobs:
            return
        futs = [f for _, f in jobs]
        try:
            outs = jobs[0][0].handler(ctx, [j.item for j, _ in jobs])
            if len(outs) != len(jobs):
                raise LedgerError(f"group handler answered {len(outs)} of {len(jobs)} items")
        except BaseException as e:  # a failed commit (or a bug): every caller of the group hears it
            _log.error("group of %d items failed: %s", len(jobs), e)
            for f in futs:
                f.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        self.groups += 1
        self.items += len(jobs)
        for f, r in zip(futs, outs):
            if isinstance(r, BaseException):
                f.set_exception(r)
            else:
                f.set_result(r)


def _append_events(ctx, specs: list[EventSpec]) -> list:
    led = ctx if isinstance(ctx, Ledger) else ctx.ledger
    return led.append_group(specs)


def _resolve(fut: Future, fn, *args, **kwargs) -> None:
    try:
        fut.set_result(fn(*args, **kwargs))
    except BaseException as e:  # the caller's outcome, raised in the caller
        fut.set_exception(e)


__all__ = ["LedgerWorker", "MAX_GROUP_EVENTS", "CALL_TIMEOUT_S"]
