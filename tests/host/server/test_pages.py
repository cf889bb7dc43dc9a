"""The public pages through Flask's test client: the GS1 resolver, linksets, the item and certificate pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from openapitest import check_response
from pagestest import GTIN, ITEM, OTHER, PLAIN, cid, make_home

from glint.home import Home
from glint.ledger import Ledger
from glint.server.app import create_app

PATH = f"/01/{GTIN}/21/ABC123"
VOC = "https://gs1.org/voc/"

# The linkset schema (tests/host/server/gs1_linkset.schema.json): glint's, written from RFC 9264,
# RFC 8288 and the GS1-Conformant Resolver 1.2.0 text (GS1's own schema file is not vendored: no
# licence for copying it is stated); every linkset the resolver serves must validate against it.
LINKSET_SCHEMA = json.loads((Path(__file__).parent / "gs1_linkset.schema.json").read_text())
DESCRIPTION_RULES = {
    "type": "object", "required": ["name", "resolverRoot", "supportedPrimaryKeys", "supportedLinkType"],
    "properties": {
        "resolverRoot": {"type": "string", "pattern": "^https?://"}, "name": {"type": "string"},
        "supportedPrimaryKeys": {"type": "array", "items": {"enum": ["all", "01", "8006", "8013", "8010", "410", "411",
                                                                    "412", "413", "414", "415", "417", "8017", "8018",
                                                                    "255", "00", "253", "401", "402", "8003", "8004"]}},
        "supportedLinkType": {"type": "array", "items": {
            "type": "object", "required": ["namespace", "prefix"],
            "properties": {"namespace": {"type": "string", "pattern": "^https?://"},
                           "prefix": {"type": "string", "pattern": "^[a-zA-Z_][A-Za-z0-9_-]*?:$"}}}},
        "linkTypeDefaultCanBeLinkset": {"type": "boolean"}},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    w = make_home(tmp_path_factory.mktemp("pages") / "home")
    app = create_app(w["home"])
    w["client"] = app.test_client()
    w["app"] = app
    yield w
    app.glint_close()


def _rules(schema, doc):
    errors = list(Draft7Validator(schema).iter_errors(doc))
    assert not errors, errors[0].message


def test_the_rules_can_fail():
    bad = {"linkset": [{"anchor": "urn:x", "gs1:pip": [{"href": "ftp://x", "hreflang": ["english"]}]}]}
    assert len(list(Draft7Validator(LINKSET_SCHEMA).iter_errors(bad))) >= 2


def _schema_errors(doc) -> list[str]:
    return [e.message for e in Draft7Validator(LINKSET_SCHEMA).iter_errors(doc)]


def test_the_linkset_schema_is_a_schema_and_refuses_what_the_standard_refuses():
    Draft7Validator.check_schema(LINKSET_SCHEMA)
    good = {"href": "https://r.example/01/09506000134352?linkType=gs1:pip", "title": "Item page",
            "type": "text/html", "hreflang": ["en", "en-GB"], "context": [], "fwqs": False, "public": True}
    ok = {"linkset": [{"anchor": "https://r.example/01/09506000134352", "itemDescription": "x",
                       VOC + "pip": [good], "linkset": [good]}]}
    assert _schema_errors(ok) == []
    for bad in (
        {"linkset": []},                                                       # no link context object
        {"linkset": [{VOC + "pip": [good]}]},                                 # no anchor
        {"linkset": [{"anchor": "urn:x", VOC + "pip": [good]}]},              # anchor not http(s)
        {"linkset": [{"anchor": "https://r.example/a", VOC + "pip": [{"href": "https://r.example/b"}]}]},  # no title
        {"linkset": [{"anchor": "https://r.example/a", VOC + "pip": [{**good, "media": "print"}]}]},       # closed
        {"linkset": [{"anchor": "https://r.example/a", VOC + "pip": [{**good, "hreflang": "en"}]}]},      # not array
        {"linkset": [{"anchor": "https://r.example/a", VOC + "pip": [{**good, "type": "html"}]}]},
        {"linkset": [{"anchor": "https://r.example/a", "gs1:pip": [good]}]},   # a CURIE is not a relation type
        {"linkset": [{"anchor": "https://r.example/a", VOC + "pip": []}]},     # a relation with no target
        {"linkset": [{"anchor": "https://r.example/a"}], "extra": 1},
    ):
        assert _schema_errors(bad), bad


def test_every_served_linkset_validates_against_the_schema(served, tmp_path):
    """Each GS1 Digital Link item of the served home (and one registered but never verified), asked
    for its linkset every way the resolver answers with one."""
    home = tmp_path / "plain"
    Home(home).ensure()
    fresh = f"https://brand.example/01/{GTIN}/21/NEW-1"
    with Ledger.open(home / "ledger.db", keys=served["keys"], durable=False) as led:
        led.register_item(fresh, "ACME", time=1_760_000_000)
    app = create_app(home)
    try:
        clients = [(served["client"], [ITEM, OTHER]), (app.test_client(), [fresh])]
        n = 0
        for client, items in clients:
            for item in items:
                path = item[item.index("/01/"):]
                for how in ({"Accept": "application/linkset+json"}, {"Accept": "application/json"},
                            "linkType=linkset", "linkType=all"):
                    r = client.get(path, headers=how) if isinstance(how, dict) else client.get(f"{path}?{how}")
                    assert r.status_code == 200, (item, how)
                    assert _schema_errors(r.json) == [], (item, how, _schema_errors(r.json)[:1])
                    n += 1
        assert n == 12
    finally:
        app.glint_close()


def test_description_file(served):
    r = served["client"].get("/.well-known/gs1resolver")
    assert r.status_code == 200 and r.content_type == "application/json"
    _rules(DESCRIPTION_RULES, r.json)
    assert r.json["supportedPrimaryKeys"] == ["01"] and r.json["supportedLinkType"][0]["prefix"] == "gs1:"


@pytest.mark.parametrize("how", ["accept", "linkType=linkset", "linkType=all", "accept-json"])
def test_linkset_by_accept_or_link_type(served, how):
    c = served["client"]
    if how == "accept":
        r = c.get(PATH, headers={"Accept": "application/linkset+json"})
    elif how == "accept-json":
        r = c.get(PATH, headers={"Accept": "application/json"})
    else:
        r = c.get(f"{PATH}?{how}")
    assert r.status_code == 200
    assert r.content_type == ("application/json" if how == "accept-json" else "application/linkset+json")
    doc = r.json
    _rules(LINKSET_SCHEMA, doc)
    ctx = doc["linkset"][0]
    assert ctx["anchor"].endswith(PATH)
    for t in ("pip", "verificationService", "certificationInfo", "dpp", "traceability", "defaultLink"):
        assert VOC + t in ctx, t
    assert ctx[VOC + "verificationService"][0]["href"].endswith("/c/" + cid(served[ITEM]))
    assert [d["href"].split("/")[3] for d in ctx[VOC + "dpp"]] == ["01", "v1"]  # public here; other audiences by key
    assert "json-ld#context" in r.headers["Link"]


def test_redirects_to_the_link_type_or_the_default(served):
    c = served["client"]
    r = c.get(PATH, headers={"Accept": "text/html"})
    assert r.status_code == 307 and r.headers["Location"].endswith(f"{PATH}?linkType=gs1:pip")
    assert 'rel="linkset"' in r.headers["Link"]
    assert c.get(PATH, headers={"Accept": "*/*"}).status_code == 307   # curl: the default link
    r = c.get(f"{PATH}?c={cid(served[ITEM])}", headers={"Accept": "text/html"})
    assert r.status_code == 307 and r.headers["Location"].endswith("/c/" + cid(served[ITEM]))  # the QR code's URL
    r = c.get(f"{PATH}?linkType=gs1:verificationService")
    assert r.status_code == 307 and r.headers["Location"].endswith("/c/" + cid(served[ITEM]))
    r = c.get(f"{PATH}?linkType={VOC}certificationInfo")
    assert r.status_code == 307 and r.headers["Location"].endswith(f"/c/{cid(served[ITEM])}/cose")
    r = c.get(f"{PATH}?linkType=gs1:recipeInfo")  # a link type this item has not: the default link
    assert r.status_code == 307 and r.headers["Location"].endswith("?linkType=gs1:pip")
    # GTIN-13 asks for the same object as its GTIN-14 form
    assert c.get(f"/01/{GTIN[1:]}/21/ABC123?linkType=linkset").json["linkset"][0]["anchor"].endswith(PATH)


def test_local_link_targets(served):
    c = served["client"]
    dpp = c.get(f"{PATH}?linkType=gs1:dpp").json
    assert dpp["audience"] == "public" and dpp["passport"]["origin"] == "Italy"
    tr = c.get(f"{PATH}?linkType=gs1:traceability").json
    assert [e["kind"] for e in tr["events"]] == ["register", "passport", "enroll", "transfer", "verify"]
    text = str(tr) + str(dpp)
    assert "bob" not in text and "Paris" not in text and "ana" not in text  # people and places left out
    assert "42 EUR" not in text and "unit_cost" not in dpp["passport"]     # a brand-only passport field


def test_item_page_is_escaped_and_public(served):
    r = served["client"].get(f"{PATH}?linkType=gs1:pip")
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    page = r.get_data(as_text=True)
    assert "&lt;b&gt;calf&lt;/b&gt; &amp; &quot;brass&quot;" in page and "<b>calf" not in page
    assert "<script" not in page and "alert(1)" not in page and "Paris" not in page and "42 EUR" not in page
    assert "PASS" in page and f"/c/{cid(served[ITEM])}" in page and 'name="viewport"' in page
    assert "@media print" in page


def test_errors(served):
    c = served["client"]
    r = c.get(f"/01/{GTIN}/21/NOPE", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.content_type.startswith("text/html") and "no item" in r.get_data(as_text=True)
    r = c.get(f"/01/{GTIN}/21/NOPE")
    assert r.status_code == 404 and r.json["error"].startswith("no item")
    assert c.get(f"/01/{GTIN[:-1]}3/21/ABC123").status_code == 400          # check digit
    assert c.get(f"/01/{GTIN}/21/{'x' * 21}").status_code == 400            # AI 21: at most 20 characters
    assert c.get(f"{PATH}?linkType=nonsense").status_code == 400
    assert c.get("/c/" + "0" * 32).status_code == 404
    assert c.get("/c/not-an-id").status_code == 404


def test_certificate_page_embeds_what_the_browser_checks(served):
    c = served["client"]
    r = c.get("/c/" + cid(served[PLAIN]))
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'data-verdict="pending"' in page and 'id="glint-data"' in page and "crypto.subtle" in page
    assert "<script src" not in page and "http://" not in page.split('id="glint-data"')[0].split("<style>")[0]
    data = re.search(r'<script type="application/json" id="glint-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data  # JSON in a script element cannot close it
    assert c.get(f"/c/{cid(served[PLAIN])}/cose").data[:1] == b"\xd2"
    assert c.get(f"/c/{cid(served[PLAIN])}/bundle").data[:1] == b"\xa3"
    keys = c.get("/v1/keys").json
    assert keys["issuers"][0]["status"] == "active" and keys["log"]["vkey"].startswith(keys["log"]["origin"] + "+")
    assert c.get("/verify").status_code == 200 and c.get("/").status_code == 200


def test_answers_match_the_openapi_document(served):
    c = served["client"]
    doc = c.get("/v1/openapi.json").json
    for path, status in ((PATH + "?linkType=linkset", 200), (PATH, 307), ("/.well-known/gs1resolver", 200),
                         ("/v1/keys", 200), (f"/c/{cid(served[ITEM])}", 200), ("/verify", 200), ("/", 200)):
        r = c.get(path)
        assert r.status_code == status, path
        body = r.json if r.content_type.split(";")[0].endswith("json") else r.get_data(as_text=True)
        check_response(doc, "GET", path, r.status_code, r.content_type, body)


def _cbor_texts(b):
    """Every text string (and map key) in the CBOR item b, descending into tags and into byte strings that
    are whole CBOR items themselves (a COSE payload, a leaf); other byte strings are opaque and yield as is
    only when they are printable (a value stored as bytes would still be caught)."""
    import cbor2

    def walk(x):
        if isinstance(x, cbor2.CBORTag):
            yield from walk(x.value)
        elif isinstance(x, dict):
            for k, v in x.items():
                yield from walk(k)
                yield from walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                yield from walk(v)
        elif isinstance(x, str):
            yield x.encode()
        elif isinstance(x, bytes):
            try:
                inner = cbor2.loads(x)
            except Exception:  # noqa: BLE001 - not CBOR: opaque bytes
                if x.isascii() and x.decode().isprintable():
                    yield x
            else:
                yield from walk(inner)

    yield from walk(cbor2.loads(b))


def test_no_public_answer_holds_a_non_public_value(served):
    """Every public answer (no key), leaves and bundles decoded: no person, place or non-public passport
    value of any item (they are sealed in the leaves: glint.ledger.sealed)."""
    import base64
    import urllib.parse

    from glintcore import cbor

    c = served["client"]
    secret = (b"42 EUR", b"bob", b"ana", b"Paris", b"alert(1)")
    for item in (ITEM, PLAIN):
        q = urllib.parse.quote(item, safe="")
        i = cid(served[item])
        page = c.get(f"/c/{i}").get_data()
        data = re.search(rb'<script type="application/json" id="glint-data">(.*?)</script>', page, re.S).group(1)
        embedded = __import__("json").loads(data)
        blobs = [page, c.get(f"/v1/history/{q}").data, c.get(f"/v1/items/{q}").data, c.get(f"/v1/passports/{q}").data,
                 c.get(f"/c/{i}/cose").data, base64.b64decode(embedded["cert"])]
        blobs += [base64.b64decode(x) for x in c.get(f"/v1/history/{q}").json["leaves"] + embedded["history"]]
        bundle = cbor.loads(c.get(f"/c/{i}/bundle").data)
        assert set(bundle) == {"glint-bundle", "cert", "hist"}  # a public bundle reveals nothing
        blobs += [bundle["cert"], *bundle["hist"]]
        for b in blobs[:4]:  # HTML and JSON: text through and through
            for s in secret:
                assert s not in b, (item, s)
        for b in blobs[4:]:  # CBOR: its text and every byte string that is CBOR itself (salts, hashes and
            for t in _cbor_texts(b):  # signatures are random bytes a 3-letter name may occur in by chance)
                for s in secret:
                    assert s not in t, (item, s)
    assert b"Italy" in c.get(f"/c/{cid(served[ITEM])}/bundle").data  # a public passport value stays
