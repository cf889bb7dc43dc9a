"""What a client may set in an uploaded event: one schema per kind (types, ranges, lengths, times).

The ledger's own checks (glint.ledger.events.check_data) say which fields exist; this
module says what values an API client may put in them. Fields the server derives itself
are not client-settable: ``scan`` (the digest of the uploaded scan bytes), ``dev`` (the
device whose signature verified) and ``fap`` (recomputed by the server's matcher).
Anything not described here is refused with the field's name.
"""

from __future__ import annotations

import math
import time as _time

from glint.errors import UsageError
from glint.ledger import events as ev

MAX_NAME = 128              # brand, operator, location, owner, ...
MAX_NOTE = 512
MAX_PASSPORT_FIELDS = 64
MAX_PARTS = 32
EARLIEST_TIME = 1577836800  # 2020-01-01T00:00:00Z: no glint event is older
MAX_AGE_S = 400 * 86400     # an offline host may upload events this old (a season away, with margin)
MAX_SKEW_S = 300            # and this far ahead of the server's clock
COATING_ID_MAX = 32
TEXT_DOC = "printable characters (no control, format or line-separator characters)"


def _json(schema: dict):
    """Attach the JSON Schema (OpenAPI 3.1) of what a check accepts: glint.server.openapi reads it."""
    def mark(check):
        setattr(check, "json", schema)  # noqa: B010  (a function attribute mypy cannot see declared)
        return check
    return mark


def _text_schema(n: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": n, "description": f"1..{n} {TEXT_DOC}"}


def _text(kind, name, v, n=MAX_NAME):
    if not isinstance(v, str) or not v or len(v) > n or not v.isprintable():
        raise UsageError(f"{kind} field {name!r} must be 1..{n} printable characters")


@_json({"$ref": "#/components/schemas/ItemId"})
def _item(kind, name, v):
    try:
        ev.check_item_id(v)
    except UsageError as e:
        raise UsageError(f"{kind} field {name!r}: {e.msg}") from None


@_json({"$ref": "#/components/schemas/Digest"})
def _digest(kind, name, v):
    if not isinstance(v, bytes) or len(v) != 32:
        raise UsageError(f"{kind} field {name!r} must be a 32-byte SHA-256 digest ({{\"b64\": ...}})")


_TIME_JSON = {"type": "integer", "minimum": EARLIEST_TIME, "maximum": ev.MAX_TIME, "description": "Unix seconds"}


@_json(_TIME_JSON)
def _time_field(kind, name, v):
    if type(v) is not int or not EARLIEST_TIME <= v <= ev.MAX_TIME:
        raise UsageError(f"{kind} field {name!r} must be integer Unix seconds from {EARLIEST_TIME}")


def _scalar_map(kind, name, v, n):
    if not isinstance(v, dict) or not v or len(v) > n:
        raise UsageError(f"{kind} field {name!r} must be a map of 1..{n} entries")
    for k, x in v.items():
        _text(kind, f"{name}.{k}", k)
        if isinstance(x, bool) or x is None:
            continue
        if isinstance(x, str):
            if len(x) > MAX_NOTE or not x.isprintable():
                raise UsageError(f"{kind} field {name}.{k} must be at most {MAX_NOTE} printable characters")
        elif isinstance(x, int):
            if not -(1 << 53) <= x <= 1 << 53:
                raise UsageError(f"{kind} field {name}.{k} is out of range")
        elif isinstance(x, float):
            if not math.isfinite(x):
                raise UsageError(f"{kind} field {name}.{k} must be finite")
        else:
            raise UsageError(f"{kind} field {name}.{k} must be text, a number, true/false or null")


@_json({"type": "object", "required": ["class"], "additionalProperties": False,
        "properties": {"class": {"enum": list(ev.PROVENANCE)}, "by": _text_schema(MAX_NAME),
                       "reason": _text_schema(MAX_NAME), "at": _TIME_JSON}})
def _prov(kind, name, v):
    if not isinstance(v, dict) or set(v) - {"class", "by", "at", "reason"}:
        raise UsageError(f"{kind} field 'prov' takes class, by, at, reason")
    if v.get("class") not in ev.PROVENANCE:
        raise UsageError("provenance class must be 'factory' or 'later'")
    for k in ("by", "reason"):
        if k in v:
            _text(kind, f"prov.{k}", v[k])
    if "at" in v:
        _time_field(kind, "prov.at", v["at"])


@_json({"type": "object", "minProperties": 1, "maxProperties": MAX_PARTS,
        "propertyNames": {"minLength": 1, "maxLength": COATING_ID_MAX},
        "additionalProperties": {"$ref": "#/components/schemas/ItemId"}})
def _parts(kind, name, v):
    if not isinstance(v, dict) or not v or len(v) > MAX_PARTS:
        raise UsageError(f"{kind} field 'parts' must map 1..{MAX_PARTS} part names to item ids")
    for k, x in v.items():
        _text(kind, f"parts.{k}", k, COATING_ID_MAX)
        _item(kind, f"parts.{k}", x)


def _one_of(*values):
    @_json({"enum": list(values)})
    def check(kind, name, v):
        if v not in values:
            raise UsageError(f"{kind} field {name!r} must be one of {', '.join(values)}, not {v!r}")
    return check


@_json(_text_schema(MAX_NAME))
def _name(kind, name, v):
    _text(kind, name, v)


@_json(_text_schema(MAX_NOTE))
def _note(kind, name, v):
    _text(kind, name, v, MAX_NOTE)


@_json(_text_schema(COATING_ID_MAX))
def _coat(kind, name, v):
    _text(kind, name, v, COATING_ID_MAX)


@_json({"type": "object", "minProperties": 1, "maxProperties": MAX_PASSPORT_FIELDS,
        "propertyNames": {"minLength": 1, "maxLength": MAX_NAME},
        "additionalProperties": {"anyOf": [{"type": "string", "maxLength": MAX_NOTE}, {"type": "boolean"},
                                           {"type": "null"}, {"type": "number"}]},
        "description": f"1..{MAX_PASSPORT_FIELDS} fields: text (at most {MAX_NOTE} {TEXT_DOC}), "
                       "numbers (integers within +-2^53), true/false or null"})
def _passport(kind, name, v):
    _scalar_map(kind, name, v, MAX_PASSPORT_FIELDS)


@_json({"type": "integer", "minimum": 0, "maximum": (1 << 62) - 1,
        "description": "log index of an event (the item's scan this event relies on)"})
def _index(kind, name, v):
    if type(v) is not int or not 0 <= v < 1 << 62:
        raise UsageError(f"{kind} field {name!r} must be a log index")


@_json({"type": "number", "minimum": 0})
def _price(kind, name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise UsageError(f"{kind} field {name!r} must be a non-negative number")


_WHO = {"op": _name, "loc": _name}


@_json({"type": "string", "minLength": 1, "maxLength": ev.ORG_NAME_MAX, "pattern": "^[a-z0-9][a-z0-9-]*$",
        "description": "an organization of this deployment (glint.orgs)"})
def _org(kind, name, v):
    try:
        ev.check_org(v)
    except UsageError as e:
        raise UsageError(f"{kind} field {name!r}: {e.msg}", e.hint) from None


@_json({"type": "string", "pattern": f"^[0-9a-f]{{{ev.SHIPMENT_ID_LEN}}}$", "description": "a shipment id"})
def _shipment(kind, name, v):
    try:
        ev.check_shipment_id(v)
    except UsageError as e:
        raise UsageError(f"{kind} field {name!r}: {e.msg}") from None


@_json({"type": "string", "minLength": 1, "maxLength": MAX_NOTE, "description": f"1..{MAX_NOTE} {TEXT_DOC}, "
                                                                               "not only spaces"})
def _reason(kind, name, v):
    _text(kind, name, v, MAX_NOTE)
    if not v.strip():
        raise UsageError(f"{kind} field {name!r} must say why (not only spaces)")

_ITEM_REF = {"$ref": "#/components/schemas/ItemId"}


@_json({"type": "array", "minItems": 1, "maxItems": MAX_PARTS, "items": _ITEM_REF,
        "description": "the items a parent was made into (derive)"})
def _children(kind, name, v):
    if not isinstance(v, list) or not v or len(v) > MAX_PARTS:
        raise UsageError(f"{kind} field 'children' must list 1..{MAX_PARTS} item ids")
    for i, x in enumerate(v):
        _item(kind, f"children[{i}]", x)


@_json({"type": "object", "required": ["item"], "additionalProperties": False,
        "properties": {"item": _ITEM_REF, "how": _text_schema(MAX_NOTE), "origin": _text_schema(MAX_NOTE)},
        "description": "the parent a derived item was made from (glint derive)"})
def _lineage(kind, name, v):
    if not isinstance(v, dict) or "item" not in v or set(v) - {"item", "how", "origin"}:
        raise UsageError(f"{kind} field 'from' takes item, how, origin")
    _item(kind, "from.item", v["item"])
    for k in ("how", "origin"):
        if k in v:
            _note(kind, f"from.{k}", v[k])


@_json({"type": "object", "minProperties": 1, "maxProperties": MAX_PARTS,
        "propertyNames": {"minLength": 1, "maxLength": COATING_ID_MAX},
        "additionalProperties": {"type": "object", "required": ["res"], "additionalProperties": False,
                                 "properties": {"res": {"enum": list(ev.RESULTS)},
                                                "item": {"anyOf": [_ITEM_REF, {"type": "null"}]},
                                                "scan": {"$ref": "#/components/schemas/Digest"}}},
        "description": "an assembly's verdict per part: belongs (pass) or not, the item the part showed, and the "
                       "SHA-256 of the part's signed scan (its own verify event); the server recomputes the "
                       "verdict from those events (glint.server.admit)"})
def _part_results(kind, name, v):
    if not isinstance(v, dict) or not v or len(v) > MAX_PARTS:
        raise UsageError(f"{kind} field 'parts' must map 1..{MAX_PARTS} part names to results")
    for k, r in v.items():
        _text(kind, f"parts.{k}", k, COATING_ID_MAX)
        if not isinstance(r, dict) or set(r) - {"res", "item", "scan"} or r.get("res") not in ev.RESULTS:
            raise UsageError(f"{kind} field parts.{k} must be {{res: pass|fail, item, scan}}")
        if r.get("item") is not None:
            _item(kind, f"parts.{k}.item", r["item"])
        if "scan" in r:
            _digest(kind, f"parts.{k}.scan", r["scan"])


@_json({"type": "object", "required": ["scheme", "value"], "additionalProperties": False,
        "properties": {"scheme": {"enum": list(ev.ID_SCHEMES)}, "value": _text_schema(MAX_NOTE)},
        "description": "the secondary identifier the item was looked up by (it does not authenticate)"})
def _via(kind, name, v):
    if not isinstance(v, dict) or set(v) != {"scheme", "value"} or v["scheme"] not in ev.ID_SCHEMES:
        raise UsageError(f"{kind} field 'via' is {{scheme: {'|'.join(ev.ID_SCHEMES)}, value}}")
    _note(kind, "via.value", v["value"])


# kind -> field -> check. Fields a client cannot set are absent. Every check carries ``.json``, the
# JSON Schema of what it accepts (the OpenAPI document's event schemas are built from this table).
FIELDS = {
    ev.REGISTER: {"brand": _name, "prov": _prov, "passport": _passport,
                  "parts": _parts, "of": _item, "part": _coat, **_WHO},
    ev.ENROLL: {"coat": _coat, "ref": _digest, "op": _name, "loc": _name, "replaces": _coat, "part": _coat},
    ev.VERIFY: {"res": _one_of(*ev.RESULTS), "op": _name, "loc": _name, "coat": _coat, "note": _note},
    ev.TRANSFER: {"owner": _name, "custodian": _name, "op": _name, "note": _note, "seller": _name,
                  "channel": _name, "price": _price, "currency": _coat, "loc": _name, "verified": _index},
    ev.SERVICE: {"action": _name, "by": _name, "note": _note, "loc": _name, "op": _name,
                 "stage": _one_of("in", "out"), "verified": _index, "override": _note},
    ev.RENTAL_OUT: {"to": _name, "due": _time_field, "note": _note, "verified": _index, **_WHO},
    ev.RENTAL_RETURN: {"cond": _note, "note": _note, "verified": _index, **_WHO},
    ev.PASSPORT: {"set": _passport, **_WHO},
    ev.SUSPECT: {"reason": _note, "case": _index, "verified": _index, **_WHO},
    ev.CLEAR: {"reason": _note, "verified": _index, **_WHO},
    ev.RETIRE: {"reason": _note, **_WHO},
    ev.ASSEMBLY: {"parts": _parts, "of": _item, "part": _coat, "op": _name},
    ev.DERIVE: {"children": _children, "how": _name, "note": _note, **_WHO},
    ev.BIND: {"scheme": _one_of(*ev.ID_SCHEMES), "value": _note, "op": _name},
    # organizations (glint.orgs): who may upload each, and for which item, is glint.server.uploads' check
    ev.SHIP: {"act": _one_of(*ev.SHIP_ACTS), "ship": _shipment, "to": _org, "op": _name, "note": _note,
              "reason": _note},
    ev.SHARE: {"act": _one_of(*ev.SHARE_ACTS), "org": _org, "op": _name, "note": _note},
    ev.VOID: {"event": _index, "reason": _reason, "op": _name},
}
FIELDS[ev.REGISTER]["from"] = _lineage
FIELDS[ev.PASSPORT]["aud"] = _one_of(*ev.AUDIENCES)
FIELDS[ev.VERIFY].update({"parts": _part_results, "via": _via})
# Set by the server, accepted from a client only when equal to what the server derives.
DERIVED = {ev.VERIFY: frozenset({"dev", "fap"}), ev.ENROLL: frozenset({"dev"})}
DERIVED_JSON = {"dev": {"type": "string", "description": "the device whose signature verified (server-derived; "
                                                         "accepted only when equal)"},
                "fap": {"type": "number", "description": "false-accept probability (server-derived; accepted "
                                                         "only when equal)"}}


def check_event(kind: str, item: str, t: int | None, data: dict, now: float | None = None) -> int:
    """Check an uploaded event's client-set parts; return its time (default: now)."""
    if kind not in FIELDS:
        raise UsageError(f"unknown event kind {kind!r}", "one of " + ", ".join(ev.KINDS))
    ev.check_item_id(item)
    now = _time.time() if now is None else now
    if t is None:
        t = int(now)
    if type(t) is not int or not max(EARLIEST_TIME, now - MAX_AGE_S) <= t <= now + MAX_SKEW_S:
        raise UsageError(f"event time {t!r} is outside the accepted window "
                         f"(at most {MAX_AGE_S // 86400} days old, {MAX_SKEW_S} s ahead)",
                         "check the uploading host's clock")
    checks = FIELDS[kind]
    derived = DERIVED.get(kind, frozenset())
    for name, v in data.items():
        check = checks.get(name)
        if check is None:
            if name in derived:
                continue  # compared with the server's own value by glint.server.admit
            raise UsageError(f"a client may not set {kind} field {name!r}",
                             "the scan digest, device and fap are derived from the uploaded scan")
        check(kind, name, v)
    return t
