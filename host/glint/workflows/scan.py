"""One scan, end to end: fresh nonce -> scanner -> checks -> match -> ledger -> certificate.

    with HostSession(home) as host, open_scanner(url) as sc:
        out = host.scan_and_process(sc, item="acme:BAG-1", on_guidance=print)
        out.result, out.log10_far, out.ledger_index, out.cert_path, out.timings

``HostSession`` owns the home's registry (glint.db), matcher database and ledger for
the life of a session, so a batch of scans pays the opening costs once. The ledger
has one writer at a time: keep one session per home and process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from glint.checks import MODE_ONLINE, CheckedScan, FirmwarePolicy, ScanRefused, check_scan
from glint.errors import DeviceError, LinkError, MatchError, UsageError
from glint.home import Home
from glint.link import Scanner
from glint.registry import Registry, device_hex
from glintcore import proto

_log = logging.getLogger(__name__)

MAX_CAPTURE_ATTEMPTS = 3  # poor captures retried (with operator guidance) before giving up
MAX_LINK_ATTEMPTS = 2  # a scan whose answer was lost is asked again once, with a new nonce

RES_PASS = "pass"
RES_FAIL = "fail"
RES_UNKNOWN = "unknown"  # identify found no enrolled item


@dataclass
class ScanOutcome:
    """What the host concluded about one accepted scan."""

    checked: CheckedScan
    item: str | None
    result: str  # pass / fail / unknown
    log10_far: float | None = None
    matched: int | None = None
    reason: str = ""
    ledger_index: int | None = None
    cert_path: Path | None = None
    timings: dict = field(default_factory=dict)  # seconds per stage: check, match, ledger, cert

    @property
    def passed(self) -> bool:
        return self.result == RES_PASS

    def to_dict(self) -> dict:
        return {"device": self.checked.device_id, "counter": self.checked.counter, "item": self.item,
                "result": self.result, "log10_far": self.log10_far, "matched": self.matched,
                "reason": self.reason, "ledger_index": self.ledger_index,
                "cert": str(self.cert_path) if self.cert_path else None,
                "timings_ms": {k: round(v * 1000, 3) for k, v in self.timings.items()}}


_SAFE_NAMES = 4096  # item ids whose file-name spelling a session keeps


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fap_of(log10_far: float | None) -> float | None:
    """The false-accept probability recorded for a match (capped at 1)."""
    return None if log10_far is None else 10.0 ** min(0.0, log10_far)


class PoorCapture(DeviceError):
    """Every capture attempt was poor; ``guidance`` holds the last guidance code."""


def acquire(reg: Registry, scanner: Scanner, policy: FirmwarePolicy | None = None,
            attempts: int = MAX_CAPTURE_ATTEMPTS, on_guidance: Callable[[str], None] | None = None,
            accept_poor: bool = False, sync_later: bool = False) -> tuple[CheckedScan, float]:
    """Ask the scanner for one scan bound to a fresh host nonce and check it.

    A poor capture is retried (``on_guidance`` gets the operator text each time); a lost
    answer is asked again once with a NEW nonce (the lost one stays unused and expires).
    Returns (checked scan, seconds spent in the checks). ``sync_later``: the nonce and the
    acceptance are committed without waiting for the disk (check_scan); the caller waits
    with ``reg.wait_durable()`` before acting on the scan (HostSession.process does).
    """
    info = scanner.info()
    did = device_hex(info["device_id"])
    dev = reg.device(did)
    if dev is None:
        raise UsageError(f"scanner {did} on {scanner.url} is not provisioned",
                         hint=f"provision it first: glint device provision {scanner.url}")
    if dev.revoked:
        raise ScanRefused("revoked", f"scanner {did} is revoked ({dev.revoke_reason})",
                          "a revoked scanner stays refused; provision a new one", did)
    guidance = proto.GD_OK
    link_tries = 0
    for _ in range(max(1, attempts)):
        nonce = reg.issue_nonce(did, sync_later=sync_later)
        try:
            reply = scanner.scan(nonce, accept_poor=accept_poor)
        except LinkError:
            link_tries += 1
            if link_tries >= MAX_LINK_ATTEMPTS:
                raise
            _log.info("scan answer lost; scanning again with a new nonce")
            scanner.info(refresh=True)  # reconnects (or fails with one clear line)
            continue
        if reply.signed is None:
            guidance = reply.guidance
            if on_guidance:
                on_guidance(reply.guidance_text)
            continue
        t0 = time.perf_counter()
        checked = check_scan(reg, reply.signed, policy, expect_mode=MODE_ONLINE, expect_device=did,
                             sync_later=sync_later)
        return checked, time.perf_counter() - t0
    raise PoorCapture(f"no usable capture after {attempts} attempts: "
                      f"{proto.GUIDANCE_TEXT.get(guidance, 'poor capture')}",
                      hint="place the coated area under the lens, hold still, and scan again")


class HostSession:
    """The host companion's state for one glint home: registry, matcher database, ledger."""

    def __init__(self, home: Home | str | Path | None = None, durable: bool = True, operator: str | None = None,
                 location: str | None = None):
        self.home = home if isinstance(home, Home) else Home(home)
        self.home.ensure()
        self.registry = Registry.open(self.home)
        # The scan log's commits are fsynced behind the session's work (the disk's latency overlaps
        # the matching); process() waits for them before it records or reports a scan.
        self.registry.sync_behind()
        self.policy = FirmwarePolicy.from_config(self.home.section("firmware"))
        self.durable = durable
        self.operator = operator
        self.location = location
        self._db = None
        self._ledger = None
        self._keys = None
        self._certs_dir: str | None = None  # made once per session
        self._safe_names: dict[str, str] = {}  # item id -> its certificate files' name part

    # --- lazily opened parts -----------------------------------------------------------------
    @property
    def db(self):
        if self._db is None:
            from glint.match import open_references

            self._db = open_references(self.home)
        return self._db

    @property
    def keys(self):
        if self._keys is None:
            from glint.ledger import Keys

            self._keys = Keys.load(self.home.ledger_dir, create=True)
        return self._keys

    @property
    def ledger(self):
        if self._ledger is None:
            from glint.ledger import Ledger

            self._ledger = Ledger.open(self.home.ledger_target, keys=self.keys, durable=self.durable)
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._db is not None:
            self._db.close()
            self._db = None
        self.registry.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the workflow ---------------------------------------------------------------------------
    def scan_and_process(self, scanner: Scanner, item: str | None = None, certificate: bool = True,
                         on_guidance: Callable[[str], None] | None = None,
                         attempts: int = MAX_CAPTURE_ATTEMPTS, via: dict | None = None) -> ScanOutcome:
        """One scan on ``scanner``, then 1:1 verify (``item``) or 1:N identify (no item).

        ``via`` ({"scheme", "value"}): ``item`` was found by that secondary identifier
        (glint.workflows.lineage); the verify event records it and the coating checked."""
        checked, t_check = acquire(self.registry, scanner, self.policy, attempts, on_guidance, sync_later=True)
        out = self.process(checked, item, certificate, via=via)
        out.timings = {"check": t_check, **out.timings}
        return out

    def process(self, checked: CheckedScan, item: str | None = None, certificate: bool = True,
                via: dict | None = None) -> ScanOutcome:
        """Match an accepted scan, record it in the ledger, issue a certificate when it passed.

        The scan's acceptance (check_scan with ``sync_later``) is made durable while it is
        matched, and waited for before anything is recorded. The verify event is made durable
        while its certificate is built and self-checked (Ledger.sync_later), and waited for
        before the certificate is written or the outcome noted: what this returns is durable."""
        out = self.match(checked, item)
        timings = out.timings
        t0 = time.perf_counter()
        self.registry.wait_durable()
        timings["match"] += time.perf_counter() - t0  # the wait shows in the stage it overlaps
        if out.item is not None:
            led = self.ledger
            t0 = time.perf_counter()
            self._ensure_registered(out.item)
            coat = None
            if via is not None:  # say which coating authenticated what the identifier found
                active = led.item(out.item).active_coatings()
                coat = active[-1].id if active else None
            with led.sync_later():
                a = led.record_verify(out.item, out.result, fap=fap_of(out.log10_far), device=checked.device_id,
                                      operator=self.operator, location=self.location, scan=checked.signed,
                                      coating=coat, via=via)
            t1 = time.perf_counter()
            blob = None
            staged = None
            try:
                if certificate and out.passed:
                    blob = led.issue_certificate(a.index)  # built while the event is fsynced
                    # its file written under a temporary name meanwhile too: named once the event is durable
                    staged = self._stage_certificate(blob, a.index, out.item)
            finally:
                try:
                    led.wait_durable()  # nothing about the event leaves before it is durable
                except BaseException:
                    if staged is not None:
                        _unlink_quietly(staged[0])
                    raise
            out.ledger_index = a.index
            if blob is None:
                timings["ledger"] = time.perf_counter() - t0
            else:
                timings["ledger"] = t1 - t0  # the wait for its fsync shows in the stage it overlaps
                out.cert_path = self.save_certificate(blob, a.index, out.item, a.leaf_hash, staged=staged)
                timings["cert"] = time.perf_counter() - t1
        self.record_outcome(out)
        out.timings = timings
        return out

    def record_outcome(self, out: ScanOutcome) -> None:
        self.registry.record_outcome(out.checked.scan_id, out.item, out.result, out.log10_far, out.ledger_index,
                                     str(out.cert_path) if out.cert_path else None, sync_later=True)

    def verify_spec(self, out: ScanOutcome, note: str | None = None):
        """The ledger event (EventSpec) of a matched scan, for workflows that append it with others."""
        from glint.ledger import EventSpec

        data = {k: v for k, v in {"res": out.result, "fap": fap_of(out.log10_far), "dev": out.checked.device_id,
                                  "op": self.operator, "loc": self.location, "note": note}.items() if v is not None}
        return EventSpec("verify", out.item or "", data, scan=out.checked.signed)

    def match(self, checked: CheckedScan, item: str | None = None) -> ScanOutcome:
        """Match an accepted scan: 1:1 against ``item``, else 1:N; nothing is recorded."""
        from glint.match import identify, verify
        from glint.match.spots import spots_from_fields

        timings = {}
        t0 = time.perf_counter()
        probe = spots_from_fields(checked.fields, source=f"scan {checked.device_id}/{checked.counter}")
        if len(self.db) == 0:
            raise MatchError("no items are enrolled in this home", hint="enroll items first: glint enroll")
        if item is not None:
            if item not in self.db:
                raise UsageError(f"item {item!r} is not enrolled here", hint="enroll it first: glint enroll")
            res = verify(self.db.reference(item), probe)
            out = ScanOutcome(checked, item, RES_PASS if res.match else RES_FAIL, res.log10_far, res.matched,
                              res.reason)
        else:
            hit = identify(self.db, probe)
            if hit.item is None:
                out = ScanOutcome(checked, None, RES_UNKNOWN, hit.log10_far, reason="no enrolled item matches")
            else:
                out = ScanOutcome(checked, hit.item, RES_PASS, hit.log10_far, reason="identified")
        timings["match"] = time.perf_counter() - t0
        out.timings = timings
        return out

    def _ensure_registered(self, item: str) -> None:
        """Items enrolled before the ledger existed (or by the bare matcher CLI) get a register event."""
        # The writer's cached custody state (no read once the item is known; else one row).
        if self.ledger.current(item) is None:
            self.ledger.register_twin(item, self.operator)
            _log.info("registered %s in the ledger", item)

    def write_certificate(self, index: int, item: str) -> Path:
        """Issue the certificate of verify event ``index`` and save it (``save_certificate``)."""
        return self.save_certificate(self.ledger.issue_certificate(index), index, item)

    def save_certificate(self, blob: bytes, index: int, item: str, leaf_hash: bytes | None = None,
                         staged: tuple[str, str] | None = None) -> Path:
        """Write an issued certificate to ``certs/<item>-<index>.cose`` and publish it for this home's
        `glint serve` (``certs/by-id/<id>.cose``, glint.publish); ``leaf_hash``: its event's, when
        the caller has it (else one row is read); ``staged``: what ``_stage_certificate`` wrote for
        these bytes (then only named here). Returns the first path."""
        from glint import publish
        from glint.ledger.cert import cert_id

        if leaf_hash is None:
            row = self.ledger.store.leaf(index)  # the leaf's hash, without decoding the event again
            assert row is not None  # the certificate was issued for it
            leaf_hash = row.hash
        tmp, path = staged if staged is not None else self._stage_certificate(blob, index, item)
        try:
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        publish.publish(self.home, blob, cert_id(leaf_hash), same_as=path)
        return Path(path)

    def _stage_certificate(self, blob: bytes, index: int, item: str) -> tuple[str, str]:
        """Write a certificate to a temporary file beside ``certs/<item>-<index>.cose``; return (the
        temporary path, the final one). ``save_certificate`` names it: a reader never sees a partial
        file under the final name, and ``process`` writes it while the verify event is fsynced."""
        certs = self._certs_dir
        if certs is None:
            self.home.certs_dir.mkdir(parents=True, exist_ok=True)
            certs = self._certs_dir = str(self.home.certs_dir)
        safe = self._safe_names.get(item)
        if safe is None:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in item)
            if len(self._safe_names) >= _SAFE_NAMES:
                self._safe_names.clear()
            self._safe_names[item] = safe
        path = os.path.join(certs, f"{safe}-{index}.cose")
        tmp = path[:-len(".cose")] + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(blob)
            while view:  # one write for a certificate; a short one (a full disk) goes on or raises
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        os.close(fd)
        return tmp, path

    def reference_digest(self, item: str) -> bytes:
        from glint.match.database import to_record

        return hashlib.sha256(to_record(self.db.reference(item)).tobytes()).digest()
