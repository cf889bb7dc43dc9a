"""The JSON wire format of ledger events between glint hosts (docs/api.md).

An event travels as ``{"kind", "item", "time", "data", "scan"}``. JSON has no byte
strings, so every ``bytes`` value inside ``data`` (reference digests, scan digests) is
written as the one-key object ``{"b64": "<standard base64>"}`` and read back exactly;
``scan`` (the device-signed scan, optional) is plain base64. The receiving ledger
recomputes the scan digest from the bytes, so it cannot be told a wrong one.
"""

from __future__ import annotations

import base64
import hashlib
import json

from glint.errors import UsageError

BYTES_KEY = "b64"
MAX_DEPTH = 16  # event data is shallow; refuse pathological nesting


def encode_value(v, depth: int = 0):
    """A JSON-able copy of ``v`` with bytes wrapped as {"b64": ...}."""
    if depth > MAX_DEPTH:
        raise UsageError("event data nested too deeply")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {BYTES_KEY: base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dict):
        return {str(k): encode_value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode_value(x, depth + 1) for x in v]
    return v


def decode_value(v, depth: int = 0):
    """Inverse of :func:`encode_value`; raises UsageError on a malformed byte wrapper."""
    if depth > MAX_DEPTH:
        raise UsageError("event data nested too deeply")
    if isinstance(v, dict):
        if set(v) == {BYTES_KEY}:
            return _b64(v[BYTES_KEY], "data")
        return {k: decode_value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_value(x, depth + 1) for x in v]
    return v


def _b64(s, what: str) -> bytes:
    if not isinstance(s, str):
        raise UsageError(f"{what}: base64 value is not a string")
    try:
        return base64.b64decode(s, validate=True)
    except ValueError:
        raise UsageError(f"{what}: bad base64") from None


def event_body(kind: str, item: str, time: int, data: dict, scan: bytes | None = None) -> dict:
    """The request body of POST /v1/events for one event."""
    body = {"kind": kind, "item": item, "time": int(time), "data": encode_value(data)}
    if scan is not None:
        body["scan"] = base64.b64encode(bytes(scan)).decode("ascii")
    return body


def parse_event(body) -> tuple[str, str, int | None, dict, bytes | None]:
    """Validate a decoded request body; return (kind, item, time, data, scan bytes or None)."""
    if not isinstance(body, dict):
        raise UsageError("event body must be a JSON object")
    unknown = set(body) - {"kind", "item", "time", "data", "scan", "reference"}
    if unknown:
        raise UsageError(f"unknown event field(s): {', '.join(sorted(unknown))}")
    kind, item, t = body.get("kind"), body.get("item"), body.get("time")
    if not isinstance(kind, str) or not isinstance(item, str):
        raise UsageError("event needs string 'kind' and 'item'")
    if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t < 0):
        raise UsageError("event 'time' must be a non-negative integer (Unix seconds)")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise UsageError("event 'data' must be an object")
    scan = body.get("scan")
    scan = None if scan is None else _b64(scan, "scan")
    return kind, item, t, decode_value(data), scan


def body_digest(body: dict) -> bytes:
    """SHA-256 of the canonical JSON of a body: a reused idempotency key must carry the same event."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).digest()
