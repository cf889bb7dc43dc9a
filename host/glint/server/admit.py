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
          scan: bytes | None, reference=None, now: float | None = None, skip_scan_check: CheckedScan | None = None
          ) -> tuple[int, Admitted]:
    """Check one uploaded event; return (time, Admitted). Runs on the server's ledger thread.

    The scan acceptance (registry) is written in the caller's transaction: the caller
    rolls it back when a later step refuses the event.
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
        if got != data["res"]:
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
