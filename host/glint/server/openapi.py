"""The OpenAPI 3.1 document of the HTTP API, built from the served routes themselves.

One truth: every view function of the Flask app carries its operation, written beside its route::

    @app.get(API_PREFIX + "/checkpoint")
    @openapi.operation("Signed checkpoint of the current tree", access=openapi.PUBLIC,
                       responses={200: "Checkpoint"}, errors=(503,))
    def get_checkpoint(): ...

:func:`document` walks ``app.url_map``: the paths and methods are the app's rules (HEAD and
OPTIONS, which Flask adds itself, left out), the path parameters come from the rules' converters
(``<int:i>`` is a non-negative integer, ``<path:x>`` a string), and the event upload schema is
generated from glint.server.schema.FIELDS (each check carries the JSON Schema of what it
accepts) and glint.ledger.events.KIND_FIELDS (which fields are required). A rule whose view has
no operation makes :func:`document` raise :class:`Undocumented`, so a route cannot be served
undocumented (tests/host/server/test_openapi.py builds the document of the real app).

Every operation answers ``default``: the JSON error of docs/api.md (:data:`ERROR`), so a status
an operation does not list is still documented; ``errors`` lists the ones worth naming.
Named schemas live in :data:`SCHEMAS`; add one with :func:`component` (returns its ``$ref``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from glint.ledger import events as ev
from glint.server import schema as S

OPENAPI_VERSION = "3.1.0"
PUBLIC = "public"          # no key needed; a key (any role) may be sent and may see more
JSON = "application/json"
HTML = "text/html"


class Undocumented(Exception):
    """A served route without an operation (a programming error, not a client's)."""


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _hex(nbytes: int | None = None, description: str = "") -> dict:
    s: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]*$"}
    if nbytes is not None:
        s["minLength"] = s["maxLength"] = 2 * nbytes
    if description:
        s["description"] = description
    return s


_B64 = {"type": "string", "contentEncoding": "base64"}
_UINT = {"type": "integer", "minimum": 0}
MAX_INDEX = (1 << 63) - 1  # ledger indices and sizes are SQLite integers; larger is refused (400/422)
INDEX = {"type": "integer", "minimum": 0, "maximum": MAX_INDEX}  # an index or size parameter

ERROR_PROPERTIES: dict[str, dict] = {
    "error": {"type": "string", "minLength": 1, "description": "one line: what was refused and why"},
    "hint": {"type": ["string", "null"], "description": "one line: what to do about it"},
    "reason": {"type": "string", "description": "a scan or match check's code (bad-signature, counter, "
                                                "match-disagrees, ...) when one refused"},
}
ERROR = {"type": "object", "required": ["error", "hint"], "additionalProperties": False, "properties": ERROR_PROPERTIES}

EVENT_APPENDED_PROPERTIES: dict[str, dict] = {
    "key": {"type": "string"}, "index": _UINT, "leaf_hash": _hex(32), "tree_size": _UINT,
    "duplicate": {"type": "boolean"}}

# Named schemas of the document (components.schemas). Add with component().
SCHEMAS: dict[str, dict] = {
    "Error": ERROR,
    "ItemId": {"type": "string", "minLength": 1, "maxLength": ev.MAX_ITEM_ID,
               "pattern": "^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$",
               "description": "an item id (glint.items): a brand serial such as acme:BAG-000123 or a GS1 Digital "
                              "Link URI https://HOST/01/GTIN/21/SERIAL (check digit verified)"},
    "Digest": {"type": "object", "required": ["b64"], "additionalProperties": False,
               "properties": {"b64": dict(_B64, minLength=44, maxLength=44)},
               "description": "a 32-byte SHA-256 digest as {\"b64\": standard base64}"},
    "Reference": {"type": "object", "required": ["record", "width", "height"], "additionalProperties": False,
                  "properties": {"record": _B64, "width": {"type": "integer", "minimum": 16, "maximum": 8192},
                                 "height": {"type": "integer", "minimum": 16, "maximum": 8192}},
                  "description": "the matcher's reference record an enroll scan must match (glint.match.database)"},
    "EventAppended": {
        "type": "object", "required": ["key", "index", "leaf_hash", "tree_size", "duplicate"],
        "additionalProperties": False, "properties": EVENT_APPENDED_PROPERTIES},
    "NonceRequest": {"type": "object", "required": ["device"], "additionalProperties": False,
                     "properties": {"device": {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"}}},
    "Nonce": {"type": "object", "required": ["device", "nonce", "ttl_s"], "additionalProperties": False,
              "properties": {"device": _hex(8), "nonce": _hex(), "ttl_s": {"type": "number"}}},
    "Checkpoint": {
        "type": "object", "required": ["origin", "size", "root", "note", "log_vkey"], "additionalProperties": False,
        "properties": {"origin": {"type": "string"}, "size": _UINT, "root": _hex(32),
                       "note": {"type": ["string", "null"], "description": "C2SP signed note (null for an empty log)"},
                       "log_vkey": {"type": "string", "description": "signed-note verifier key; pin it out of band"}}},
    "InclusionProof": {
        "type": "object", "required": ["index", "tree_size", "leaf_hash", "hashes", "root"],
        "additionalProperties": False,
        "properties": {"index": _UINT, "tree_size": _UINT, "leaf_hash": _hex(32),
                       "hashes": {"type": "array", "items": _hex(32)}, "root": _hex(32)}},
    "ConsistencyProof": {
        "type": "object", "required": ["from", "to", "hashes", "root_from", "root_to"], "additionalProperties": False,
        "properties": {"from": _UINT, "to": _UINT, "hashes": {"type": "array", "items": _hex(32)},
                       "root_from": _hex(32), "root_to": _hex(32)}},
    "Certificate": {"type": "object", "required": ["index", "cert"], "additionalProperties": False,
                    "properties": {"index": _UINT, "cert": dict(_B64, description="the COSE_Sign1 certificate")}},
    "ItemEvent": {
        "type": "object", "required": ["index", "kind", "seq", "time", "leaf_hash", "data"],
        "properties": {"index": _UINT, "kind": {"type": "string"}, "seq": _UINT, "time": _UINT,
                       "leaf_hash": _hex(32), "data": {"type": "object"}}},
    "Item": {
        "type": "object", "required": ["item", "events"],
        "description": "the item's state replayed from its events (glint.ledger.twins) and its events; "
                       "public answers leave out people and places and say redacted: true",
        "properties": {"item": {"type": "string"}, "brand": {"type": ["string", "null"]},
                       "redacted": {"const": True},
                       "events": {"type": "array", "items": _ref("ItemEvent")}}},
}


def component(name: str, schema: dict) -> dict:
    """Register a named schema (components.schemas); return its ``$ref`` for use in operations."""
    if name in SCHEMAS and SCHEMAS[name] != schema:
        raise ValueError(f"OpenAPI schema {name!r} is defined twice")
    SCHEMAS[name] = schema
    return _ref(name)


@dataclass(frozen=True)
class Param:
    name: str
    where: str                    # query | header
    schema: dict
    required: bool = False
    description: str = ""

    def as_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "in": self.where, "required": self.required, "schema": self.schema}
        if self.description:
            d["description"] = self.description
        return d


def query(name: str, schema: dict, required: bool = False, description: str = "") -> Param:
    return Param(name, "query", schema, required, description)


def header(name: str, schema: dict, required: bool = False, description: str = "") -> Param:
    return Param(name, "header", schema, required, description)


@dataclass(frozen=True)
class Body:
    """A response (or request) body other than a named JSON schema: another media type or an inline schema."""

    schema: dict = field(default_factory=dict)
    media: str = JSON
    description: str = ""


@dataclass(frozen=True)
class Operation:
    summary: str
    access: str | tuple[str, ...]
    responses: dict[int, str | Body]
    body: str | Body | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    path_params: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    extra_bodies: dict[str, dict] = field(default_factory=dict)


def operation(summary: str, *, access: str | tuple[str, ...], responses: dict[int, str | Body],
              body: str | Body | None = None, body_required: bool = True, params: tuple[Param, ...] = (),
              errors: tuple[int, ...] = (), tags: tuple[str, ...] = (), path_params: dict[str, dict] | None = None,
              description: str = "", extra_bodies: dict[str, dict] | None = None) -> Callable:
    """Decorator: the OpenAPI operation of a view function (put it beside ``@app.get/post``).

    ``access``: :data:`PUBLIC` or the roles (glint.server.auth.ROLES) whose key it needs;
    ``responses``: status -> a name in SCHEMAS or a :class:`Body`; ``body``: the request body
    (a name in SCHEMAS or a Body); ``errors``: error statuses worth naming (all answer :data:`ERROR`);
    ``path_params``: schemas for path parameters beyond what the rule's converter says;
    ``extra_bodies``: more request media types the route takes (media type -> schema).
    """
    op = Operation(summary, access, dict(responses), body, body_required, tuple(params), tuple(errors), tuple(tags),
                   dict(path_params or {}), description, dict(extra_bodies or {}))

    def mark(view):
        setattr(view, "openapi", op)  # noqa: B010  (read back by document())
        return view
    return mark


STATUS_TEXT = {
    200: "OK", 201: "created", 400: "malformed request (query, header or body)",
    401: "no API key, or an unknown or revoked key", 403: "the key's role may not do this",
    404: "no such endpoint", 405: "method not allowed", 409: "the Idempotency-Key was used for another event",
    413: "body larger than 1 MiB", 422: "refused: a field, a check or a custody rule (nothing stored)",
    429: "rate limit (Retry-After)", 503: "storage unusable; retry later", 507: "disk quota of the key",
}


# --- the event upload schema, from glint.server.schema -----------------------------------------

def event_upload_schema(kind: str) -> dict:
    """The JSON Schema of a POST /v1/events body of ``kind``: the client-settable fields of schema.FIELDS."""
    checks = S.FIELDS[kind]
    props: dict[str, Any] = {}
    for name, check in checks.items():
        js = getattr(check, "json", None)
        if js is None:
            raise Undocumented(f"glint.server.schema check for {kind}.{name} has no JSON Schema (use @_json)")
        props[name] = js
    for name in sorted(S.DERIVED.get(kind, ())):
        props[name] = S.DERIVED_JSON[name]
    required = sorted(f for f in ev.KIND_FIELDS.get(kind, (frozenset(), frozenset()))[0] if f in checks)
    data: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        data["required"] = required
    body_props: dict[str, Any] = {
        "kind": {"const": kind}, "item": _ref("ItemId"),
        "time": {"type": ["integer", "null"], "minimum": S.EARLIEST_TIME, "maximum": ev.MAX_TIME,
                 "description": f"Unix seconds: at most {S.MAX_AGE_S // 86400} days old and {S.MAX_SKEW_S} s ahead "
                                "of the server's clock; absent or null: now"},
        "data": data,
    }
    req = ["kind", "item"] + (["data"] if required else [])
    if kind in S.DERIVED:  # the kinds that carry a device-signed scan
        body_props["scan"] = dict(_B64, description="the device-signed scan (COSE_Sign1); checked, stored, "
                                                    "its SHA-256 becomes data.scan")
        req.append("scan")
    if kind == ev.ENROLL:
        body_props["reference"] = _ref("Reference")
    return {"type": "object", "required": req, "properties": body_props, "additionalProperties": False,
            "title": f"{kind} event"}


def _event_schemas() -> dict[str, dict]:
    out = {f"Event_{k}": event_upload_schema(k) for k in S.FIELDS}
    out["EventUpload"] = {"oneOf": [_ref(n) for n in out], "discriminator": {"propertyName": "kind", "mapping": {
        k: f"#/components/schemas/Event_{k}" for k in S.FIELDS}}}
    return out


# --- the document ---------------------------------------------------------------------------------

_CONVERTERS = {"IntegerConverter": INDEX, "PathConverter": {"type": "string", "minLength": 1},
               "UnicodeConverter": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
_AUTO_METHODS = {"HEAD", "OPTIONS"}


_VAR = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def _path_of(rule) -> tuple[str, list[tuple[str, Any]]]:
    """'/v1/items/<path:item>' -> ('/v1/items/{item}', [('item', its converter)])."""
    names = _VAR.findall(rule.rule)
    return _VAR.sub(lambda m: "{" + m.group(1) + "}", rule.rule), [(n, rule._converters[n]) for n in names]


def all_schemas() -> dict[str, dict]:
    """components.schemas: SCHEMAS and the event schemas generated from glint.server.schema."""
    out = dict(SCHEMAS)
    out.update(_event_schemas())
    return dict(sorted(out.items()))


def _media(b: str | Body, what: str) -> tuple[dict, str]:
    if isinstance(b, str):
        if b not in SCHEMAS and not b.startswith("Event"):
            raise Undocumented(f"{what}: no schema named {b!r} in glint.server.openapi.SCHEMAS")
        return {JSON: {"schema": _ref(b)}}, ""
    return {b.media: {"schema": b.schema}}, b.description


def _operation_dict(method: str, path: str, op: Operation, rule, endpoint: str) -> dict:
    d: dict[str, Any] = {"operationId": f"{method.lower()}_{endpoint}".replace(".", "_"), "summary": op.summary}
    if op.description:
        d["description"] = op.description
    if op.tags:
        d["tags"] = list(op.tags)
    if op.access == PUBLIC:
        d["security"] = [{}, {"apiKey": []}]
        d["x-glint-roles"] = [PUBLIC]
    else:
        d["security"] = [{"apiKey": []}]
        d["x-glint-roles"] = list(op.access)
    params = []
    for var, conv in _path_of(rule)[1]:
        schema = op.path_params.get(var) or _CONVERTERS.get(type(conv).__name__)
        if schema is None:
            raise Undocumented(f"{method} {path}: say the schema of path parameter {var!r} (path_params=)")
        params.append({"name": var, "in": "path", "required": True, "schema": schema})
    params += [p.as_dict() for p in op.params]
    if params:
        d["parameters"] = params
    if op.body is not None:
        content, desc = _media(op.body, f"{method} {path} request body")
        content.update({m: {"schema": sch} for m, sch in op.extra_bodies.items()})
        d["requestBody"] = {"required": op.body_required, "content": content, **({"description": desc} if desc else {})}
    responses: dict[str, Any] = {}
    for status, b in sorted(op.responses.items()):
        content, desc = _media(b, f"{method} {path} response {status}")
        responses[str(status)] = {"description": desc or STATUS_TEXT.get(status, "answer"), "content": content}
    errors = set(op.errors) | ({401, 403} if op.access != PUBLIC else set()) | {429}
    for status in sorted(errors):
        responses[str(status)] = {"description": STATUS_TEXT.get(status, "error"),
                                  "content": {JSON: {"schema": _ref("Error")}}}
    if 429 in errors:
        responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    responses["default"] = {"description": "any other failure (404, 405, ...): the JSON error",
                            "content": {JSON: {"schema": _ref("Error")}}}
    d["responses"] = responses
    return d


def routes(app) -> list[tuple[str, str, str]]:
    """(METHOD, OpenAPI path, endpoint) of every route the app serves (HEAD/OPTIONS left out)."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - _AUTO_METHODS):
            out.append((method, _path_of(rule)[0], rule.endpoint))
    return sorted(out)


def document(app, version: str = "") -> dict:
    """The OpenAPI 3.1 document of ``app`` (raises Undocumented for a route without an operation)."""
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "openapi", None)
        path = _path_of(rule)[0]
        methods = sorted((rule.methods or set()) - _AUTO_METHODS)
        if op is None:
            raise Undocumented(f"{', '.join(methods)} {path} (view {rule.endpoint}) has no OpenAPI operation: "
                               "add @openapi.operation(...) beside its route (docs/api.md)")
        for method in methods:
            if method.lower() in paths.get(path, {}):
                raise Undocumented(f"{method} {path} is served twice")
            paths.setdefault(path, {})[method.lower()] = _operation_dict(method, path, op, rule, rule.endpoint)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "glint ledger HTTP API", "version": version or _version(),
                 "description": "glint serve: custody events, proofs, certificates (docs/api.md). Errors are "
                                "{error, hint[, reason]} JSON for every failure."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": all_schemas(),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "glk_<id>_<secret>",
                                           "description": "a per-host API key (glint api-key create --role ROLE)"}},
        },
    }


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("glint")
    except Exception:  # not installed (source checkout)
        return "0"
