"""The HTTP ledger API of a glint host (Flask app; served by glint.server.make_server).

Endpoints (docs/api.md has the full reference; roles in glint.server.auth):

- ``POST /v1/events``              append one event (bench/field/brand key); idempotent on ``Idempotency-Key``
- ``POST /v1/events/batch``        append up to 100 events, each with its own key, checked and answered on its own
- ``POST /v1/nonces``              a fresh nonce for a live scan by a device (bench/field key)
- ``GET  /v1/checkpoint``          signed checkpoint of the current tree (public)
- ``GET  /v1/proof/inclusion``     ``?index=&size=`` RFC 9162 inclusion proof (public)
- ``GET  /v1/proof/consistency``   ``?from=&to=`` RFC 9162 consistency proof (public)
- ``GET  /v1/certificates/<i>``    the scan certificate of verify event ``i`` (public)
- ``GET  /v1/items/<id>``          an item's state and events (public: redacted; brand/auditor: full)
- ``GET  /v1/history/<id>``        ``?before=SEQ`` the item's leaves, to check a certificate's chain head (public)
- ``GET  /v1/passports/<id>``      the passport fields the caller's role may read (glint.ledger.passport)
- ``GET  /v1/assemblies/<id>``     an assembly's parts, or a part's assembly (public)
- ``POST /v1/assemblies``          define an assembly's parts (brand key; glint.workflows.assembly)
- ``POST /v1/derivations``, ``POST /v1/identifiers``, ``GET /v1/identifiers``, ``GET /v1/insights``,
  ``GET /v1/insights/<table>.csv``: derive, bind, lookup, insights (glint.server.itemroutes)
- public pages (glint.server.pages): ``/.well-known/gs1resolver``, ``/01/<gtin>/21/<serial>`` (GS1
  resolver), ``/c/<id>`` (the certificate page, verifying in the browser), ``/v1/keys``, ``/verify``, ``/``
- ``GET  /v1/openapi.json``        the OpenAPI 3.1 document of every route (public; glint.server.openapi)

Every route carries its OpenAPI operation beside it (``@openapi.operation``): a route without
one cannot be served (the document fails to build; tests/host/server/test_openapi.py).

Every request is authenticated (``Authorization: Bearer <API key>``) or public, and
rate-limited per key (glint.server.limits). An upload is admitted only after
glint.server.admit checked it (schema, device-signed scan, the server's own match).
Every ledger access runs on one worker thread (glint.ledger.group.LedgerWorker) because the ledger
has a single writer and SQLite connections are per thread; the server's request threads
(one per connection, glint.server.engine; or waitress's) only authenticate, parse and format.
"""

from __future__ import annotations

import base64
import logging
import re
import sqlite3
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from flask import Flask, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from glint import orgs
from glint.checks import FirmwarePolicy, ScanRefused
from glint.errors import GlintError, LedgerError, UsageError
from glint.ledger.group import LedgerWorker
from glint.server import auth, certcheck, fastpath, limits, openapi, wire
from glint.server.store import MAX_KEY_LEN, IdempotencyStore, LedgerKeys
from glint.server.uploads import ConflictError, Uploads, flush

if TYPE_CHECKING:
    from glint.ledger import Keys, Ledger
    from glint.match import Database
    from glint.registry import Registry

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # one event with its signed scan is a few KB
API_PREFIX = "/v1"


@dataclass
class _Ctx:
    ledger: Ledger
    keys: Keys
    keystore: IdempotencyStore
    registry: Registry
    match_db: Database
    policy: FirmwarePolicy
    apikeys: auth.KeyStore
    orgdb: orgs.Orgs
    ledger_keys: LedgerKeys | None = None  # idempotency keys in the ledger's own commits (glint.server.store)


class GlintApp(Flask):
    """The Flask app with the one extra method the server needs: release the ledger."""

    glint_close: Callable[[], None]


class BadRequest(UsageError):
    """A malformed request: missing or non-integer query parameter (HTTP 400)."""


def _open_ctx(home: Path, ledger_path: Path | None) -> _Ctx:
    from glint.home import Home
    from glint.ledger import Keys, Ledger
    from glint.match import open_references
    from glint.registry import Registry

    h = Home(home)
    keys = Keys.load(home, create=True)
    reg = Registry.open(h)
    led = Ledger.open(ledger_path or h.ledger_target, keys=keys)
    reg.sync_behind()  # uploads fsync glint.db behind the ledger thread (glint.server.uploads)
    keystore = IdempotencyStore(reg.conn)
    in_ledger = LedgerKeys(led.store, keystore) if led.store.upload_keys else None  # a SQLite ledger's own
    return _Ctx(led, keys, keystore, reg, open_references(h), FirmwarePolicy.from_config(h.section("firmware")),
                auth.KeyStore(h.db), orgs.Orgs(reg.conn), in_ledger)


def _close_ctx(ctx: _Ctx) -> None:
    ctx.ledger.close()
    ctx.apikeys.close()
    ctx.registry.close()


# --- work done on the ledger thread ------------------------------------------------------

def _nonce(ctx: _Ctx, device: str) -> dict:
    from glint.registry import NONCE_TTL_S

    dev = ctx.registry.device(device)
    if dev is None or dev.revoked:
        raise UsageError(f"device {device} is not provisioned here (or revoked)")
    return {"device": dev.device_id, "nonce": ctx.registry.issue_nonce(dev.device_id).hex(), "ttl_s": NONCE_TTL_S}


def _certificate(ctx: _Ctx, index: int) -> dict:
    blob = ctx.ledger.issue_certificate(index)
    return {"index": index, "cert": base64.b64encode(blob).decode("ascii")}


def _lifecycle(ctx: _Ctx, workflow: str, item: str, data: dict, role: str, who: str, window_s: int,
               scope: str | None = None) -> dict:
    from glint.bench.exceptions import ExceptionQueue
    from glint.workflows import lifecycle as lw

    if scope is not None:
        orgs.check_write(ctx.ledger.item(item), scope)

    return lw.run_remote(ctx.ledger, ExceptionQueue(ctx.registry.conn), workflow, item, data, role, who, window_s)


def _trust_keys(ctx: _Ctx) -> tuple[bytes, str]:
    return ctx.keys.issuer_public, ctx.keys.log_vkey


def _root_at(ctx: _Ctx, size: int) -> bytes:
    if not 0 < size <= ctx.ledger.size:
        raise UsageError(f"no tree of size {size} here")
    return ctx.ledger.root(size)


def _history_before(ctx: _Ctx, item: str, seq: int) -> list[bytes]:
    return ctx.ledger.history(item, seq)


def _checkpoint(ctx: _Ctx) -> dict:
    led = ctx.ledger
    note = led.checkpoint() if led.size else None
    return {"origin": ctx.keys.origin, "size": led.size, "root": led.root().hex(), "note": note,
            "log_vkey": ctx.keys.log_vkey}


def _inclusion(ctx: _Ctx, index: int, size: int | None) -> dict:
    p = ctx.ledger.prove(index, size)
    return {"index": p.index, "tree_size": p.tree_size, "leaf_hash": p.leaf_hash.hex(),
            "hashes": [h.hex() for h in p.hashes], "root": p.root.hex()}


def _consistency(ctx: _Ctx, size1: int, size2: int | None) -> dict:
    led = ctx.ledger
    size2 = led.size if size2 is None else size2
    hashes = led.prove_consistency(size1, size2)
    return {"from": size1, "to": size2, "hashes": [h.hex() for h in hashes],
            "root_from": led.root(size1).hex(), "root_to": led.root(size2).hex()}


HISTORY_SCHEMA = {
    "type": "object", "required": ["item", "events", "head_seq", "leaves"], "additionalProperties": False,
    "properties": {"item": {"type": "string"}, "events": {"type": "integer", "minimum": 0},
                   "head_seq": {"type": "integer", "minimum": 0, "description": "sequence number of the item's last event"},
                   "leaves": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
                   "reveals": {"type": "object", "description": "log index -> the reveal of the event's sealed values "
                               "the caller's key may read (glint.ledger.sealed; bytes as {\"b64\": ...}); "
                               "absent for the public"}},
}


def _history(ctx: _Ctx, item: str, before: int | None, role: str | None = None, owner: str | None = None) -> dict:
    from glint.ledger.passport import reader_of_key, reader_of_role

    led = ctx.ledger
    head = led.store.head(item)
    if head is None:
        raise UsageError(f"unknown item {item}")
    leaves = led.history(item, before)
    out = {"item": item, "events": len(leaves), "head_seq": head.seq,
           "leaves": [base64.b64encode(raw).decode("ascii") for raw in leaves]}
    reader = reader_of_role(role)
    if reader == "owner":  # an owner key reads as owner only the items its identity owns
        reader = reader_of_key(role, led.item(item), owner)
    revealed = led.history_reveals(leaves, reader) if reader != "public" else None
    if revealed:
        out["reveals"] = {str(i): wire.encode_value(r) for i, r in revealed.items()}
    return out


def _item(ctx: _Ctx, item: str, full: bool, role: str | None = None, owner: str | None = None,
          scope: str | None = None) -> dict:
    from glint.ledger.passport import PRIVATE_FIELDS, reader_of_key, redact_event_data, visible

    st = ctx.ledger.item(item)
    if scope is not None:
        orgs.check_read(st, scope)
    reader = reader_of_key(role, st, owner)
    if reader != "brand":  # replayed again as the reader: sealed values it may not see stay sealed
        st = ctx.ledger.item(item, reader)
    d = st.as_dict()
    d["passport"] = visible(st, reader)
    d["passport_audience"] = {k: v for k, v in d["passport_audience"].items() if k in d["passport"]}

    def shown(kind, data):
        data = redact_event_data(kind, data, reader)
        return data if full else {k: v for k, v in data.items() if k not in PRIVATE_FIELDS}

    d["events"] = [{"index": e.index, "kind": e.kind, "seq": e.seq, "time": e.time,
                    "leaf_hash": e.hash.hex(), "data": wire.encode_value(shown(e.kind, e.data))} for e in st.events]
    if not full:
        d = {k: v for k, v in d.items() if k not in ("owner", "custodian", "rented_to", "shipment", "shared_with")}
        d["redacted"] = True
    return d


def _passport(ctx: _Ctx, item: str, role: str | None, owner: str | None, scope: str | None = None) -> dict:
    from glint.ledger.passport import audience_of, reader_of_key, visible

    st = ctx.ledger.item(item)
    if scope is not None:
        orgs.check_read(st, scope)
    reader = reader_of_key(role, st, owner)
    if reader != "brand":  # replayed again as the reader: sealed values it may not see stay sealed
        st = ctx.ledger.item(item, reader)
    fields = visible(st, reader)
    return {"item": st.item, "reader": reader, "fields": fields,
            "audiences": {k: audience_of(st, k) for k in fields}}


def _assembly(ctx: _Ctx, item: str) -> dict:
    st = ctx.ledger.item(item)
    return {"item": st.item, "parts": st.parts, "assembly": st.assembly, "part": st.part_name}


def _define_assembly(ctx: _Ctx, item: str, parts: dict, operator: str | None, scope: str | None = None) -> dict:
    from glint.workflows.assembly import define_in_ledger

    st = ctx.ledger.item(item)
    if scope is not None:
        for it in (item, *parts.values()):
            orgs.check_write(ctx.ledger.item(it), scope)
    if parts.items() <= st.parts.items() and all(
            ctx.ledger.item(p).assembly == item for p in parts.values()):
        return {"item": item, "parts": st.parts, "events": [], "duplicate": True}
    added = define_in_ledger(ctx.ledger, item, parts, operator)
    return {"item": item, "parts": ctx.ledger.item(item).parts, "events": [a.index for a in added],
            "duplicate": False}


_ITEM = {"$ref": "#/components/schemas/ItemId"}
PASSPORT_SCHEMA = {
    "type": "object", "required": ["item", "reader", "fields", "audiences"], "additionalProperties": False,
    "properties": {"item": _ITEM, "reader": {"enum": ["public", "owner", "regulator", "recycler", "brand"]},
                   "fields": {"type": "object", "description": "field -> value, only those the reader may read"},
                   "audiences": {"type": "object", "additionalProperties": {
                       "enum": ["public", "owner", "regulator", "recycler", "brand"]}}}}
_PARTS = {"type": "object", "additionalProperties": _ITEM, "description": "part name -> the part's item id"}
ASSEMBLY_SCHEMA = {
    "type": "object", "required": ["item", "parts", "assembly", "part"], "additionalProperties": False,
    "properties": {"item": _ITEM, "parts": _PARTS, "assembly": {"anyOf": [_ITEM, {"type": "null"}]},
                   "part": {"type": ["string", "null"]}}}
ASSEMBLY_DEFINITION_SCHEMA = {
    "type": "object", "required": ["item", "parts"], "additionalProperties": False,
    "properties": {"item": _ITEM, "parts": dict(_PARTS, minProperties=1, maxProperties=32),
                   "op": {"type": "string", "minLength": 1, "maxLength": 128}}}
ASSEMBLY_DEFINED_SCHEMA = {
    "type": "object", "required": ["item", "parts", "events", "duplicate"], "additionalProperties": False,
    "properties": {"item": _ITEM, "parts": _PARTS, "events": {"type": "array", "items": {"type": "integer"}},
                   "duplicate": {"type": "boolean"}}}


# --- organizations: shipments, sharing grants, a certificate's current status (glint.orgs) ------

def _ship_offer(ctx: _Ctx, items: list, to: str, scope: str, op: str | None, note: str | None) -> dict:
    return orgs.offer(ctx.ledger, ctx.orgdb, items, to, sender=scope, operator=op, note=note).to_dict()


def _ship_decide(ctx: _Ctx, sid: str, act: str, scope: str, op: str | None, reason: str | None) -> dict:
    return orgs.decide(ctx.ledger, ctx.orgdb, sid, act, org=scope, operator=op, reason=reason).to_dict()


def _ship_get(ctx: _Ctx, sid: str, scope: str) -> dict:
    s = orgs.shipment(ctx.ledger, ctx.orgdb, sid)
    if scope not in (s.sender, s.receiver):
        raise orgs.OrgRefused(f"shipment {sid} is neither from nor to {scope}", None, "other-organization")
    return s.to_dict()


def _ship_list(ctx: _Ctx, scope: str) -> dict:
    return {"org": scope, "shipments": [s.to_dict() for s in orgs.shipments(ctx.ledger, ctx.orgdb, scope)]}


def _share(ctx: _Ctx, items: list, with_org: str, act: str, scope: str, op: str | None) -> dict:
    done = orgs.share(ctx.ledger, ctx.orgdb, items, with_org, act, org=scope, operator=op)
    return {"items": items, "with": with_org, "act": act, "events": [a.index for a in done]}


def _cert_status(ctx: _Ctx, index: int) -> dict:
    return orgs.current_status(ctx.ledger, index)


def _cert_void(ctx: _Ctx, index: int, reason: str, scope: str, op: str | None) -> dict:
    a = orgs.void_certificate(ctx.ledger, index, reason, op, org=scope)
    return {"index": index, "event": a.index, "status": orgs.current_status(ctx.ledger, index)}


_ORG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,31}$", "description": "an organization (glint org list)"}
_SID = {"type": "string", "pattern": "^[0-9a-f]{12}$"}
_ITEMS = {"type": "array", "items": {"$ref": "#/components/schemas/ItemId"}, "minItems": 1,
          "maxItems": orgs.MAX_SHIPMENT_ITEMS}
_SHORT = {"type": "string", "minLength": 1, "maxLength": 512}
SHARE_ACTS = ("grant", "revoke")
SHIPMENT_SCHEMA = {
    "type": "object", "required": ["id", "from", "to", "items", "state", "created"], "additionalProperties": False,
    "properties": {"id": _SID, "from": _ORG, "to": _ORG, "items": _ITEMS,
                   "state": {"enum": ["pending", "accepted", "rejected", "cancelled", "ended", "failed"]},
                   "created": {"type": "number"}}}
SHIPMENT_OFFER_SCHEMA = {
    "type": "object", "required": ["items", "to"], "additionalProperties": False,
    "properties": {"items": _ITEMS, "to": _ORG, "note": _SHORT, "op": _SHORT}}
SHIPMENT_DECISION_SCHEMA = {"type": "object", "additionalProperties": False,
                            "properties": {"reason": _SHORT, "op": _SHORT}}
SHARE_SCHEMA = {
    "type": "object", "required": ["items", "with"], "additionalProperties": False,
    "properties": {"items": _ITEMS, "with": _ORG, "act": {"enum": list(SHARE_ACTS)},
                   "op": _SHORT}}
SHARE_DONE_SCHEMA = {
    "type": "object", "required": ["items", "with", "act", "events"], "additionalProperties": False,
    "properties": {"items": _ITEMS, "with": _ORG, "act": {"enum": list(SHARE_ACTS)},
                   "events": {"type": "array", "items": {"type": "integer"}}}}
_WHEN = {"type": ["integer", "null"]}
CERT_STATUS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["index", "item", "status", "state", "since", "why", "voided", "case", "newer"],
    "properties": {
        "index": {"type": "integer", "minimum": 0, "description": "the certified verify event"},
        "item": {"type": "string"},
        "status": {"enum": ["current", "voided", "retired", "suspect"],
                   "description": "voided: the issuer voided this certificate; retired: the item was retired "
                                  "later; suspect: an open case (e.g. a substitution)"},
        "state": {"type": "string", "description": "the item's lifecycle state now"},
        "since": _WHEN, "why": {"type": ["string", "null"]},
        "voided": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["reason", "index", "time"]}]},
        "case": {"anyOf": [{"type": "null"}, {"type": "object"}]},
        "newer": {"type": "boolean", "description": "a later verification of the item exists"}}}
VOID_SCHEMA = {"type": "object", "required": ["reason"], "additionalProperties": False,
               "properties": {"reason": _SHORT, "op": _SHORT}}
VOIDED_SCHEMA = {"type": "object", "required": ["index", "event", "status"], "additionalProperties": False,
                 "properties": {"index": {"type": "integer"}, "event": {"type": "integer"},
                                "status": {"$ref": "#/components/schemas/CertificateStatus"}}}


def _json_body(allowed: dict, required: tuple = ()) -> dict:
    """A JSON object body with only ``allowed`` fields (name -> type), ``required`` present (BadRequest)."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("body nested too deeply") from None
    if body is None and not required and not request.get_data(cache=True):
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    extra = set(body) - set(allowed)
    if extra:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(map(str, extra)))[:200]}")
    for name in required:
        if name not in body:
            raise BadRequest(f"field {name!r} is required")
    for name, v in body.items():
        want = allowed[name]
        if want is list:
            if not isinstance(v, list) or not v or len(v) > orgs.MAX_SHIPMENT_ITEMS or not all(
                    isinstance(x, str) and 0 < len(x) <= 1024 for x in v):
                raise BadRequest(f"{name!r} must be a list of 1..{orgs.MAX_SHIPMENT_ITEMS} item ids")
        elif not isinstance(v, str) or not 0 < len(v) <= 512 or not v.isprintable():
            raise BadRequest(f"{name!r} must be 1..512 printable characters")
    return body


def _org_key(what: str, brand: bool = True):
    """The request's key for an organization's write (a brand key) or read; its organization."""
    k = g.api_key
    if k is None:
        raise auth.AuthError(f"{what} needs an API key", "send 'Authorization: Bearer <key>'")
    if brand and k.role != "brand":
        raise auth.Forbidden(f"a {k.role} key may not {what}", "a brand key of the organization may")
    scope = auth.org_scope(k)
    if scope is None:
        raise auth.Forbidden(f"a {k.role} key acts for no organization: it may not {what}")
    return k, scope


def _reader(key) -> tuple[str | None, str | None]:
    """(role, owner identity) of a request's key, to read passports as (passport.reader_of_key)."""
    return (key.role, key.owner) if key is not None else (None, None)


# --- the Flask app --------------------------------------------------------------------------

_INT_RE = re.compile(r"-?[0-9]{1,40}")


def _int_arg(name: str, required: bool = True) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        if required:
            raise BadRequest(f"query parameter '{name}' is required")
        return None
    try:
        # digits only: int() would also take "", " 5", "1_0" and non-ASCII digits (found by schemathesis)
        v = int(raw) if _INT_RE.fullmatch(raw) else int("?")
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be an integer, not {raw!r}") from None
    if v < 0:
        raise BadRequest(f"query parameter '{name}' must not be negative")
    if v > openapi.MAX_INDEX:
        raise BadRequest(f"query parameter '{name}' is larger than any ledger index")
    return v


_STATUS = ((ConflictError, 409), (BadRequest, 400), (auth.AuthError, 401), (auth.Forbidden, 403), (orgs.OrgRefused, 403),
           (limits.RateLimited, 429), (limits.QuotaExceeded, 507), (UsageError, 422), (ScanRefused, 422),
           (LedgerError, 503))


def _burst(key) -> float:
    """The burst of a key's token bucket (twice its rate per second, at least one request)."""
    return max(1.0, 2 * key.rate_per_s)


MAX_BATCH = 100  # events per POST /v1/events/batch (a few hundred KB with their scans)
_RESULT_PROPS = {"key": {"type": "string"},
                 "status": {"type": "integer", "description": "201 appended, 200 duplicate, else the refusal's "
                                                              "status as POST /v1/events answers it"}}
EVENT_BATCH_SCHEMA = {
    "type": "object", "required": ["events"], "additionalProperties": False,
    "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": {
        "type": "object", "required": ["key", "event"], "additionalProperties": False,
        "properties": {"key": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN,
                               "description": "the event's idempotency key (as the Idempotency-Key header of "
                                              "POST /v1/events), distinct within the batch"},
                       "event": {"type": "object", "description": "an EventUpload, checked on its own: a "
                                                                   "refusal is its result, not the batch's"}}}}}}
EVENT_BATCH_RESULTS_SCHEMA = {
    "type": "object", "required": ["results"], "additionalProperties": False,
    "properties": {"results": {"type": "array", "items": {"oneOf": [
        {"type": "object", "required": ["key", "status", "index", "leaf_hash", "tree_size", "duplicate"],
         "additionalProperties": False,
         "properties": dict(_RESULT_PROPS, **openapi.EVENT_APPENDED_PROPERTIES)},
        {"type": "object", "required": ["key", "status", "error", "hint"], "additionalProperties": False,
         "properties": dict(_RESULT_PROPS, error=openapi.ERROR_PROPERTIES["error"],
                            hint=openapi.ERROR_PROPERTIES["hint"], reason=openapi.ERROR_PROPERTIES["reason"])}]}}}}


def _batch_result(key: str, out) -> dict:
    """One event's entry in a batch answer: its (result, duplicate), or its refusal as JSON."""
    if isinstance(out, tuple):
        result, duplicate = out
        return dict(result, key=key, status=200 if duplicate else 201, duplicate=duplicate)
    if isinstance(out, GlintError):
        reason = getattr(out, "reason", None)
        return {"key": key, "status": _status_of(out), "error": out.msg, "hint": getattr(out, "hint", None) or None,
                **({"reason": reason} if reason else {})}
    if isinstance(out, (sqlite3.Error, OSError)):
        _log.error("storage error: %s", out)
        return {"key": key, "status": 503, "error": f"the server's storage is unusable ({out})", "hint": "retry later"}
    raise out  # a bug: answered 500 by the app's handler, and logged


def _status_of(e: GlintError) -> int:
    for cls, status in _STATUS:
        if isinstance(e, cls):
            return status
    return 422


def _json_error(status: int, msg: str, hint: str | None = None, **extra):
    from glint.textsafe import clean

    # One line each, whatever the request carried: a path or an item id with a newline or an ESC
    # (percent-encoded in the URL) is escaped, not echoed (found by tools/fuzz_api_wsgi.py).
    r = jsonify({"error": clean(msg), "hint": None if hint is None else clean(hint), **extra})
    r.status_code = status
    return r


def create_app(home: str | Path, ledger_path: str | Path | None = None) -> GlintApp:
    """The Flask app serving the ledger of glint home ``home``. ``app.glint_close()`` releases it."""
    from glint.home import Home

    worker = LedgerWorker(lambda: _open_ctx(Path(home), Path(ledger_path) if ledger_path else None),
                          _close_ctx, name="ledger-http", idle=flush)
    apikeys = auth.KeyStore(Home(home).db)
    uploads = Uploads(worker)
    limiter = limits.RateLimiter()
    rates = limits.configured(Home(home).section("limits"))
    app = GlintApp("glint.server", static_folder=None)  # every route is one of ours, documented (openapi)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # "/v1//events" was a 308 redirect with an HTML body (werkzeug merges slashes); no path of ours
    # has an empty segment, so it is a 404 JSON error like any unknown path (tools/fuzz_api_wsgi.py)
    app.url_map.merge_slashes = False
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False

    def caller(authorization: str | None, remote_addr: str | None):
        """The API key of a request (None: public), after its rate limit; AuthError/RateLimited."""
        key = apikeys.authenticate(authorization)
        if key is None:
            limiter.take(f"public {remote_addr}", rates["public_rate_per_s"], rates["public_burst"])
        else:
            limiter.take(f"key {key.key_id}", key.rate_per_s, _burst(key))
        return key

    @app.before_request
    def _authenticate():
        g.api_key = None
        g.api_key = caller(request.headers.get("Authorization"), request.remote_addr)
        try:  # werkzeug decodes the query strictly: raw bytes >= 0x80 were a 500 in process (waitress
            # refuses such a URI itself; another WSGI server may pass it on; tools/fuzz_api_wsgi.py)
            request.query_string.decode()
        except UnicodeDecodeError:
            raise BadRequest("the query string is not UTF-8", "percent-encode it (RFC 3986)") from None

    @app.errorhandler(GlintError)
    def _glint_error(e: GlintError):
        status = _status_of(e)
        reason = getattr(e, "reason", None)
        r = _json_error(status, e.msg, getattr(e, "hint", None) or None, **({"reason": reason} if reason else {}))
        if isinstance(e, limits.RateLimited):
            r.headers["Retry-After"] = str(max(1, round(e.retry_after)))
        return r

    @app.errorhandler(sqlite3.Error)
    @app.errorhandler(OSError)
    def _storage_error(e):
        # A full disk, a read-only or vanished file: the storage, not the request, is at fault.
        _log.error("storage error: %s", e)
        return _json_error(503, f"the server's storage is unusable ({e})", "retry later")

    @app.errorhandler(Exception)
    def _internal(e):
        from werkzeug.exceptions import HTTPException

        if isinstance(e, HTTPException):
            return _json_error(e.code or 500, f"{e.name}: {request.method} {request.path}")
        _log.exception("internal error on %s %s", request.method, request.path)
        return _json_error(500, f"internal error ({type(e).__name__})", "this is a bug in glint serve")

    @app.errorhandler(413)
    def _too_large(_e):
        return _json_error(413, f"request body larger than {MAX_BODY_BYTES} bytes")

    @app.errorhandler(404)
    def _not_found(_e):
        return _json_error(404, f"no such endpoint: {request.method} {request.path}")

    @app.errorhandler(405)
    def _bad_method(_e):
        return _json_error(405, f"method {request.method} not allowed on {request.path}")

    @app.post(API_PREFIX + "/events")
    @openapi.operation("Append one custody event (idempotent on Idempotency-Key)", access=("bench", "field", "brand"),
                       body="EventUpload", responses={201: "EventAppended", 200: "EventAppended"},
                       params=(openapi.header("Idempotency-Key", {"type": "string", "minLength": 1,
                                                                  "maxLength": MAX_KEY_LEN}, required=True,
                                              description="1..128 printable characters, per API key"),),
                       errors=(400, 409, 413, 422, 503, 507), tags=("events",),
                       description="bench/field keys upload register, enroll and verify; brand keys register, "
                                   "enroll, passport, transfer, service, rentals, retire, and ship, share and void "
                                   "of their organization's items, checked as the shipment, share and void routes "
                                   "check them (auth.UPLOAD_KINDS). verify and enroll carry the device-signed scan, "
                                   "checked by the server.")
    def post_event():
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key or len(key) > MAX_KEY_LEN or not key.isprintable():
            raise BadRequest(f"header Idempotency-Key (1..{MAX_KEY_LEN} printable characters) is required")
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # the stdlib parser recurses per nesting level
            raise BadRequest("body nested too deeply") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object (Content-Type: application/json)")
        auth.may_upload(g.api_key, body.get("kind") if isinstance(body.get("kind"), str) else "?")
        t0 = _time.perf_counter()
        result, duplicate = uploads.append(g.api_key, key, body)
        _log.info("event %s key=%s index=%s dup=%s (%.1f ms)", body.get("kind"), key, result["index"],
                  duplicate, 1000 * (_time.perf_counter() - t0))
        return jsonify(dict(result, duplicate=duplicate)), 200 if duplicate else 201

    @app.post(API_PREFIX + "/events/batch")
    @openapi.operation(
        "Append several custody events in one request, each acknowledged on its own", access=("bench", "field", "brand"),
        body=openapi.Body(openapi.component("EventBatch", EVENT_BATCH_SCHEMA)),
        responses={200: openapi.Body(openapi.component("EventBatchResults", EVENT_BATCH_RESULTS_SCHEMA),
                                     description="one result per event, in order: appended (201), a duplicate of "
                                                 "its key (200), or its refusal (the status POST /v1/events would "
                                                 "answer, with error and hint)")},
        errors=(400, 413, 429, 503), tags=("events",),
        description=f"1..{MAX_BATCH} events, each with its own idempotency key (unique in the batch) and checked "
                    "exactly as POST /v1/events checks one (role, schema, signed scan, match, custody, quota); "
                    "a refused event refuses only itself. The answer comes once every appended event is durable "
                    "(they share the server's group commit). Each event counts against the key's rate.")
    def post_events_batch():
        k = g.api_key
        if k is None:
            raise auth.AuthError("POST /v1/events/batch needs an API key", "send 'Authorization: Bearer <key>'")
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            raise BadRequest("body nested too deeply") from None
        entries = body.get("events") if isinstance(body, dict) and set(body) == {"events"} else None
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH:
            raise BadRequest(f'body must be {{"events": [{{"key": IDEMPOTENCY_KEY, "event": EVENT}}, ...]}} '
                             f"with 1..{MAX_BATCH} events")
        keys: list[str] = []
        for i, e in enumerate(entries):
            key = e.get("key") if isinstance(e, dict) and set(e) == {"key", "event"} else None
            if (not isinstance(key, str) or not key.strip() or len(key.strip()) > MAX_KEY_LEN
                    or not key.strip().isprintable() or not isinstance(e["event"], dict)):
                raise BadRequest(f"events[{i}] must be {{\"key\": 1..{MAX_KEY_LEN} printable characters, "
                                 "\"event\": an event object}")
            keys.append(key.strip())
        if len(set(keys)) != len(keys):
            raise BadRequest("the events of a batch need distinct idempotency keys")
        if len(entries) > 1:  # the request took one token of the key's rate; each further event takes one
            if len(entries) > _burst(k):
                raise BadRequest(f"a batch of {len(entries)} events is more than this key's burst ({_burst(k):g})",
                                 f"send at most {int(_burst(k))} events per batch")
            limiter.take(f"key {k.key_id}", k.rate_per_s, _burst(k), len(entries) - 1)
        outcomes: list = [None] * len(entries)
        todo = []
        for i, e in enumerate(entries):
            kind = e["event"].get("kind")
            try:
                auth.may_upload(k, kind if isinstance(kind, str) else "?")
            except GlintError as err:
                outcomes[i] = err
                continue
            todo.append(i)
        t0 = _time.perf_counter()
        # An enroll's reference becomes the server's once its round is stored: the events after an
        # enroll go in the next round, so a verify behind its enroll is checked against it (as if the
        # events had come one request after another).
        rounds: list[list[int]] = [[]]
        for i in todo:
            rounds[-1].append(i)
            if entries[i]["event"].get("kind") == "enroll":
                rounds.append([])
        for r in rounds:
            if r:
                for i, out in zip(r, uploads.append_many(k, [(keys[i], entries[i]["event"]) for i in r])):
                    outcomes[i] = out
        results = [_batch_result(key, out) for key, out in zip(keys, outcomes)]
        _log.info("batch of %d events key=%s..%s: %d appended, %d duplicates, %d refused (%.1f ms)", len(keys),
                  keys[0], keys[-1], sum(r["status"] == 201 for r in results), sum(r["status"] == 200 for r in results),
                  sum(r["status"] >= 400 for r in results), 1000 * (_time.perf_counter() - t0))
        return jsonify({"results": results})

    # The upload hot path answers POST /v1/events without Flask's per-request machinery (same
    # checks, same answers; anything unusual and every error go through the route above).
    fastpath.install(app, caller, uploads, API_PREFIX + "/events", MAX_BODY_BYTES, MAX_KEY_LEN)

    @app.post(API_PREFIX + "/nonces")
    @openapi.operation("A single-use nonce for a live scan by a provisioned device", access=tuple(auth.NONCE_ROLES),
                       body="NonceRequest", responses={201: "Nonce"}, errors=(400, 422, 503), tags=("events",))
    def post_nonce():
        k = g.api_key
        if k is None:
            raise auth.AuthError("POST /v1/nonces needs an API key", "send 'Authorization: Bearer <key>'")
        if k.role not in auth.NONCE_ROLES:
            raise auth.Forbidden(f"a {k.role} key may not ask for scan nonces")
        body = request.get_json(silent=True)
        dev = body.get("device") if isinstance(body, dict) else None
        if not isinstance(dev, str) or len(dev) != 16 or any(c not in "0123456789abcdef" for c in dev.lower()):
            raise BadRequest("body must be {\"device\": \"<16 hex digits>\"}")
        return jsonify(worker.call(_nonce, dev.lower())), 201

    @app.get(API_PREFIX + "/checkpoint")
    @openapi.operation("Signed checkpoint of the current tree", access=openapi.PUBLIC,
                       responses={200: "Checkpoint"}, errors=(503,), tags=("log",))
    def get_checkpoint():
        return jsonify(worker.call(_checkpoint))

    @app.get(API_PREFIX + "/proof/inclusion")
    @openapi.operation("RFC 9162 inclusion proof of event index in the tree of size size", access=openapi.PUBLIC,
                       params=(openapi.query("index", openapi.INDEX, required=True),
                               openapi.query("size", openapi.INDEX,
                                             description="default: the current size")),
                       responses={200: "InclusionProof"}, errors=(400, 422, 503), tags=("log",))
    def get_inclusion():
        return jsonify(worker.call(_inclusion, _int_arg("index"), _int_arg("size", required=False)))

    @app.get(API_PREFIX + "/proof/consistency")
    @openapi.operation("RFC 9162 consistency proof between two tree sizes", access=openapi.PUBLIC,
                       params=(openapi.query("from", openapi.INDEX, required=True),
                               openapi.query("to", openapi.INDEX,
                                             description="default: the current size")),
                       responses={200: "ConsistencyProof"}, errors=(400, 422, 503), tags=("log",))
    def get_consistency():
        return jsonify(worker.call(_consistency, _int_arg("from"), _int_arg("to", required=False)))

    @app.get(API_PREFIX + "/certificates/<int:index>")
    @openapi.operation("The scan certificate of verify event index", access=openapi.PUBLIC,
                       responses={200: "Certificate"}, errors=(422, 503), tags=("certificates",))
    def get_certificate(index: int):
        if index > openapi.MAX_INDEX:
            raise UsageError(f"no event {index} in this ledger")
        return jsonify(worker.call(_certificate, index))

    @app.get(API_PREFIX + "/history/<path:item>")
    @openapi.operation(
        "An item's events as the log's leaf bytes (to check a compact certificate's chain head)",
        access=openapi.PUBLIC, tags=("certificates",), errors=(400, 422, 503),
        params=(openapi.query("before", openapi.INDEX,
                              description="only the events with sequence number below this (default: all)"),),
        responses={200: openapi.Body(openapi.component("History", HISTORY_SCHEMA),
                                     description="leaves in sequence order, standard base64")})
    def get_history(item: str):
        return jsonify(worker.call(_history, item, _int_arg("before", required=False), *_reader(g.api_key)))

    @app.get(API_PREFIX + "/items/<path:item>")
    @openapi.operation("An item's state and events (public: redacted; brand/auditor keys: full)",
                       access=openapi.PUBLIC, responses={200: "Item"}, errors=(422, 503), tags=("items",))
    def get_item(item: str):
        full = g.api_key is not None and g.api_key.role in auth.FULL_READ_ROLES
        return jsonify(worker.call(_item, item, full, *_reader(g.api_key), auth.org_scope(g.api_key)))

    @app.get(API_PREFIX + "/passports/<path:item>")
    @openapi.operation("The passport fields the caller may read (audience from the key's role)",
                       access=openapi.PUBLIC, responses={200: openapi.Body(openapi.component("Passport", PASSPORT_SCHEMA))},
                       errors=(422, 503), tags=("items",),
                       description="no key, bench and field keys read public fields; brand and auditor keys read "
                                   "every field; regulator and recycler keys the fields of their audience; an "
                                   "owner key the owner fields of the items its owner identity owns now "
                                   "(glint.ledger.passport.ROLE_READER, reader_of_key, docs/lifecycle.md)")
    def get_passport(item: str):
        return jsonify(worker.call(_passport, item, *_reader(g.api_key), auth.org_scope(g.api_key)))

    @app.get(API_PREFIX + "/assemblies/<path:item>")
    @openapi.operation("An assembly's parts, or a part's assembly", access=openapi.PUBLIC,
                       responses={200: openapi.Body(openapi.component("Assembly", ASSEMBLY_SCHEMA))},
                       errors=(422, 503), tags=("items",))
    def get_assembly(item: str):
        return jsonify(worker.call(_assembly, item))

    @app.post(API_PREFIX + "/assemblies")
    @openapi.operation("Define an assembly's parts (the assembly and each part, in one commit)", access=("brand",),
                       body=openapi.Body(openapi.component("AssemblyDefinition", ASSEMBLY_DEFINITION_SCHEMA)),
                       responses={201: openapi.Body(openapi.component("AssemblyDefined", ASSEMBLY_DEFINED_SCHEMA)),
                                  200: openapi.Body(openapi.component("AssemblyDefined", ASSEMBLY_DEFINED_SCHEMA))},
                       errors=(400, 422, 503), tags=("items",),
                       description="every item must be registered; a part of another assembly is refused; the "
                                   "same definition again appends nothing (200, duplicate: true)")
    def post_assembly():
        k = g.api_key
        if k is None:
            raise auth.AuthError("POST /v1/assemblies needs an API key", "send 'Authorization: Bearer <key>'")
        if k.role != "brand":
            raise auth.Forbidden(f"a {k.role} key may not define assemblies", "a brand key may")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or set(body) - {"item", "parts", "op"} or not isinstance(body.get("item"), str):
            raise BadRequest('body must be {"item": ID, "parts": {NAME: PART_ID}, "op": optional operator}')
        from glint.server.schema import FIELDS

        FIELDS["assembly"]["parts"]("assembly", "parts", body.get("parts"))
        if body.get("op") is not None:
            FIELDS["assembly"]["op"]("assembly", "op", body["op"])
        out = worker.call(_define_assembly, body["item"], body["parts"], body.get("op"), auth.org_scope(k))
        return jsonify(out), 200 if out["duplicate"] else 201

    from glint.workflows import lifecycle as lw

    workflows = tuple(lw.REMOTE)
    openapi.component("LifecycleDone", {
        "type": "object", "required": ["workflow", "item", "events", "state", "verified", "passed", "case"],
        "additionalProperties": False,
        "properties": {"workflow": {"enum": list(workflows)}, "item": {"type": "string"},
                       "events": {"type": "array", "items": {
                           "type": "object", "required": ["index", "leaf_hash"], "additionalProperties": False,
                           "properties": {"index": {"type": "integer", "minimum": 0},
                                          "leaf_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}},
                       "state": {"type": "string", "description": "the item's lifecycle state afterwards"},
                       "verified": {"type": ["integer", "null"], "description": "log index of the scan relied on"},
                       "passed": {"type": "boolean", "description": "false: a failed rental return (case opened)"},
                       "case": {"type": ["integer", "null"], "description": "exception queue entry of a substitution"}}})

    @app.post(API_PREFIX + "/items/<path:item>/lifecycle/<workflow>")
    @openapi.operation(
        "Run a lifecycle workflow on an item (the rules of glint transfer/service/rental/retire)",
        access=("bench", "field", "brand"),
        body=openapi.Body({"type": "object", "description": "the event's fields (docs/ledger.md) but stage and "
                                                            "verified, which the server sets"}),
        responses={201: "LifecycleDone"}, errors=(400, 404, 422, 503), tags=("items",),
        path_params={"workflow": {"enum": list(workflows)}},
        description="transfer, service-in and rental-out rely on the item's latest verify event, which must "
                    "have passed within the server's scan window ([lifecycle] scan_window_s, default "
                    f"{lw.DEFAULT_SCAN_WINDOW_S} s); service-in without one needs a brand key and 'override' "
                    "(the reason); rental-return relies on the scan uploaded since the rental: a failed one "
                    "opens a substitution case and marks the item suspect (passed: false); retire needs a brand "
                    "key. Every event passes the item state machine (docs/lifecycle.md). Not idempotent: after "
                    "a lost answer, read the item (GET /v1/items/{item}) before retrying.")
    def post_lifecycle(item: str, workflow: str):
        from glint.server import schema

        if workflow not in lw.REMOTE:
            return _json_error(404, f"no such lifecycle workflow: {workflow}", "one of " + ", ".join(workflows))
        k = g.api_key
        if k is None:
            raise auth.AuthError(f"POST .../lifecycle/{workflow} needs an API key", "send 'Authorization: Bearer <key>'")
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            raise BadRequest("body nested too deeply") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object of the event's fields")
        data = wire.decode_value(body)
        kind = lw.REMOTE[workflow][0]
        schema.check_event(kind, item, None, data)
        window = lw.scan_window_of(Home(home).section("lifecycle"), Home(home).config_path)
        out = worker.call(_lifecycle, workflow, item, data, k.role, f"{k.role} key {k.key_id} ({k.label})", window,
                          auth.org_scope(k))
        return jsonify(out), 201

    openapi.component("Shipment", SHIPMENT_SCHEMA)
    openapi.component("CertificateStatus", CERT_STATUS_SCHEMA)

    @app.post(API_PREFIX + "/shipments")
    @openapi.operation("Offer items to another organization (a shipment: pending until it accepts)",
                       access=("brand",), body=openapi.Body(openapi.component("ShipmentOffer", SHIPMENT_OFFER_SCHEMA)),
                       responses={201: "Shipment"}, errors=(400, 403, 422, 503), tags=("organizations",),
                       description="every item must be the key's organization's, live and in no pending shipment; "
                                   "one ship event (act offer) per item; the sender keeps the items until the "
                                   "receiver accepts (glint.orgs)")
    def post_shipment():
        k, scope = _org_key("offer shipments")
        body = _json_body({"items": list, "to": str, "note": str, "op": str}, ("items", "to"))
        return jsonify(worker.call(_ship_offer, body["items"], body["to"], scope, body.get("op"),
                                   body.get("note"))), 201

    @app.get(API_PREFIX + "/shipments")
    @openapi.operation("The shipments from or to the key's organization", access=tuple(sorted(auth.ORG_SCOPED_ROLES)),
                       responses={200: openapi.Body(openapi.component("Shipments", {
                           "type": "object", "required": ["org", "shipments"], "additionalProperties": False,
                           "properties": {"org": _ORG, "shipments": {"type": "array",
                                                                     "items": {"$ref": "#/components/schemas/Shipment"}}}}))},
                       errors=(403, 503), tags=("organizations",))
    def get_shipments():
        _k, scope = _org_key("list shipments", brand=False)
        return jsonify(worker.call(_ship_list, scope))

    @app.get(API_PREFIX + "/shipments/<sid>")
    @openapi.operation("One shipment (its sender's or receiver's key)", access=tuple(sorted(auth.ORG_SCOPED_ROLES)),
                       responses={200: "Shipment"}, errors=(403, 422, 503), tags=("organizations",),
                       path_params={"sid": _SID})
    def get_shipment(sid: str):
        _k, scope = _org_key("read shipments", brand=False)
        return jsonify(worker.call(_ship_get, sid, scope))

    @app.post(API_PREFIX + "/shipments/<sid>/<act>")
    @openapi.operation("Accept or reject a shipment (its receiver), or cancel it (its sender)", access=("brand",),
                       body=openapi.Body(openapi.component("ShipmentDecision", SHIPMENT_DECISION_SCHEMA)),
                       body_required=False, responses={200: "Shipment"}, errors=(400, 403, 404, 422, 503),
                       tags=("organizations",), path_params={"sid": _SID, "act": {"enum": ["accept", "reject",
                                                                                          "cancel"]}},
                       description="accept: one ship event (act accept) per item, after which the items, their "
                                   "history and identifiers are the receiver's (the sender's grants end); a "
                                   "shipment that is not pending is refused (422, reason: its state)")
    def post_shipment_decision(sid: str, act: str):
        if act not in ("accept", "reject", "cancel"):
            return _json_error(404, f"no such shipment action: {act}", "accept, reject or cancel")
        _k, scope = _org_key(f"{act} shipments")
        body = _json_body({"reason": str, "op": str})
        return jsonify(worker.call(_ship_decide, sid, act, scope, body.get("op"), body.get("reason")))

    @app.post(API_PREFIX + "/shares")
    @openapi.operation("Grant (or revoke) another organization read access to chosen items", access=("brand",),
                       body=openapi.Body(openapi.component("Share", SHARE_SCHEMA)),
                       responses={201: openapi.Body(openapi.component("ShareDone", SHARE_DONE_SCHEMA))},
                       errors=(400, 403, 422, 503), tags=("organizations",),
                       description="one share event per item (act grant or revoke); the items must be the key's "
                                   "organization's; a grant is read access only")
    def post_share():
        _k, scope = _org_key("share items")
        body = _json_body({"items": list, "with": str, "act": str, "op": str}, ("items", "with"))
        act = body.get("act", "grant")
        if act not in SHARE_ACTS:
            raise BadRequest("'act' is grant or revoke")
        return jsonify(worker.call(_share, body["items"], body["with"], act, scope, body.get("op"))), 201

    @app.get(API_PREFIX + "/certificates/<int:index>/status")
    @openapi.operation("The current status of the certificate of verify event index (voided, the item retired "
                       "or suspect since)", access=openapi.PUBLIC, responses={200: "CertificateStatus"},
                       errors=(422, 503), tags=("certificates",))
    def get_certificate_status(index: int):
        if index > openapi.MAX_INDEX:
            raise UsageError(f"no event {index} in this ledger")
        return jsonify(worker.call(_cert_status, index))

    @app.post(API_PREFIX + "/certificates/<int:index>/void")
    @openapi.operation("Void the certificate of verify event index (the item's organization's brand key)",
                       access=("brand",), body=openapi.Body(openapi.component("VoidRequest", VOID_SCHEMA)),
                       responses={201: openapi.Body(openapi.component("Voided", VOIDED_SCHEMA))},
                       errors=(400, 403, 422, 503), tags=("certificates",),
                       description="appends a void event to the item; the certificate page, the marketplace "
                                   "check and glint cert verify --remote report it voided from then on")
    def post_certificate_void(index: int):
        _k, scope = _org_key("void certificates")
        body = _json_body({"reason": str, "op": str}, ("reason",))
        if index > openapi.MAX_INDEX:
            raise UsageError(f"no event {index} in this ledger")
        return jsonify(worker.call(_cert_void, index, body["reason"], scope, body.get("op"))), 201

    trust: list[certcheck.Trust] = []
    trust_stamp = [0]

    @app.post(API_PREFIX + "/certificates/verify")
    @openapi.operation(
        "Marketplace check: is this certificate genuine (and for this item)?", access=openapi.PUBLIC,
        body=openapi.Body(openapi.component("CertificateCheckRequest", certcheck.REQUEST_SCHEMA),
                          description=f"JSON with the certificate in base64, or the certificate file's bytes as "
                                      f"{certcheck.COSE_MEDIA} (listing item in ?item=)"),
        extra_bodies={certcheck.COSE_MEDIA: {"type": "string", "contentMediaType": certcheck.COSE_MEDIA}},
        params=(openapi.query("item", {"type": "string", "minLength": 1, "maxLength": certcheck.MAX_ITEM_LEN},
                              description=f"the listing's item id (with a {certcheck.COSE_MEDIA} body; with "
                                          "JSON it may be in the body instead)"),),
        responses={200: openapi.Body(openapi.component("CertificateCheck", certcheck.ANSWER_SCHEMA),
                                     description="the verdict (verified or failed, naming the failed check)")},
        errors=(400, 413, 503), tags=("certificates",),
        description="Checks, in order: " + ", ".join(certcheck.CHECKS) + " (glint.server.certcheck). Rate-limited "
                    f"to {certcheck.VERIFY_RATE_PER_S:g}/s per caller by default ([limits] verify_rate_per_s).")
    def post_certificate_verify():
        k = g.api_key
        who = f"verify key {k.key_id}" if k is not None else f"verify {request.remote_addr}"
        limiter.take(who, rates["verify_rate_per_s"], rates["verify_burst"])
        # [issuers] is read again when config.toml changes: a key revoked there stops counting at once
        # (as GET /v1/keys publishes it revoked at once).
        cfg = Home(home).config_path
        stamp = cfg.stat().st_mtime_ns if cfg.exists() else 0
        if not trust or trust_stamp[0] != stamp:
            own, vkey = worker.call(_trust_keys)
            trust[:] = [certcheck.Trust.of(own, vkey, Home(home).section("issuers"))]
            trust_stamp[0] = stamp
        query_item = request.args.get("item")
        try:
            if query_item is not None:
                certcheck.check_item_arg(query_item)
            if request.mimetype == certcheck.COSE_MEDIA:
                blob, item = request.get_data(cache=False), query_item
            else:
                try:
                    body = request.get_json(silent=True)
                except RecursionError:
                    raise BadRequest("body nested too deeply") from None
                blob, item = certcheck.certificate_bytes(body)
                if query_item is not None:
                    if item is not None and item != query_item:
                        raise UsageError("the listing item is given twice (?item= and the body), differently")
                    item = query_item
        except UsageError as e:
            raise BadRequest(e.msg, getattr(e, "hint", None)) from None
        a = certcheck.check(blob, item, trust[0], lambda size: worker.call(_root_at, size),
                            lambda it, seq: worker.call(_history_before, it, seq),
                            lambda index: worker.call(_cert_status, index))
        return jsonify(certcheck.answer_json(a, item))

    spec: dict = {}

    @app.get(API_PREFIX + "/openapi.json")
    @openapi.operation("This document: the OpenAPI 3.1 description of every route", access=openapi.PUBLIC,
                       responses={200: openapi.Body({"type": "object", "required": ["openapi", "paths"]})},
                       tags=("meta",))
    def get_openapi():
        if not spec:
            spec.update(openapi.document(app))
        return jsonify(spec)

    from glint.server import itemroutes, pages

    itemroutes.register(app, worker, BadRequest, _int_arg)
    pages.register(app, worker, home)

    def close():
        worker.close()
        apikeys.close()

    app.glint_close = close
    return app
