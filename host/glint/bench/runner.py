"""The batch runner: items of a manifest scanned by several scanners in parallel.

One thread per scanner takes the next item from a shared queue, has it placed under
its lens (``Slot.place``: a virtual scanner changes its lens; on a real scanner the
operator is prompted or a feeder command runs, glint.workflows.placing), scans with a fresh host nonce, checks the signed scan,
matches it (1:1 verify or 1:N identify) and records the verification in the ledger.
Ledger writes go through one LedgerWorker thread (single writer); matcher reads are
thread-safe. Every step's time is kept per item, so a report shows where time goes:
device capture / detect / sign (reported by the firmware), the link, host checks,
matching and the ledger commit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable

from glint.bench.manifest import BenchItem
from glint.bench.progress import Progress
from glint.checks import MODE_ONLINE, check_scan
from glint.errors import DeviceError, GlintError, MatchError, UsageError
from glint.registry import device_hex
from glint.workflows.placing import StopRun
from glintcore import proto
from glintcore.errors import GlintError as CoreError

if TYPE_CHECKING:
    from glint.link import Scanner

_log = logging.getLogger(__name__)

SCAN_ATTEMPTS = 2          # a poor capture is retried once (with a new nonce) before it is a failure
JOIN_POLL_S = 0.2          # how often the main thread checks on the scanner threads


@dataclass
class Slot:
    """One scanner of the bench. ``place(item)`` puts the item under the lens (or None)."""

    scanner: Scanner
    place: Callable[[BenchItem], None] | None = None
    name: str = ""

    def __post_init__(self):
        self.name = self.name or getattr(self.scanner, "url", "scanner")


@dataclass
class ItemResult:
    n: int
    item: str | None
    mode: str
    expect: str
    port: str = ""
    device_id: str = ""
    counter: int | None = None
    outcome: str = "error"       # pass | fail | error
    ok: bool = False             # the outcome is what the manifest expected
    matched: str | None = None
    log10_far: float | None = None
    guidance: str = ""
    n_spots: int | None = None
    ledger_index: int | None = None
    t_capture_ms: float | None = None
    t_detect_ms: float | None = None
    t_sign_ms: float | None = None
    t_link_ms: float | None = None
    t_check_ms: float | None = None
    t_match_ms: float | None = None
    t_ledger_ms: float | None = None
    t_total_ms: float | None = None
    error: str = ""
    note: str = ""
    time: str = ""               # when the scan started, ISO 8601 UTC
    operator: str = ""
    certificate: str = ""        # the pass's certificate, relative to the report directory

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class BatchResult:
    batch_id: str
    results: list[ItemResult]
    started: float
    finished: float
    scanners: list[str] = field(default_factory=list)
    stopped_early: bool = False
    interrupted: bool = False  # Ctrl-C: the scans already done are reported, the rest left
    stopped_by: str = ""       # why the operator's prompt ended the batch early ("" if it did not)

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok]

    @property
    def scans_per_minute(self) -> float:
        el = self.finished - self.started
        return 60.0 * len(self.results) / el if el > 0 else 0.0


class BenchContext:
    """What the runner checks and records with.

    ``db_path``: the home's glint.db (registry, nonces, scan log: each scanner thread opens
    its own connection); ``matcher``: glint.match.Database (or None: nothing can match);
    ``record(fn, *args)``: runs ledger work on the ledger thread (a LedgerWorker's
    ``call``), or None to record nothing; ``policy``: glint.checks.FirmwarePolicy.
    """

    def __init__(self, db_path, matcher=None, record: Callable | None = None, policy=None,
                 operator: str | None = None, location: str | None = None):
        self.db_path = db_path
        self.matcher = matcher
        self.record = record
        self.policy = policy
        self.operator, self.location = operator, location
        self._local = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()

    def registry(self):
        """This thread's Registry (SQLite connections are not shared between threads)."""
        reg = getattr(self._local, "reg", None)
        if reg is None:
            from glint.registry import Registry, connect

            reg = self._local.reg = Registry(connect(self.db_path), self.db_path)
            with self._lock:
                self._opened.append(reg)
        return reg

    def close(self) -> None:
        with self._lock:
            for reg in self._opened:
                reg.close()
            self._opened.clear()


def _record_verify(led, item, result, fap, device, operator, location, scan):
    if not led.store.item_leaves(item):  # enrolled in the matcher only: give it a twin first
        led.register_twin(item, operator)
    return led.record_verify(item, result, fap=fap, device=device, operator=operator, location=location,
                             scan=scan).index


def _scan(scanner, nonce: bytes):
    """One MSG_SCAN: (signed or None, guidance, quality, device t_us list)."""
    try:
        body = scanner.request(proto.MSG_SCAN, {"nonce": nonce}, retries=0).body
    except DeviceError as e:
        if getattr(e, "status", None) == proto.ST_POOR_CAPTURE:
            b = getattr(e, "body", None) or {}
            return None, int(b.get("guidance", proto.GD_NO_COATING)), dict(b.get("quality") or {}), None
        raise
    signed = body.get("scan")
    return (bytes(signed) if signed else None, int(body.get("guidance", proto.GD_OK)),
            dict(body.get("quality") or {}), body.get("t_us"))


def scan_item(slot: Slot, it: BenchItem, ctx: BenchContext) -> ItemResult:
    """Place, scan, check, match and record one item on one scanner."""
    from glint.match import identify, verify
    from glint.match.spots import spots_from_descriptor

    r = ItemResult(it.n, it.item, it.mode, it.expect, port=slot.name, note=it.note, operator=ctx.operator or "")
    try:
        if slot.place is not None:
            slot.place(it)   # the operator's wait is not scan time
    except StopRun:
        raise
    except GlintError as e:
        r.error = e.oneline()
        r.ok = False
        return r
    r.time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t_start = time.perf_counter()
    try:
        reg = ctx.registry()
        did = device_hex(slot.scanner.info()["device_id"])
        r.device_id = did
        signed = None
        for _attempt in range(SCAN_ATTEMPTS):
            nonce = reg.issue_nonce(did)
            t0 = time.perf_counter()
            signed, guidance, quality, t_us = _scan(slot.scanner, nonce)
            t_rt = 1000 * (time.perf_counter() - t0)
            r.guidance = proto.GUIDANCE_TEXT.get(guidance, str(guidance))
            r.n_spots = quality.get(0)
            if signed is not None:
                break
        if t_us and len(t_us) >= 3:
            r.t_capture_ms, r.t_detect_ms, r.t_sign_ms = (round(x / 1000.0, 3) for x in t_us[:3])
            r.t_link_ms = round(max(0.0, t_rt - sum(t_us[:3]) / 1000.0), 3)
        else:
            r.t_link_ms = round(t_rt, 3)
        if signed is None:
            raise DeviceError(f"poor capture: {r.guidance}", "place the coated area under the lens")
        t0 = time.perf_counter()
        checked = check_scan(reg, signed, ctx.policy, expect_mode=MODE_ONLINE, expect_device=did)
        r.counter, payload = checked.counter, checked.payload
        r.t_check_ms = round(1000 * (time.perf_counter() - t0), 3)

        t0 = time.perf_counter()
        if ctx.matcher is None or len(ctx.matcher) == 0:
            raise MatchError("no enrolled items to match against", "enroll items first")
        probe = spots_from_descriptor(payload, f"item {it.n}")
        if it.mode == "verify":
            if it.item not in ctx.matcher:
                raise MatchError(f"item {it.item} is not enrolled in the matcher")
            one = verify(ctx.matcher.reference(it.item), probe)
            r.matched = it.item if one.match else None
            r.log10_far = float(one.log10_far)
            r.outcome = "pass" if one.match else "fail"
        else:
            found = identify(ctx.matcher, probe)
            r.matched = found.item
            r.log10_far = float(found.log10_far)
            r.outcome = "pass" if found.item is not None else "fail"
            if it.item and found.item is not None and found.item != it.item:
                r.outcome = "fail"
                r.error = f"identified as {found.item}, expected {it.item}"
        r.t_match_ms = round(1000 * (time.perf_counter() - t0), 3)

        subject = it.item if it.mode == "verify" else r.matched
        if ctx.record is not None and subject:
            t0 = time.perf_counter()
            fap = 10.0 ** r.log10_far if r.outcome == "pass" else None
            try:
                r.ledger_index = ctx.record(_record_verify, subject, r.outcome, fap, r.device_id, ctx.operator,
                                            ctx.location, signed)
            except UsageError as e:  # matched but not a live twin in the ledger: report, keep going
                r.error = r.error or f"not recorded: {e.msg}"
            r.t_ledger_ms = round(1000 * (time.perf_counter() - t0), 3)
        reg.record_outcome(checked.scan_id, subject, r.outcome, r.log10_far, r.ledger_index)
    except (GlintError, CoreError) as e:
        r.outcome = "error"
        r.error = e.oneline() if isinstance(e, GlintError) else str(e)
    r.t_total_ms = round(1000 * (time.perf_counter() - t_start), 3)
    r.ok = (r.outcome == it.expect) if it.expect else r.outcome != "error"
    if r.ok is False and not r.error:
        r.error = f"expected {it.expect}, got {r.outcome}"
    return r


def run_batch(items: list[BenchItem], slots: list[Slot], ctx: BenchContext, progress: Progress | None = None,
              batch_id: str | None = None, stop: threading.Event | None = None) -> BatchResult:
    """Scan ``items`` on ``slots`` in parallel (one thread per slot); results in manifest order.

    A scanner whose link fails stops taking items (its item is reported as an error);
    the others finish the batch. ``stop`` (an Event) ends the batch early between items;
    so does Ctrl-C (KeyboardInterrupt in this thread): every scanner finishes the scan it is
    on, and the result holds the scans done (``interrupted`` True). A second Ctrl-C while
    they finish is raised.
    """
    if not slots:
        raise UsageError("a bench needs at least one scanner", "pass -p/--port URL (repeatable)")
    batch_id = batch_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    work: queue.Queue = queue.Queue()
    for it in items:
        work.put(it)
    results: list[ItemResult] = []
    lock = threading.Lock()
    stop = stop or threading.Event()
    operator_stop: list[str] = []

    def work_loop(slot: Slot) -> None:
        while not stop.is_set():
            try:
                it = work.get_nowait()
            except queue.Empty:
                return
            try:
                r = scan_item(slot, it, ctx)
            except StopRun as e:  # the operator stopped (or stdin closed): the rest is left
                _log.warning("%s: %s", slot.name, e.msg)
                operator_stop.append(e.msg)
                work.put(it)
                stop.set()
                return
            with lock:
                results.append(r)
            if progress is not None:
                progress.advance(failed=not r.ok)
            if r.outcome == "error" and ("did not answer" in r.error or "lost" in r.error):
                _log.error("%s: link failed, this scanner stops: %s", slot.name, r.error)
                return

    # Each worker sets its own Event when it ends. Waiting on those, not on Thread.join: a
    # KeyboardInterrupt inside join() can leave is_alive() False for a thread still running.
    finished = [threading.Event() for _ in slots]

    def worker(i: int, slot: Slot) -> None:
        try:
            work_loop(slot)
        finally:
            finished[i].set()

    def wait_all() -> None:
        for ev in finished:
            while not ev.wait(JOIN_POLL_S):
                pass

    started = time.time()
    threads = [threading.Thread(target=worker, args=(i, s), name=f"bench-{i}", daemon=True)
               for i, s in enumerate(slots)]
    for t in threads:
        t.start()
    interrupted = False
    try:
        wait_all()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        _log.info("interrupted: letting each scanner finish its current scan")
        wait_all()
    if progress is not None:
        progress.finish()
    results.sort(key=lambda r: r.n)
    left = work.qsize()
    return BatchResult(batch_id, results, started, time.time(), [s.name for s in slots],
                       stopped_early=bool(left), interrupted=interrupted,
                       stopped_by=operator_stop[0] if operator_stop else "")


__all__ = ["Slot", "ItemResult", "BatchResult", "BenchContext", "scan_item", "run_batch"]
