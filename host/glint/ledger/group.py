"""Group commit: appends from many threads share one durable commit (one fsync).

A durable commit costs one fsync of the WAL, so one caller appending one event at a
time is bounded by the disk's fsync rate (a few hundred to a few thousand per second).
When several threads append at once, ``GroupCommitter`` gathers whatever they have
queued while the previous commit was syncing and writes it in the next single commit:
throughput grows with concurrency while every caller is still acknowledged only once
its own event is durable. No artificial delay is added: a lone caller pays one fsync,
as with ``Ledger.append_event``.

    with GroupCommitter.open(path, keys=keys) as gc:      # owns the writer Ledger
        a = gc.append("verify", item, {"res": "pass"})    # from any thread; returns once durable
        note = gc.call(lambda led: led.checkpoint())      # run on the writer thread

Events of one group are independent (``Ledger.append_group``): an event refused by a
custody rule raises UsageError in its own caller only. A failed commit raises
LedgerError in every caller of that group, and none of its events is stored.
Events of one thread are stored in the order that thread appended them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from glint.errors import LedgerError
from glint.ledger.log import Appended, EventSpec, Ledger

_log = logging.getLogger(__name__)

# Upper bound of events in one commit (keeps a commit's latency and memory bounded).
MAX_GROUP_EVENTS = 2000
# How long close() waits for the writer thread to finish what was queued.
CLOSE_TIMEOUT_S = 60.0

_STOP = object()


class GroupCommitter:
    """One writer thread over a ``Ledger``; thread-safe ``append``/``submit``/``call``.

    The ledger is opened on the writer thread (SQLite connections belong to one thread)
    and must not be used directly while the committer runs: use ``call`` instead.
    ``groups`` and ``events`` count commits and events written (a mean group size is
    ``events / groups``).
    """

    def __init__(self, opener, max_group: int = MAX_GROUP_EVENTS, name: str = "ledger-group-commit"):
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._max_group = max(1, int(max_group))
        self.groups = 0
        self.events = 0
        self._closed = False
        self._lock = threading.Lock()
        ready: Future = Future()
        self._thread = threading.Thread(target=self._run, args=(opener, ready), name=name, daemon=True)
        self._thread.start()
        ready.result()  # re-raises an opening error (e.g. a second writer) in the caller

    @classmethod
    def open(cls, path=None, keys=None, durable: bool = True, max_group: int = MAX_GROUP_EVENTS) -> "GroupCommitter":
        """Open the ledger at ``path`` (as ``Ledger.open``) on a new writer thread."""
        return cls(lambda: Ledger.open(path, keys=keys, durable=durable), max_group=max_group)

    # ------------------------------------------------------------ producers

    def submit(self, spec: EventSpec) -> Future:
        """Queue one event; the Future resolves to its ``Appended`` once durable."""
        fut: Future = Future()
        with self._lock:  # no event slips in behind the stop marker
            if self._closed:
                raise LedgerError("the group committer is closed")
            self._q.put((spec, fut))
        return fut

    def append(self, kind: str, item: str, data: dict, time: int | None = None,
               scan: bytes | None = None) -> Appended:
        """Append one event and wait until it is durable (like ``Ledger.append_event``)."""
        return self.submit(EventSpec(kind, item, data, time, scan)).result()

    def append_spec(self, spec: EventSpec) -> Appended:
        return self.submit(spec).result()

    def call(self, fn, *args, **kwargs):
        """Run ``fn(ledger, *args, **kwargs)`` on the writer thread between groups; return its result."""
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise LedgerError("the group committer is closed")
            self._q.put((_Call(fn, args, kwargs), fut))
        return fut.result()

    def close(self) -> None:
        """Write what is queued, then close the ledger and stop the writer thread."""
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
            led = opener()
        except BaseException as e:  # handed to the constructor's caller
            ready.set_exception(e)
            return
        ready.set_result(None)
        try:
            self._loop(led)
        finally:
            led.close()

    def _loop(self, led: Ledger) -> None:
        q = self._q
        while True:
            jobs = [q.get()]
            # Let callers woken by the last commit queue their next event before this group closes.
            time.sleep(0)
            # Everything that queued up while the last commit was syncing joins this group.
            while len(jobs) < self._max_group:
                try:
                    jobs.append(q.get_nowait())
                except queue.Empty:
                    break
            pending: list = []
            for job in jobs:
                what, fut = job
                if isinstance(what, EventSpec):
                    pending.append(job)
                    continue
                self._commit(led, pending)  # keep queue order around calls and the stop marker
                pending = []
                if what is _STOP:
                    return
                _resolve(fut, what.run, led)
            self._commit(led, pending)

    def _commit(self, led: Ledger, jobs: list) -> None:
        if not jobs:
            return
        futs = [f for _, f in jobs]
        try:
            results = led.append_group([s for s, _ in jobs])
        except BaseException as e:  # the commit failed: nothing of the group is stored
            _log.error("group commit of %d events failed: %s", len(jobs), e)
            for f in futs:
                f.set_exception(e)
            return
        self.groups += 1
        for f, r in zip(futs, results):
            if isinstance(r, Exception):
                f.set_exception(r)
            else:
                self.events += 1
                f.set_result(r)


class _Call:
    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def run(self, led):
        return self.fn(led, *self.args, **self.kwargs)


def _resolve(fut: Future, fn, *args) -> None:
    try:
        fut.set_result(fn(*args))
    except BaseException as e:  # the caller's outcome, raised in the caller
        fut.set_exception(e)
