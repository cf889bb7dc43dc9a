"""Public pages of ``glint serve``: a GS1-Conformant resolver, item pages, the in-browser certificate check.

Routes (public, no API key; rate-limited like every public route, glint.server.limits):

- ``GET /.well-known/gs1resolver``       the resolver description file (GS1-Conformant Resolver 1.2.0)
- ``GET /01/<GTIN>/21/<serial>``         the resolver: a linkset (RFC 9264, ``application/linkset+json``)
  for ``linkType=linkset``/``all`` or ``Accept: application/linkset+json``; otherwise a 307 to the link of
  the requested ``linkType`` or to the default link (the item page; with ``?c=<id>``, the certificate
  check). Local link targets: ``?linkType=gs1:pip`` (the item page, HTML), ``gs1:dpp`` (the public
  passport, JSON), ``gs1:traceability`` (the custody history, JSON); ``gs1:verificationService`` is
  ``/c/<id>`` and ``gs1:certificationInfo`` ``/c/<id>/cose`` of the latest certificate.
- ``GET /c/<id>``                        the certificate page: verifies in the browser (verify.js: WebCrypto
  ES256 and Ed25519 against the published keys, the inclusion proof, the checkpoint, the history) and
  marks ``<html data-verdict="verified|failed">``; self-contained, so a saved copy works offline
- ``GET /c/<id>/cose``, ``/c/<id>/bundle``  the certificate, and the bundle (certificate + history)
- ``GET /v1/keys``                       the published issuer keys (with revocation) and the log key
- ``GET /verify``, ``GET /``             the check for a saved certificate or bundle file; a start page

Every value from the ledger is escaped (html.escape) on the server or set as text in the browser.
Certificates served are the ones published in ``<home>/certs/by-id`` (glint.publish); an item page
issues and publishes its latest verification's certificate when none is published yet.
"""

from __future__ import annotations

import base64
import html
import json
import time as _time
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from flask import Response, redirect, request

from glint import publish
from glint.errors import UsageError
from glint.home import Home
from glint.items import gs1_check_digit_ok
from glint.ledger import cert as certmod
from glint.ledger import events as ev
from glint.server import openapi

if TYPE_CHECKING:
    from flask import Flask

    from glint.ledger.group import LedgerWorker

GS1_VOC = "https://gs1.org/voc/"
LINKSET = "application/linkset+json"
COSE = "application/cose"
BUNDLE = "application/cbor"
LINKSET_CONTEXT = "https://ref.gs1.org/standards/resolver/1.2.0/linkset-context"
# The link types this resolver offers (CURIE -> what is there); gs1:defaultLink is the item page.
LINK_TYPES = ("gs1:pip", "gs1:verificationService", "gs1:certificationInfo", "gs1:dpp", "gs1:traceability",
              "gs1:defaultLink")
MAX_SERIAL = 20  # GS1 AI 21: up to 20 characters
_GTIN_LENGTHS = (8, 12, 13, 14)


class NotFound(UsageError):
    """An unknown item or certificate (HTTP 404 on the public pages)."""


class BadPath(UsageError):
    """A malformed GS1 key or link type (HTTP 400)."""


def _asset(name: str) -> str:
    return resources.files("glint.server").joinpath(name).read_text(encoding="utf-8")


_ASSETS: dict[str, str] = {}


def asset(name: str) -> str:
    if name not in _ASSETS:
        _ASSETS[name] = _asset(name)
    return _ASSETS[name]


# --- data, computed on the ledger thread --------------------------------------------------------

class _Gs1Index:
    """(GTIN-14, serial) -> item id of every GS1 Digital Link item, followed incrementally."""

    def __init__(self) -> None:
        self.size = 0
        self.items: dict[tuple[str, str], str] = {}

    def find(self, led, gtin: str, serial: str) -> str | None:
        if led.size != self.size:
            for e in led.events(self.size, led.size):
                if e.kind == ev.REGISTER:
                    key = publish.gs1_key(e.item)
                    if key is not None:
                        self.items[key] = e.item
            self.size = led.size
        return self.items.get((gtin, serial))


def published_keys(ctx, home: Home) -> dict:
    """The issuer keys (status active or revoked, glint.server.certcheck's trust) and the log key."""
    from glint.server import certcheck

    # Read afresh: a key revoked in config.toml ([issuers] revoked) is published as revoked at once.
    trust = certcheck.Trust.of(ctx.keys.issuer_public, ctx.keys.log_vkey, Home(home.root).section("issuers"))
    issuers: list[dict[str, str | None]] = [
        {"kid": kid.hex(), "sec1": pub.hex(), "status": "revoked" if kid in trust.revoked else "active"}
        for kid, pub in trust.issuers.items()]
    issuers += [{"kid": kid.hex(), "sec1": None, "status": "revoked"} for kid in sorted(trust.revoked)
                if kid not in trust.issuers]
    return {"issuers": issuers, "log": {"origin": ctx.keys.origin, "vkey": ctx.keys.log_vkey}}


def _public(kind: str, data: dict) -> dict:
    """Event data as the public may see it: no people or places, no passport value of another audience."""
    from glint.ledger.passport import PRIVATE_FIELDS, redact_event_data

    return {k: v for k, v in redact_event_data(kind, data, "public").items() if k not in PRIVATE_FIELDS}


def _summary(e: ev.Event) -> str:
    d = _public(e.kind, e.data)
    parts = []
    for k, v in d.items():
        if k in ("scan", "ref", "prov", "passport", "parts", "aud", "hidden"):
            continue
        if k == "set" and isinstance(v, dict):
            v = ", ".join(sorted(map(str, v)))
        elif isinstance(v, bytes):
            v = v.hex()[:12]
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        parts.append(f"{k}={v}")
    if e.kind == ev.REGISTER:
        parts.insert(0, f"{d.get('brand')} ({(d.get('prov') or {}).get('class')})")
    return " ".join(str(p) for p in parts)


def _latest_certificate(ctx, home: Home, st) -> str | None:
    """Id of the certificate of the item's latest verification: published (issued now if it was not)."""
    lv = st.last_verify
    if not lv:
        return None
    e = ctx.ledger.event(lv["index"])
    cid = certmod.cert_id(e.hash)
    blob = publish.published(home, cid)
    if blob is None or certmod.kid_of(blob) != certmod.issuer_kid(ctx.keys.issuer_public):
        blob = ctx.ledger.issue_certificate(lv["index"])
        publish.publish(home, blob, cid)
    return cid


def item_view(ctx, home: Home, index: _Gs1Index, gtin: str, serial: str) -> dict:
    from glint.ledger.passport import visible

    item = index.find(ctx.ledger, gtin, serial)
    if item is None:
        raise NotFound(f"no item /01/{gtin}/21/{serial} here")
    st = ctx.ledger.item(item, "public")  # sealed values stay sealed (glint.ledger.sealed)
    cid = _latest_certificate(ctx, home, st)
    lv = st.last_verify
    return {
        "item": item, "brand": st.brand, "retired": st.retired, "passport": visible(st, "public"),
        "provenance": st.provenance.get("class"), "coatings": len(st.active_coatings()),
        "latest": None if not lv else {"index": lv["index"], "time": lv["time"], "result": lv.get("res"),
                                       "fap": lv.get("fap"), "certificate": cid},
        "events": [{"index": e.index, "time": e.time, "kind": e.kind, "summary": _summary(e),
                    "data": _jsonable(_public(e.kind, e.data))} for e in st.events],
    }


def cert_view(ctx, home: Home, cid: str) -> dict:
    blob = publish.published(home, cid)
    if blob is None:
        raise NotFound(f"no certificate {cid} is published here")
    # The browser judges the certificate; the server only adds the item's history as its log has it
    # (a forged certificate's page must still show, and fail, in the browser).
    e = certmod.peek(blob)
    item = e.item if e is not None else None
    history = ctx.ledger.history(e.item, e.seq) if e is not None and ctx.ledger.store.head(e.item) else None
    return {"id": cid, "cert": blob, "history": history, "item": item, "keys": published_keys(ctx, home),
            "status": _status(ctx, e)}


def _status(ctx, e: ev.Event | None) -> dict | None:
    """What this log says of the certified event now (glint.orgs.current_status), if it holds that event."""
    from glint.orgs import current_status

    if e is None or e.kind != ev.VERIFY or not 0 <= e.index < ctx.ledger.size:
        return None
    if ctx.ledger.event(e.index).hash != e.hash:
        return None  # not this log's event: the browser's checks will say so
    return current_status(ctx.ledger, e.index)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


# --- rendering ------------------------------------------------------------------------------------

def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _ts(t: int | None) -> str:
    return "" if t is None else _time.strftime("%Y-%m-%d %H:%M UTC", _time.gmtime(t))


def _page(title: str, body: str, extra_head: str = "", verdict: str | None = None) -> str:
    attr = f' data-verdict="{_e(verdict)}"' if verdict else ""
    return (f'<!DOCTYPE html>\n<html lang="en"{attr}><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<meta name=\"referrer\" content=\"no-referrer\"><link rel=\"icon\" href=\"data:,\"><title>{_e(title)}</title>"
            f"<style>{asset('pages.css')}</style>{extra_head}</head><body><main>{body}</main></body></html>\n")


def _script_json(data: dict) -> str:
    # JSON inside <script>: "<", ">" and "&" escaped so no data can close the element.
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def item_html(v: dict, base: str, path: str) -> str:
    rows = [("Item", v["item"]), ("Brand", v["brand"]), ("Provenance", v["provenance"]),
            ("Enrolled coatings", v["coatings"]), ("Status", "retired" if v["retired"] else "in service")]
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(val)}</td></tr>" for k, val in rows)
    passport = "".join(f"<tr><th>{_e(k)}</th><td>{_e(val)}</td></tr>" for k, val in sorted(v["passport"].items()))
    lv = v["latest"]
    if lv:
        res = str(lv["result"]).upper()
        fap = "" if lv["fap"] is None else f", false-accept probability {float(lv['fap']):.3g}"
        link = (f' <a href="{_e(base)}/c/{_e(lv["certificate"])}">Check its certificate in this browser</a>'
                if lv["certificate"] else "")
        latest = f"<p><strong>{_e(res)}</strong> at {_e(_ts(lv['time']))} (log index {_e(lv['index'])}{_e(fap)}).{link}</p>"
    else:
        latest = "<p>No verification recorded yet.</p>"
    hist = "".join(f"<tr><td>{_e(h['index'])}</td><td>{_e(_ts(h['time']))}</td><td>{_e(h['kind'])}</td>"
                   f"<td>{_e(h['summary'])}</td></tr>" for h in v["events"])
    nav = f'<a href="{_e(base)}/">glint</a> <a href="{_e(base)}{_e(path)}?linkType=linkset">linkset</a>'
    body = f"""<nav class="muted">{nav}</nav>
<h1>{_e(v['brand'])} item</h1>
<div class="scroll"><table>{facts}</table></div>
<h2>Latest verification</h2>{latest}
<h2>Product passport</h2><p class="muted">The public fields (other audiences: <code>GET /v1/passports</code> with a key).</p>
<div class="scroll"><table>{passport or '<tr><td>no public fields</td></tr>'}</table></div>
<h2>History</h2><p class="muted">Public fields only: people and places are left out.</p>
<div class="scroll"><table><tr><th>Log index</th><th>Time</th><th>Event</th><th>Details</th></tr>{hist}</table></div>
"""
    return _page(f"{v['brand']} item {v['item']}", body)


def cert_html(v: dict | None, base: str, keys: dict) -> str:
    """The certificate page (``v`` from cert_view), or the file check page when ``v`` is None."""
    data: dict = {"keys": keys, "published": int(_time.time())}
    if v is not None:
        data.update(id=v["id"], cert=base64.b64encode(v["cert"]).decode("ascii"),
                    history=None if v["history"] is None else [base64.b64encode(x).decode("ascii")
                                                                for x in v["history"]])
    links = ""
    if v is not None:
        cid = _e(v["id"])
        links = (f'<p class="noprint muted">Download: <a href="{_e(base)}/c/{cid}/cose">certificate</a> &middot; '
                 f'<a href="{_e(base)}/c/{cid}/bundle">bundle (certificate + history)</a>'
                 f' &middot; check offline: <code>glint cert verify BUNDLE --issuer KEY --log KEY</code></p>')
        page_url = publish.item_url("x", v["item"]) if v["item"] else None
        if page_url:
            links += f'<p class="noprint"><a href="{_e(base)}{_e(page_url[len("https://x"):])}">The item\'s page</a></p>'
    log = keys["log"]
    issuers = "".join(f"<tr><td class=\"mono\">{_e(k['kid'])}</td><td>{_e(k['status'])}</td></tr>" for k in keys["issuers"])
    title = "glint certificate" if v else "glint certificate check"
    waiting = "Checking the certificate in this browser..." if v else "Choose a certificate or bundle file to check."
    ident = f'<p class="mono muted">certificate {_e(v["id"])}</p>' if v else ""
    body = f"""<h1>{_e(title)}</h1>{ident}
<div id="verdict" class="verdict wait">{_e(waiting)}</div><p id="why"></p>
{_status_html(v.get("status") if v else None)}
<noscript><p>This page checks the certificate with JavaScript (WebCrypto); without it nothing is checked.</p></noscript>
<div class="scroll"><table id="facts"></table></div>
<h2>What was checked</h2><ol id="checks"></ol>
<h2>History</h2><div class="scroll"><table><tbody id="history"></tbody></table></div>
<div class="file"><label for="file">Check a saved certificate (.cose) or bundle file with the keys below:</label>
<input id="file" type="file" accept=".cose,.glintb,.bundle,application/cose,application/cbor"></div>
{links}
<h2>Keys this page checks against</h2>
<p class="muted">Published by this resolver when the page was made ({_e(_ts(data['published']))}); compare them with
the brand's own published keys to trust what "verified" means.</p>
<div class="scroll"><table><tr><th>Issuer key id (ES256)</th><th>Status</th></tr>{issuers}</table></div>
<p class="mono">log {_e(log['vkey'])}</p>
<script type="application/json" id="glint-data">{_script_json(data)}</script>
<script>{asset('verify.js')}</script>
"""
    return _page(title, body, verdict="pending")


def _status_html(s: dict | None) -> str:
    """The certificate's current status as this resolver's log says it (voided, retired, suspect)."""
    from glint.orgs import status_line

    if s is None:
        return ""
    cls = "ok" if s["status"] == "current" else "bad"
    newer = " A newer verification of the item exists." if s.get("newer") else ""
    return (f'<h2>Current status</h2><div id="status" class="verdict {cls}" data-status="{_e(s["status"])}">'
            f'{_e(status_line(s)[0].upper() + status_line(s)[1:])}.{_e(newer)}</div>'
            '<p class="muted">Said by this resolver\'s log now, beside what the certificate proves of its own time.</p>')


def linkset(v: dict, base: str, path: str) -> dict:
    anchor = base + path
    html_link = {"type": "text/html", "hreflang": ["en"]}
    pip = [{"href": f"{anchor}?linkType=gs1:pip", "title": f"{v['brand']} item page", **html_link}]
    links: dict[str, Any] = {"anchor": anchor, "description": f"{v['brand']} item {v['item']}",
                             GS1_VOC + "pip": pip, GS1_VOC + "defaultLink": pip}
    cid = v["latest"]["certificate"] if v["latest"] else None
    if cid:
        links[GS1_VOC + "verificationService"] = [{"href": f"{base}/c/{cid}", "title": "Check the latest "
                                                   "certificate in your browser", **html_link}]
        links[GS1_VOC + "certificationInfo"] = [{"href": f"{base}/c/{cid}/cose", "title": "Latest certificate "
                                                 "(COSE_Sign1, glint format 4)", "type": COSE}]
    links[GS1_VOC + "dpp"] = [
        {"href": f"{anchor}?linkType=gs1:dpp", "title": "Digital product passport: the public fields",
         "type": "application/json", "hreflang": ["en"]},
        {"href": f"{base}/v1/passports/{quote(v['item'], safe='')}", "title": "Digital product passport: the fields "
         "your API key's audience may read (owner, regulator, recycler, brand)", "type": "application/json",
         "hreflang": ["en"]}]
    links[GS1_VOC + "traceability"] = [{"href": f"{anchor}?linkType=gs1:traceability", "title": "Custody history "
                                        "(public fields)", "type": "application/json", "hreflang": ["en"]}]
    return {"linkset": [links]}


def resolver_description(base: str) -> dict:
    return {"name": "glint resolver", "resolverRoot": base, "supportedPrimaryKeys": ["01"],
            "supportedLinkType": [{"namespace": GS1_VOC, "prefix": "gs1:"}],
            "linkTypeDefaultCanBeLinkset": False}


# --- routes ---------------------------------------------------------------------------------------

def _link_type(raw: str | None) -> str | None:
    """The requested link type as a gs1: CURIE (full GS1 vocabulary URIs accepted), 'linkset', or None."""
    if raw is None or raw == "":
        return None
    if raw in ("linkset", "all"):
        return "linkset"
    if raw.startswith(GS1_VOC):
        raw = "gs1:" + raw[len(GS1_VOC):]
    if len(raw) > 100 or not raw.isprintable() or ":" not in raw:
        raise BadPath(f"linkType {raw[:40]!r} is not a link type", "e.g. linkType=gs1:pip or linkType=linkset")
    return raw


def _asks(media: str) -> bool:
    """The Accept header names ``media`` itself (not only through */*)."""
    return any(v == media and q > 0 for v, q in request.accept_mimetypes)


def _wants_html() -> bool:
    return _asks("text/html")


def _wants_linkset() -> bool:
    return _asks(LINKSET) or (_asks("application/json") and not _asks("text/html"))


def register(app: "Flask", worker: "LedgerWorker", home_dir) -> None:
    """Add the public pages to the app (called by glint.server.app.create_app)."""
    home = Home(home_dir)
    index = _Gs1Index()

    def base_url() -> str:
        host = publish.resolver_host(home, required=False)
        return f"https://{host}" if host else request.host_url.rstrip("/")

    def html_error(e: UsageError, status: int) -> Response:
        if not _wants_html():
            from glint.textsafe import clean

            hint = getattr(e, "hint", None) or None  # one line each: a path's newline or ESC is escaped
            return Response(json.dumps({"error": clean(e.msg), "hint": hint and clean(hint)}), status,
                            mimetype="application/json")
        hint = f"<p class=\"muted\">{_e(e.hint)}</p>" if getattr(e, "hint", None) else ""
        return Response(_page("glint: not found" if status == 404 else "glint: bad request",
                              f"<h1>{_e(e.msg)}</h1>{hint}"), status, mimetype="text/html")

    def guarded(fn: Callable[..., Response]) -> Callable[..., Response]:
        def view(*a, **kw):
            try:
                return fn(*a, **kw)
            except NotFound as e:
                return html_error(e, 404)
            except BadPath as e:
                return html_error(e, 400)
        view.__name__ = fn.__name__
        view.__doc__ = fn.__doc__
        return view

    def json_response(obj, mimetype="application/json", status=200) -> Response:
        return Response(json.dumps(obj, indent=1), status, mimetype=mimetype)

    html_body = openapi.Body({"type": "string"}, media=openapi.HTML, description="an HTML page")

    @app.get("/.well-known/gs1resolver")
    @openapi.operation("GS1 resolver description file (GS1-Conformant Resolver 1.2.0)", access=openapi.PUBLIC,
                       responses={200: openapi.Body({"type": "object", "required": ["name", "resolverRoot"]},
                                                    description="name, resolverRoot, supported keys and link types")},
                       tags=("public pages",))
    def well_known_gs1resolver():
        return json_response(resolver_description(base_url()))

    @app.get("/v1/keys")
    @openapi.operation("The published issuer keys (active or revoked) and the log key", access=openapi.PUBLIC,
                       responses={200: openapi.Body(openapi.component("PublishedKeys", KEYS_SCHEMA),
                                                    description="what the certificate page checks against")},
                       tags=("certificates",))
    def get_keys():
        return json_response(worker.call(published_keys, home))

    @app.get("/01/<gtin>/21/<path:serial>")
    @openapi.operation(
        "GS1 Digital Link resolver for one object: linkset, or a redirect to the requested link type",
        access=openapi.PUBLIC, tags=("public pages",), errors=(400, 404),
        params=(openapi.query("linkType", {"type": "string"}, description="linkset, all, gs1:pip, "
                              "gs1:verificationService, gs1:certificationInfo, gs1:dpp, gs1:traceability"),
                openapi.query("c", {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                              description="a certificate id (the QR code's): the default link is its check")),
        responses={200: openapi.Body({"type": "object", "required": ["linkset"]}, media=LINKSET,
                                     description="the linkset (RFC 9264), or for linkType=gs1:pip the item page "
                                                 "(text/html), gs1:dpp / gs1:traceability JSON"),
                   307: openapi.Body({"type": "string"}, media=openapi.HTML,
                                     description="redirect to the requested link, or the default link")},
        path_params={"gtin": {"type": "string", "pattern": "^[0-9]{8,14}$"}})
    @guarded
    def resolve(gtin: str, serial: str):
        if len(gtin) not in _GTIN_LENGTHS or not gtin.isdigit() or not gs1_check_digit_ok(gtin):
            raise BadPath(f"/01/{gtin[:20]} is not a GTIN with a valid check digit")
        if not 0 < len(serial) <= MAX_SERIAL or not serial.isprintable():
            raise BadPath(f"serial {serial[:30]!r} is not a GS1 serial (1-{MAX_SERIAL} characters)")
        gtin = gtin.zfill(14)
        path = publish.gs1_path(gtin, serial)
        lt = _link_type(request.args.get("linkType"))
        base = base_url()
        v = worker.call(item_view, home, index, gtin, serial)
        links = linkset(v, base, path)
        head = [f'<{base}{path}?linkType=linkset>; rel="linkset"; type="{LINKSET}"']
        if lt is None and _wants_linkset():
            lt = "linkset"
        if lt == "linkset":
            only_json = _asks("application/json") and not _asks(LINKSET)
            r = json_response(links, "application/json" if only_json else LINKSET)
            r.headers["Link"] = f'<{LINKSET_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; ' \
                                f'type="application/ld+json"'
            return r
        if lt == "gs1:pip":
            r = Response(item_html(v, base, path), 200, mimetype="text/html")
        elif lt == "gs1:dpp":
            r = json_response({"item": v["item"], "audience": "public", "passport": v["passport"]})
        elif lt == "gs1:traceability":
            r = json_response({"item": v["item"], "events": [dict(h) for h in v["events"]]})
        else:
            cid = request.args.get("c")
            target = links["linkset"][0].get(GS1_VOC + lt[4:]) if lt and lt.startswith("gs1:") else None
            if target is None and cid and certmod.is_cert_id(cid):
                href = f"{base}/c/{cid}"   # the QR code's URL: its certificate's check is the default link
            else:
                href = (target or links["linkset"][0][GS1_VOC + "defaultLink"])[0]["href"]
            r = redirect(href, 307)  # type: ignore[assignment]
        r.headers["Link"] = ", ".join(head)
        return r

    def published_view(cid: str) -> dict:
        """The published certificate ``cid`` and what its pages show (NotFound for a malformed id)."""
        if not certmod.is_cert_id(cid):
            raise NotFound(f"no certificate {cid[:40]} here", "a certificate id is 32 lower-case hex digits")
        return worker.call(cert_view, home, cid)

    @app.get("/c/<cid>")
    @openapi.operation("The certificate page: checks the certificate in the browser (WebCrypto)",
                       access=openapi.PUBLIC, tags=("public pages",), errors=(404,),
                       responses={200: html_body}, path_params={"cid": {"type": "string", "pattern": "^[0-9a-f]{32}$"}})
    @guarded
    def cert_page(cid: str):
        v = published_view(cid)
        return Response(cert_html(v, base_url(), v["keys"]), 200, mimetype="text/html")

    @app.get("/c/<cid>/cose")
    @openapi.operation("A published certificate (COSE_Sign1)", access=openapi.PUBLIC, tags=("certificates",),
                       errors=(404,), responses={200: openapi.Body({"type": "string"}, media=COSE,
                                                                   description="the certificate bytes")},
                       path_params={"cid": {"type": "string", "pattern": "^[0-9a-f]{32}$"}})
    @guarded
    def cert_file(cid: str):
        v = published_view(cid)
        r = Response(v["cert"], 200, mimetype=COSE)
        r.headers["Content-Disposition"] = f'attachment; filename="glint-{cid}.cose"'
        return r

    @app.get("/c/<cid>/bundle")
    @openapi.operation("A published certificate with the item's history (bundle, deterministic CBOR)",
                       access=openapi.PUBLIC, tags=("certificates",), errors=(404,),
                       responses={200: openapi.Body({"type": "string"}, media=BUNDLE,
                                                    description="{glint-bundle: 1, cert, hist}")},
                       path_params={"cid": {"type": "string", "pattern": "^[0-9a-f]{32}$"}})
    @guarded
    def cert_bundle(cid: str):
        v = published_view(cid)
        if v["history"] is None:
            raise NotFound(f"certificate {cid} is of an item this log does not have: nothing to bundle")
        r = Response(certmod.make_bundle(v["cert"], v["history"]), 200, mimetype=BUNDLE)
        r.headers["Content-Disposition"] = f'attachment; filename="glint-{cid}.glintb"'
        return r

    @app.get("/verify")
    @openapi.operation("Check a saved certificate or bundle file in the browser", access=openapi.PUBLIC,
                       tags=("public pages",), responses={200: html_body})
    def verify_page():
        return Response(cert_html(None, base_url(), worker.call(published_keys, home)), 200, mimetype="text/html")

    @app.get("/")
    @openapi.operation("Start page of the public pages", access=openapi.PUBLIC, tags=("public pages",),
                       responses={200: html_body})
    def start_page():
        base = base_url()
        body = (f"<h1>glint</h1><p>Scan the QR code on an item to see its page and check its certificate.</p>"
                f'<p><a href="{_e(base)}/verify">Check a saved certificate file</a> &middot; '
                f'<a href="{_e(base)}/.well-known/gs1resolver">resolver description</a> &middot; '
                f'<a href="{_e(base)}/v1/keys">published keys</a></p>')
        return Response(_page("glint", body), 200, mimetype="text/html")



KEYS_SCHEMA = {
    "type": "object", "required": ["issuers", "log"], "additionalProperties": False,
    "properties": {
        "issuers": {"type": "array", "items": {
            "type": "object", "required": ["kid", "sec1", "status"], "additionalProperties": False,
            "properties": {"kid": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                           "sec1": {"type": ["string", "null"], "pattern": "^04[0-9a-f]{128}$"},
                           "status": {"enum": ["active", "revoked"]}}}},
        "log": {"type": "object", "required": ["origin", "vkey"], "additionalProperties": False,
                "properties": {"origin": {"type": "string"}, "vkey": {"type": "string"}}},
    },
}
