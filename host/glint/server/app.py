"""The HTTP ledger API of a glint host (Flask app; served by waitress, see glint.server.serve).

Endpoints (docs/api.md has the full reference):

- ``POST /v1/events``              append one event; idempotent on the ``Idempotency-Key`` header
- ``GET  /v1/checkpoint``          signed checkpoint of the current tree
- ``GET  /v1/proof/inclusion``     ``?index=&size=`` RFC 9162 inclusion proof
- ``GET  /v1/proof/consistency``   ``?from=&to=`` RFC 9162 consistency proof
- ``GET  /v1/items/<id>``          an item's state and events

Every ledger access runs on one worker thread (glint.server.worker) because the ledger
has a single writer and SQLite connections are per thread; waitress's request threads
only parse and format.
"""

from __future__ import annotations

import logging
import sqlite3
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider

from glint.errors import GlintError, LedgerError, UsageError
from glint.server import wire
from glint.server.store import MAX_KEY_LEN, IdempotencyStore, connect
from glint.server.worker import LedgerWorker

if TYPE_CHECKING:
    from glint.ledger import Keys, Ledger

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # one event with its signed scan is a few KB
API_PREFIX = "/v1"


@dataclass
class _Ctx:
    ledger: Ledger
    keys: Keys
    keystore: IdempotencyStore
    db: sqlite3.Connection


class GlintApp(Flask):
    """The Flask app with the one extra method the server needs: release the ledger."""

    glint_close: Callable[[], None]


class ConflictError(UsageError):
    """An idempotency key reused for a different event (HTTP 409)."""


class BadRequest(UsageError):
    """A malformed request: missing or non-integer query parameter (HTTP 400)."""


def _open_ctx(home: Path, ledger_path: Path | None) -> _Ctx:
    from glint.ledger import Keys, Ledger, default_path

    keys = Keys.load(home, create=True)
    led = Ledger.open(ledger_path or default_path(home), keys=keys)
    db = connect(Path(home) / "glint.db")
    return _Ctx(led, keys, IdempotencyStore(db), db)


def _close_ctx(ctx: _Ctx) -> None:
    ctx.ledger.close()
    ctx.db.close()


# --- work done on the ledger thread ------------------------------------------------------

def _append(ctx: _Ctx, key: str, body: dict) -> tuple[dict, bool]:
    """Append the event of ``body`` once per key; return (result, duplicate)."""
    kind, item, t, data, scan = wire.parse_event(body)
    digest = wire.body_digest(body)
    rec = ctx.keystore.get(key)
    if rec is not None and rec.body_hash != digest:
        raise ConflictError(f"idempotency key {key} was used for a different event")
    if rec is not None and rec.state == "done":
        return _result(key, rec.idx, rec.leaf_hash, ctx.ledger.size), True
    if rec is not None:  # pending: a crash between append and finish; look before appending again
        found = _find_same(ctx.ledger, kind, item, t, data, scan)
        if found is not None:
            ctx.keystore.finish(key, found.index, found.hash)
            _log.info("idempotency key %s reconciled with event %d", key, found.index)
            return _result(key, found.index, found.hash, ctx.ledger.size), True
    ctx.keystore.begin(key, digest)
    try:
        a = ctx.ledger.append_event(kind, item, data, time=t, scan=scan)
    except GlintError:
        ctx.keystore.forget(key)  # the append raised, so nothing was stored: no reconciliation needed
        raise
    ctx.keystore.finish(key, a.index, a.leaf_hash)
    return _result(key, a.index, a.leaf_hash, ctx.ledger.size), False


def _find_same(led, kind, item, t, data, scan):
    import hashlib

    want = dict(data)
    if scan is not None:
        want["scan"] = hashlib.sha256(scan).digest()
    try:
        events = led.item(item).events
    except UsageError:
        return None
    for e in reversed(events):
        if e.kind == kind and (t is None or e.time == t) and e.data == want:
            return e
    return None


def _result(key, idx, leaf_hash, size) -> dict:
    return {"key": key, "index": idx, "leaf_hash": leaf_hash.hex(), "tree_size": size}


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


def _item(ctx: _Ctx, item: str) -> dict:
    st = ctx.ledger.item(item)
    d = st.as_dict()
    d["events"] = [{"index": e.index, "kind": e.kind, "seq": e.seq, "time": e.time,
                    "leaf_hash": e.hash.hex(), "data": wire.encode_value(e.data)} for e in st.events]
    return d


# --- the Flask app --------------------------------------------------------------------------

def _int_arg(name: str, required: bool = True) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise BadRequest(f"query parameter '{name}' is required")
        return None
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be an integer, not {raw!r}") from None
    if v < 0:
        raise BadRequest(f"query parameter '{name}' must not be negative")
    return v


def create_app(home: str | Path, ledger_path: str | Path | None = None) -> GlintApp:
    """The Flask app serving the ledger of glint home ``home``. ``app.glint_close()`` releases it."""
    worker = LedgerWorker(lambda: _open_ctx(Path(home), Path(ledger_path) if ledger_path else None),
                          _close_ctx, name="ledger-http")
    app = GlintApp("glint.server")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False

    @app.errorhandler(GlintError)
    def _glint_error(e: GlintError):
        status = 409 if isinstance(e, ConflictError) else 400 if isinstance(e, BadRequest) else \
            422 if isinstance(e, UsageError) else 503 if isinstance(e, LedgerError) else 500
        return jsonify({"error": e.msg, "hint": getattr(e, "hint", None) or None}), status

    @app.errorhandler(413)
    def _too_large(_e):
        return jsonify({"error": f"request body larger than {MAX_BODY_BYTES} bytes"}), 413

    @app.errorhandler(404)
    def _not_found(_e):
        return jsonify({"error": f"no such endpoint: {request.method} {request.path}"}), 404

    @app.errorhandler(405)
    def _bad_method(_e):
        return jsonify({"error": f"method {request.method} not allowed on {request.path}"}), 405

    @app.post(API_PREFIX + "/events")
    def post_event():
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key or len(key) > MAX_KEY_LEN or not key.isprintable():
            return jsonify({"error": f"header Idempotency-Key (1..{MAX_KEY_LEN} printable characters) "
                                     "is required"}), 400
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # the stdlib parser recurses per nesting level
            return jsonify({"error": "body nested too deeply"}), 400
        if not isinstance(body, dict):
            return jsonify({"error": "body must be a JSON object (Content-Type: application/json)"}), 400
        t0 = _time.perf_counter()
        result, duplicate = worker.call(_append, key, body)
        _log.info("event %s key=%s index=%s dup=%s (%.1f ms)", body.get("kind"), key, result["index"],
                  duplicate, 1000 * (_time.perf_counter() - t0))
        return jsonify(dict(result, duplicate=duplicate)), 200 if duplicate else 201

    @app.get(API_PREFIX + "/checkpoint")
    def get_checkpoint():
        return jsonify(worker.call(_checkpoint))

    @app.get(API_PREFIX + "/proof/inclusion")
    def get_inclusion():
        return jsonify(worker.call(_inclusion, _int_arg("index"), _int_arg("size", required=False)))

    @app.get(API_PREFIX + "/proof/consistency")
    def get_consistency():
        return jsonify(worker.call(_consistency, _int_arg("from"), _int_arg("to", required=False)))

    @app.get(API_PREFIX + "/items/<path:item>")
    def get_item(item: str):
        return jsonify(worker.call(_item, item))

    app.glint_close = worker.close
    return app
