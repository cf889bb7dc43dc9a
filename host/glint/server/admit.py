"""What the HTTP API checks before an uploaded event may reach a leaf.

1. The client-set fields pass the kind's schema (glint.server.schema: types, ranges,
   lengths, a time window).
2. A ``verify`` or ``enroll`` event carries the device-signed scan, which passes
   glint.checks.check_scan against this server's own registry, exactly as a local scan
   does (provisioned, not revoked, signature, firmware policy, counter order per device,
   the nonce when this server issued it; ``relayed=True`` for a nonce the uploading host
   issued and checked). The event's ``dev`` is the device whose signature verified.
3. The match decision is recomputed here, against this server's reference of the item:
   a ``verify`` whose claimed result differs is refused; its ``fap`` is the server's.
   An ``enroll`` brings the reference record (``reference`` in the body) whose SHA-256
   is the event's ``ref``; its own scan must match it, and it becomes the server's
   reference of the item once the event is stored. Its scan is identified (1:N) among
   the server's references first: a coating already enrolled as another item is refused.
4. An assembly's verdict (a ``verify`` with ``parts``) is recomputed from the parts' own
   verify events on this server, each named by the SHA-256 of its signed scan
   (``parts.NAME.scan``): those events passed 2 and 3 when they were uploaded. The verdict
   (twins.assess_parts against this server's assembly definition, and the assembly's own
   coating when it has one) must be the claimed one, part by part. An assembly without a
   coating of its own sends no scan of its own; one with a coating here must send it.

A refusal is a UsageError (HTTP 422) or a ScanRefused (HTTP 422 with its reason code).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import numpy as np

from glint.checks import CheckedScan, FirmwarePolicy, check_scan
from glint.errors import GlintError, MatchError, UsageError
from glint.ledger import events as ev
from glint.server import schema

R_MATCH = "match-disagrees"
R_NO_REFERENCE = "no-reference"
R_ENROLLED = "already-enrolled"
R_NOT_ASSEMBLY = "not-an-assembly"
R_PART_SCAN = "part-scan-missing"
R_PART_STALE = "part-scan-stale"
R_ASSEMBLY = "assembly-disagrees"
R_BODY = "assembly-coating"
ASSEMBLY_WINDOW_S = 3600   # a verdict relies on part scans made at most this long before it


class MatchRefused(UsageError):
    """The server's matcher does not reach the claimed decision; ``reason`` as ScanRefused's."""

    def __init__(self, reason: str, msg: str, hint: str | None = None):
        super().__init__(msg, hint)
        self.reason = reason


@dataclass
class Admitted:
    data: dict
    checked: CheckedScan | None = None
    reference: object | None = None   # glint.match.Reference to store after an enroll


def parse_reference(obj) -> tuple[bytes, int, int]:
    """The wire form ``{"record": base64, "width": int, "height": int}`` -> (record bytes, w, h)."""
    from glint.match.database import RECORD

    if not isinstance(obj, dict) or set(obj) != {"record", "width", "height"}:
        raise UsageError("'reference' must be {record, width, height}")
    w, h = obj["width"], obj["height"]
    if not all(type(x) is int and 16 <= x <= 8192 for x in (w, h)):
        raise UsageError("reference width and height must be integers in 16..8192")
    try:
        rec = base64.b64decode(obj["record"], validate=True) if isinstance(obj["record"], str) else None
    except ValueError:
        rec = None
    if rec is None or len(rec) != RECORD.itemsize:
        raise UsageError(f"reference record must be base64 of {RECORD.itemsize} bytes")
    return rec, w, h


def reference_wire(ref) -> dict:
    """The wire form of a reference (what an enroll upload carries)."""
    from glint.match.database import to_record

    return {"record": base64.b64encode(to_record(ref).tobytes()).decode("ascii"), "width": int(ref.width),
            "height": int(ref.height)}


def _reference(rec: bytes, width: int, height: int, params):
    from glint.match import MatchParams, Reference
    from glint.match.database import MAX_REF_SPOTS, RECORD, SPOT_SCALE

    r = np.frombuffer(rec, RECORD)[0]
    n = int(r["n"])
    if not 4 <= n <= MAX_REF_SPOTS:
        raise UsageError(f"reference record holds {n} spots (4..{MAX_REF_SPOTS})")
    xy = r["xy"][:n].astype(np.float64) / SPOT_SCALE
    if (xy[:, 0] >= width).any() or (xy[:, 1] >= height).any():
        raise UsageError("reference spots lie outside its frame")
    return Reference(xy, np.ones(n), r["support"][:n].astype(np.int64), width, height, params or MatchParams(),
                     max(1, int(r["captures"])))


def _match(ref, checked: CheckedScan):
    from glint.match import verify
    from glint.match.spots import spots_from_fields

    probe = spots_from_fields(checked.fields, source=f"scan {checked.device_id}/{checked.counter}")
    return verify(ref, probe)


def fap_of(log10_far: float | None) -> float | None:
    """The fap stored for a match (as glint.workflows.scan records it)."""
    return None if log10_far is None else 10.0 ** min(0.0, log10_far)


def admit(reg, match_db, policy: FirmwarePolicy | None, kind: str, item: str, t: int | None, data: dict,
          scan: bytes | None, reference=None, now: float | None = None, skip_scan_check: CheckedScan | None = None,
          ledger=None) -> tuple[int, Admitted]:
    """Check one uploaded event; return (time, Admitted). Runs on the server's ledger thread.

    The scan acceptance (registry) is written in the caller's transaction: the caller
    rolls it back when a later step refuses the event. ``ledger``: the server's ledger, to
    check an assembly's verdict against its parts' stored verify events (none: refused).
    """
    t = schema.check_event(kind, item, t, data, now)
    data = dict(data)
    if "scan" in data:
        raise UsageError("a client may not set the scan digest", "send the scan bytes in 'scan'")
    if reference is not None and kind != ev.ENROLL:
        raise UsageError("only an enroll event carries a reference")
    if kind not in (ev.VERIFY, ev.ENROLL):
        if scan is not None:
            raise UsageError(f"a {kind} event carries no scan")
        return t, Admitted(data)
    if scan is None and kind == ev.VERIFY and "parts" in data:  # an assembly without a coating of its own
        for k in ("fap", "dev", "coat"):
            if k in data:
                raise UsageError(f"a verdict without a scan of its own has no {k!r}")
        check_assembly_verdict(ledger, item, t, data, None)
        if item in match_db:
            raise MatchRefused(R_BODY, f"{item} has its own coating here: its verdict carries the scan of it",
                               "scan the assembly itself too (glint scan --item ITEM --parts)")
        return t, Admitted(data)
    if scan is None:
        raise UsageError(f"a {kind} event must carry the device-signed scan it records",
                         "send the COSE_Sign1 bytes in 'scan' (base64)")
    checked = skip_scan_check or check_scan(reg, scan, policy, now=now, relayed=True)
    if data.get("dev", checked.device_id) != checked.device_id:
        raise UsageError(f"{kind} event names device {data['dev']!r}, but its scan is signed by {checked.device_id}")
    data["dev"] = checked.device_id
    if kind == ev.VERIFY:
        try:
            ref = match_db.reference(item)
        except (MatchError, UsageError):
            raise MatchRefused(R_NO_REFERENCE, f"this server holds no reference of {item}: it cannot check the match",
                               "upload the item's enroll event (with its reference) first") from None
        res = _match(ref, checked)
        got = "pass" if res.match else "fail"
        if "parts" in data:  # an assembly with its own coating: that scan and its parts' events
            check_assembly_verdict(ledger, item, t, data, got)
        elif got != data["res"]:
            raise MatchRefused(R_MATCH, f"the server's matcher says {got} for this scan of {item}, "
                               f"not {data['res']} ({res.reason or 'log10 FAR %.1f' % res.log10_far})")
        fap = fap_of(res.log10_far)
        if fap is None:
            data.pop("fap", None)
        else:
            data["fap"] = fap
        return t, Admitted(data, checked)
    # enroll
    if reference is None or "ref" not in data:
        raise UsageError("an enroll upload carries its reference ('reference') and its digest ('ref')")
    rec, w, h = parse_reference(reference)
    if hashlib.sha256(rec).digest() != data["ref"]:
        raise UsageError("the reference does not hash to the event's 'ref'")
    try:
        ref = _reference(rec, w, h, match_db.params)
        res = _match(ref, checked)
    except GlintError as e:
        raise UsageError(f"reference of {item} is unusable: {e.msg}") from None
    if not res.match:
        raise MatchRefused(R_MATCH, f"the enroll scan does not match the uploaded reference of {item} "
                           f"({res.reason or 'log10 FAR %.1f' % res.log10_far})")
    _not_enrolled_elsewhere(match_db, checked, item)
    return t, Admitted(data, checked, ref)


def _not_enrolled_elsewhere(match_db, checked: CheckedScan, item: str) -> None:
    """Identify (1:N) the enroll scan among this server's references first, as ``glint intake`` does:
    a coating already enrolled as another item is refused (one coating, one twin)."""
    from glint.match import identify, spots_from_descriptor

    if len(match_db) == 0:
        return
    probe = spots_from_descriptor(checked.payload, source=f"scan {checked.device_id}/{checked.counter}")
    hit = identify(match_db, probe)
    if hit.item is not None and hit.item != item:
        raise MatchRefused(R_ENROLLED, f"this coating is already enrolled here as {hit.item}, not {item}",
                           f"its twin is {hit.item} (GET /v1/items/{hit.item})")


def _part_event(ledger, item: str, digest: bytes):
    """The verify event of ``item`` on this server that records the scan with SHA-256 ``digest``."""
    try:
        events = ledger.item(item).events
    except UsageError:
        return None
    return next((e for e in reversed(events) if e.kind == ev.VERIFY and e.data.get("scan") == digest), None)


def check_assembly_verdict(ledger, item: str, t: int, data: dict, body: str | None) -> None:
    """Recompute an assembly's verdict from its parts' verify events here; refuse any other claim.

    ``body``: the server's match result of the assembly's own coating (None: it has none).
    A part claimed to pass names its scan (``scan``: SHA-256); a part without one (skipped at
    the scanner) counts as failing. Each named scan must be a verify event of the item the part
    showed (or of the expected part when it showed none), made within ASSEMBLY_WINDOW_S before
    the verdict; the verdict is twins.assess_parts over those events' results.
    """
    from glint.ledger.twins import assess_parts

    if ledger is None:
        raise MatchRefused(R_NOT_ASSEMBLY, "this server cannot check an assembly's verdict here")
    try:
        st = ledger.item(item)
    except UsageError:
        raise MatchRefused(R_NOT_ASSEMBLY, f"unknown item {item}", "upload its register event first") from None
    if not st.parts:
        raise MatchRefused(R_NOT_ASSEMBLY, f"{item} has no parts here: a verdict with parts is refused",
                           "define the assembly first (POST /v1/assemblies)")
    claimed = data["parts"]
    if set(claimed) != set(st.parts):
        raise MatchRefused(R_ASSEMBLY, f"the verdict names parts {', '.join(sorted(claimed))}, but {item} has "
                           f"{', '.join(sorted(st.parts))} here")
    results: dict[str, dict] = {}
    seen: set[bytes] = set()
    for name, r in sorted(claimed.items()):
        digest = r.get("scan")
        if digest is None:
            if r["res"] == "pass":
                raise MatchRefused(R_PART_SCAN, f"part {name!r} of {item} is claimed to pass without naming its "
                                   "scan", "send parts.NAME.scan: the SHA-256 of the part's signed scan")
            results[name] = {"res": "fail", "item": None}
            continue
        if digest in seen:
            raise MatchRefused(R_ASSEMBLY, f"part {name!r} of {item} names a scan another part names")
        seen.add(digest)
        subject = r.get("item") or st.parts[name]
        e = _part_event(ledger, subject, digest)
        if e is None:
            raise MatchRefused(R_PART_SCAN, f"no verify event of {subject} here records the scan named for part "
                               f"{name!r} of {item}", "upload the part's verify event (with its signed scan) first")
        if not t - ASSEMBLY_WINDOW_S <= e.time <= t:
            raise MatchRefused(R_PART_STALE, f"the scan of part {name!r} (event {e.index}) was made "
                               f"{t - e.time} s from the verdict; at most {ASSEMBLY_WINDOW_S} s before it")
        results[name] = {"res": e.data["res"], "item": subject if e.data["res"] == "pass" else None}
    states = {}
    for r in results.values():
        if r["item"] is not None and r["item"] not in states:
            states[r["item"]] = ledger.item(r["item"])
    verdicts = assess_parts(st, results, states)
    passed = body != "fail" and all(v.belongs for v in verdicts)
    for v in verdicts:
        c = claimed[v.part]
        if (c["res"] == "pass") != v.belongs or c.get("item") != v.item:
            raise MatchRefused(R_ASSEMBLY, f"the server's verdict on part {v.part!r} of {item} is "
                               f"{'pass' if v.belongs else 'fail'} ({v.reason}), not the claimed {c['res']}")
    if ("pass" if passed else "fail") != data["res"]:
        why = "its own coating did not verify" if body == "fail" else "; ".join(
            v.reason for v in verdicts if not v.belongs)
        raise MatchRefused(R_ASSEMBLY, f"the server's verdict on {item} is {'pass' if passed else 'fail'}"
                           + ("" if passed else f" ({why})") + f", not {data['res']}")
