"""HTTP routes with the CLI's semantics for lineage, secondary identifiers and brand insights.

    POST /v1/derivations          glint derive PARENT --child ITEM ...   (brand key)
    POST /v1/identifiers          glint bind ITEM --qr|--nfc|--serial V   (brand key)
    GET  /v1/identifiers          glint lookup --qr|--nfc|--serial V      (public: ?scheme=&value=)
    GET  /v1/insights             glint insights --json                  (brand, auditor key)
    GET  /v1/insights/{table}.csv one of glint insights' CSV files        (brand, auditor key)

Each runs the library function the command runs (glint.workflows.lineage, glint.insights) on
the server's ledger thread; bodies are checked against their OpenAPI schema by hand (a field
the schema does not list is refused). A derivation or binding sent again appends nothing and
answers 200 with ``duplicate: true`` (a retry after a lost answer is safe); a different one that
clashes (a child that exists, an identifier bound elsewhere) is refused with the CLI's line.
Called by glint.server.app.create_app (``register``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from flask import Response, g, jsonify, request

from glint.errors import UsageError
from glint.ledger import events as ev
from glint.server import auth, openapi, schema

if TYPE_CHECKING:
    from flask import Flask

    from glint.ledger.group import LedgerWorker

MAX_DAYS = 36500          # a resale window of up to a century
_ITEM = {"$ref": "#/components/schemas/ItemId"}
_NAME = {"type": "string", "minLength": 1, "maxLength": schema.MAX_NAME}
_NOTE = {"type": "string", "minLength": 1, "maxLength": schema.MAX_NOTE}
_INDEXES = {"type": "array", "items": {"type": "integer", "minimum": 0}}


def _how() -> list[str]:
    from glint.workflows.lineage import HOW

    return list(HOW)


DERIVATION_SCHEMA = {
    "type": "object", "required": ["parent", "children"], "additionalProperties": False,
    "properties": {"parent": _ITEM,
                   "children": {"type": "array", "minItems": 1, "maxItems": schema.MAX_PARTS, "items": _ITEM},
                   "how": {"enum": _how(), "description": "default cut"},
                   "op": _NAME, "loc": _NAME, "note": _NOTE}}
DERIVED_SCHEMA = {
    "type": "object", "required": ["parent", "children", "how", "events", "duplicate"], "additionalProperties": False,
    "properties": {"parent": _ITEM, "children": {"type": "array", "items": _ITEM}, "how": {"enum": _how()},
                   "events": dict(_INDEXES, description="the derive event on the parent, then each child's "
                                                        "register event"),
                   "duplicate": {"type": "boolean"}}}
BINDING_SCHEMA = {
    "type": "object", "required": ["item", "scheme", "value"], "additionalProperties": False,
    "properties": {"item": _ITEM, "scheme": {"enum": list(ev.ID_SCHEMES)}, "value": _NOTE, "op": _NAME}}
BOUND_SCHEMA = {
    "type": "object", "required": ["item", "scheme", "value", "index", "duplicate"], "additionalProperties": False,
    "properties": {"item": _ITEM, "scheme": {"enum": list(ev.ID_SCHEMES)}, "value": {"type": "string"},
                   "index": {"type": "integer", "minimum": 0, "description": "the bind event's log index"},
                   "duplicate": {"type": "boolean"}}}
LOOKUP_SCHEMA = {
    "type": "object", "required": ["item", "scheme", "value", "brand", "provenance", "lineage"],
    "additionalProperties": False,
    "properties": {"item": _ITEM, "scheme": {"enum": list(ev.ID_SCHEMES)}, "value": {"type": "string"},
                   "brand": {"type": "string"}, "provenance": {"type": "string"},
                   "lineage": {"type": ["string", "null"], "description": "what the item was made from, if derived"}},
    "description": "the twin an identifier finds; it authenticates nothing (only a scan of the coating does)"}
_ROW = {"type": "object"}
INSIGHTS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["resale_days", "items", "events", "resales", "resales_by_location", "out_of_market",
                 "out_of_market_by_region", "scans_per_month", "scans_by_month"],
    "properties": {
        "resale_days": {"type": "integer", "minimum": 0}, "items": {"type": "integer", "minimum": 0},
        "events": {"type": "integer", "minimum": 0},
        "resales": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["item", "first_sale", "resale", "days", "location", "owner", "index"],
            "properties": {"item": {"type": "string"}, "first_sale": {"type": "integer"},
                           "resale": {"type": "integer"}, "days": {"type": "number"},
                           "location": {"type": "string"}, "owner": {"type": "string"},
                           "index": {"type": "integer"}}}},
        "resales_by_location": {"type": "object", "additionalProperties": {"type": "integer"}},
        "out_of_market": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["item", "market", "location", "region", "time", "result", "index"],
            "properties": {"item": {"type": "string"}, "market": {"type": "string"}, "location": {"type": "string"},
                           "region": {"type": "string"}, "time": {"type": "integer"},
                           "result": {"type": ["string", "null"]}, "index": {"type": "integer"}}}},
        "out_of_market_by_region": {"type": "object", "additionalProperties": {"type": "integer"}},
        "scans_per_month": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["item", "month", "scans"],
            "properties": {"item": {"type": "string"}, "month": {"type": "string"}, "scans": {"type": "integer"}}}},
        "scans_by_month": {"type": "object", "additionalProperties": {"type": "integer"}}},
    "description": "glint insights --json (glint.insights; docs/lifecycle.md defines each figure)"}


def _host(ctx) -> SimpleNamespace:
    """What glint.workflows.lineage needs of a host session: the server's ledger and registry, and no
    local matcher (an item unknown to the ledger is refused, not registered from references)."""
    return SimpleNamespace(ledger=ctx.ledger, registry=ctx.registry, db=frozenset())


# --- work done on the ledger thread ------------------------------------------------------

def _derive(ctx, parent: str, children: list[str], how: str, op, loc, note, scope: str | None = None) -> dict:
    from glint.orgs import check_write
    from glint.workflows.lineage import derive

    led = ctx.ledger
    if scope is not None and led.store.head(parent) is not None:
        check_write(led.item(parent), scope)
    if led.store.item_leaves(parent):
        for d in led.item(parent).derivations:
            if d.get("children") == children and d.get("how") == how:
                regs = [led.item(c).events[0].index for c in children]
                return {"parent": parent, "children": children, "how": how, "events": [d["index"], *regs],
                        "duplicate": True}
    added = derive(_host(ctx), parent, children, how, op, loc, note)
    return {"parent": parent, "children": children, "how": how, "events": [a.index for a in added],
            "duplicate": False}


def _bind(ctx, item: str, scheme: str, value: str, op, scope: str | None = None) -> dict:
    from glint.orgs import check_write
    from glint.workflows.lineage import bind, find_by_identifier

    host = _host(ctx)
    item = ev.check_item_id(item)
    if scope is not None and ctx.ledger.store.head(item) is not None:
        check_write(ctx.ledger.item(item), scope)
    if find_by_identifier(host, scheme, value) == item:
        idx = next(e.index for e in ctx.ledger.item(item).events
                   if e.kind == ev.BIND and e.data.get("scheme") == scheme and e.data.get("value") == value)
        return {"item": item, "scheme": scheme, "value": value, "index": idx, "duplicate": True}
    a = bind(host, item, scheme, value, op)
    return {"item": a.item, "scheme": scheme, "value": value, "index": a.index, "duplicate": False}


def _lookup(ctx, scheme: str, value: str) -> dict:
    from glint.workflows.lineage import lineage_line, resolve

    item = resolve(_host(ctx), scheme, value)
    st = ctx.ledger.item(item)
    return {"item": item, "scheme": scheme, "value": value, "brand": st.brand,
            "provenance": st.provenance_line(), "lineage": lineage_line(st) or None}


def _insights(ctx, days: int, brand: str | None, scope: str | None = None):
    from glint.insights import collect
    from glint.orgs import items_of

    return collect(ctx.ledger, days, None, brand, None if scope is None else items_of(ctx.ledger, scope))


# --- request checks ----------------------------------------------------------------------------

def _body(bad_request, allowed: set[str], required: set[str], usage: str) -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise bad_request("body nested too deeply") from None
    if not isinstance(body, dict) or set(body) - allowed or required - set(body):
        raise bad_request(f"body must be {usage}")
    return body


def _needs(roles: tuple[str, ...], route: str, action: str) -> None:
    k = g.api_key
    if k is None:
        raise auth.AuthError(f"{route} needs an API key", "send 'Authorization: Bearer <key>'")
    if k.role not in roles:
        raise auth.Forbidden(f"a {k.role} key may not {action}", "a " + " or ".join(roles) + " key may")


def _text(bad_request, name: str, v, n: int) -> str:
    if not isinstance(v, str) or not v or len(v) > n:
        raise bad_request(f"{name!r} must be a string of 1..{n} characters")
    if not v.isprintable():
        raise UsageError(f"{name!r} must be printable characters")
    return v


def register(app: Flask, worker: LedgerWorker, bad_request, int_arg) -> None:
    """Add the routes (``bad_request``: the app's 400 error class; ``int_arg``: its integer query parser)."""
    from glint.insights import CSV_TABLES, csv_text

    prefix = "/v1"

    @app.post(prefix + "/derivations")
    @openapi.operation(
        "Create items derived from a parent (glint derive: cut, machined, split)", access=("brand",),
        body=openapi.Body(openapi.component("Derivation", DERIVATION_SCHEMA)),
        responses={201: openapi.Body(openapi.component("Derived", DERIVED_SCHEMA)),
                   200: openapi.Body(openapi.component("Derived", DERIVED_SCHEMA))},
        errors=(400, 422, 503), tags=("items",),
        description="one commit: a derive event on the parent and a register event per child naming the "
                    "parent, how, and where the parent came from (the lineage in both twins and the children's "
                    "certificates); the parent must be registered and not retired, each child new; the same "
                    "derivation again appends nothing (200, duplicate: true)")
    def post_derivation():
        _needs(("brand",), "POST /v1/derivations", "derive items")
        body = _body(bad_request, set(DERIVATION_SCHEMA["properties"]), {"parent", "children"},
                     '{"parent": ID, "children": [ID, ...], "how": optional, "op", "loc", "note": optional}')
        if not isinstance(body["parent"], str) or not isinstance(body["children"], list):
            raise bad_request("'parent' is an item id and 'children' a list of item ids")
        how = body.get("how", "cut")
        if how not in _how():
            raise bad_request(f"'how' is one of {', '.join(_how())}")
        extra = {k: body[k] for k in ("op", "loc", "note") if k in body}
        schema.check_event(ev.DERIVE, body["parent"], None, {"children": body["children"], "how": how, **extra})
        out = worker.call(_derive, body["parent"], list(body["children"]), how, extra.get("op"), extra.get("loc"),
                          extra.get("note"), auth.org_scope(g.api_key))
        return jsonify(out), 200 if out["duplicate"] else 201

    @app.post(prefix + "/identifiers")
    @openapi.operation(
        "Bind a secondary identifier (QR label, NFC chip, serial) to an item (glint bind)", access=("brand",),
        body=openapi.Body(openapi.component("Binding", BINDING_SCHEMA)),
        responses={201: openapi.Body(openapi.component("Bound", BOUND_SCHEMA)),
                   200: openapi.Body(openapi.component("Bound", BOUND_SCHEMA))},
        errors=(400, 422, 503), tags=("items",),
        description="an identifier names one item: bound to another it is refused (422); the same binding "
                    "again appends nothing (200, duplicate: true). It finds the twin, it authenticates nothing.")
    def post_identifier():
        _needs(("brand",), "POST /v1/identifiers", "bind identifiers")
        body = _body(bad_request, set(BINDING_SCHEMA["properties"]), {"item", "scheme", "value"},
                     '{"item": ID, "scheme": "qr"|"nfc"|"serial", "value": TEXT, "op": optional}')
        if not isinstance(body["item"], str) or body["scheme"] not in ev.ID_SCHEMES:
            raise bad_request(f"'item' is an item id and 'scheme' one of {', '.join(ev.ID_SCHEMES)}")
        _text(bad_request, "value", body["value"], schema.MAX_NOTE)
        data = {"scheme": body["scheme"], "value": body["value"], **({"op": body["op"]} if "op" in body else {})}
        schema.check_event(ev.BIND, body["item"], None, data)
        out = worker.call(_bind, body["item"], body["scheme"], body["value"], body.get("op"), auth.org_scope(g.api_key))
        return jsonify(out), 200 if out["duplicate"] else 201

    @app.get(prefix + "/identifiers")
    @openapi.operation(
        "The item a secondary identifier is bound to (glint lookup)", access=openapi.PUBLIC,
        params=(openapi.query("scheme", {"enum": list(ev.ID_SCHEMES)}, required=True),
                openapi.query("value", _NOTE, required=True, description="the label's text, the chip id, the serial")),
        responses={200: openapi.Body(openapi.component("Lookup", LOOKUP_SCHEMA))},
        errors=(400, 422, 503), tags=("items",),
        description="422 when no item has it; the item's page is GET /v1/items/{item}")
    def get_identifier():
        scheme, value = request.args.get("scheme"), request.args.get("value")
        if scheme not in ev.ID_SCHEMES:
            raise bad_request(f"query parameter 'scheme' is one of {', '.join(ev.ID_SCHEMES)}")
        _text(bad_request, "value", value, schema.MAX_NOTE)
        return jsonify(worker.call(_lookup, scheme, value))

    def insights_args() -> tuple[int, str | None, str | None]:
        _needs(("brand", "auditor"), "GET /v1/insights", "read insights")
        days = int_arg("days", required=False)
        days = 30 if days is None else days
        if days > MAX_DAYS:
            raise bad_request(f"query parameter 'days' is at most {MAX_DAYS}")
        brand = request.args.get("brand")
        if brand is not None:
            _text(bad_request, "brand", brand, schema.MAX_NAME)
        return days, brand, auth.org_scope(g.api_key)  # an organization's key: its own items only

    insight_params = (
        openapi.query("days", {"type": "integer", "minimum": 0, "maximum": MAX_DAYS},
                      description="a resale is a transfer within this many days of the item's first sale (default 30)"),
        openapi.query("brand", _NAME, description="only this brand's items"))

    @app.get(prefix + "/insights")
    @openapi.operation(
        "Brand insights: quick resales by location, out-of-market scans, scans per item per month",
        access=("brand", "auditor"), params=insight_params,
        responses={200: openapi.Body(openapi.component("Insights", INSIGHTS_SCHEMA))},
        errors=(400, 422, 503), tags=("insights",),
        description="glint insights --json over the server's ledger, the items of the key's organization "
                    "(regions: the last comma part of a scan's location; the CSV tables are "
                    "GET /v1/insights/{table}.csv)")
    def get_insights():
        return jsonify(worker.call(_insights, *insights_args()).to_dict())

    @app.get(prefix + "/insights/<table>.csv")
    @openapi.operation(
        "One insights table as CSV (glint insights' resales.csv, out_of_market.csv, scans_per_month.csv)",
        access=("brand", "auditor"), params=insight_params, path_params={"table": {"enum": list(CSV_TABLES)}},
        responses={200: openapi.Body({"type": "string"}, media="text/csv", description="a header row, then a row "
                                     "per resale, scan or (item, month)")},
        errors=(400, 404, 422, 503), tags=("insights",))
    def get_insights_csv(table: str):
        if table not in CSV_TABLES:
            r = jsonify({"error": f"no insights table {table!r}", "hint": "one of " + ", ".join(CSV_TABLES)})
            r.status_code = 404
            return r
        ins = worker.call(_insights, *insights_args())
        return Response(csv_text(ins, table), mimetype="text/csv")


__all__ = ["register", "DERIVATION_SCHEMA", "BINDING_SCHEMA", "LOOKUP_SCHEMA", "INSIGHTS_SCHEMA"]
