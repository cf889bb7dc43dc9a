"""The HTTP ledger API through Flask's test client (real ledger, real SQLite files)."""

import pytest
from softdevice import NOW, Api

from glint.ledger import verify_consistency, verify_inclusion
from glint.server import wire
from glint.server.app import create_app

REG = {"kind": "register", "item": "acme:BAG-1", "time": NOW - 1000,
       "data": {"brand": "ACME", "prov": {"class": "factory"}}}


class _Client:
    """The test client with a brand key on every request."""

    def __init__(self, api):
        self.api = api
        self.c = api.client
        self.auth = {"Authorization": f"Bearer {api.keys['brand']}"}

    def post(self, path, json=None, data=None, headers=None, **kw):
        return self.c.post(path, json=json, data=data, headers={**self.auth, **(headers or {})}, **kw)

    def get(self, path):
        return self.c.get(path)


@pytest.fixture
def client(tmp_path):
    (tmp_path / "home").mkdir()
    api = Api(tmp_path / "home")
    yield _Client(api)
    api.close()


def post(client, body, key):
    return client.post("/v1/events", json=body, headers={"Idempotency-Key": key} if key else {})


def test_append_is_idempotent_on_the_key(client):
    r1 = post(client, REG, "k-1")
    assert r1.status_code == 201 and r1.json["index"] == 0 and not r1.json["duplicate"]
    r2 = post(client, REG, "k-1")
    assert r2.status_code == 200 and r2.json["duplicate"]
    assert r2.json["leaf_hash"] == r1.json["leaf_hash"]
    assert client.get("/v1/checkpoint").json["size"] == 1
    # same key, other event: refused, nothing appended
    other = dict(REG, item="acme:BAG-2")
    r3 = post(client, other, "k-1")
    assert r3.status_code == 409 and "different event" in r3.json["error"]
    assert client.get("/v1/checkpoint").json["size"] == 1


def test_a_factory_enrollment_is_the_brands_claim(client):
    """A bench key registers items as `later` (who, why); only a brand key claims `factory` (issue 16)."""
    bench = {"Authorization": f"Bearer {client.api.keys['bench']}"}
    claim = dict(REG, item="acme:BAG-9")
    r = client.post("/v1/events", json=claim, headers={**bench, "Idempotency-Key": "f-1"})
    assert r.status_code == 403 and "bench key may not register a factory enrollment" in r.json["error"]
    assert client.get("/v1/checkpoint").json["size"] == 0
    later = dict(claim, data={"brand": "ACME", "prov": {"class": "later", "by": "bench-host",
                                                       "at": NOW - 1000, "reason": "pre-owned"}})
    assert client.post("/v1/events", json=later, headers={**bench, "Idempotency-Key": "f-2"}).status_code == 201
    assert post(client, REG, "f-3").status_code == 201  # the brand's own factory enrollment


def test_bad_requests_are_one_line_errors(client):
    assert post(client, REG, None).status_code == 400
    assert client.post("/v1/events", data=b"not json", headers={"Idempotency-Key": "x"}).status_code == 400
    r = post(client, {"kind": "service", "item": "acme:NOPE", "data": {"action": "clean"}}, "k-2")
    assert r.status_code == 422 and "not registered" in r.json["error"]
    # the refused key is not bound: after registering, the same key appends
    post(client, dict(REG, item="acme:NOPE"), "k-reg")
    r = post(client, {"kind": "service", "item": "acme:NOPE", "data": {"action": "clean"}}, "k-2")
    assert r.status_code == 201
    assert post(client, dict(REG, extra=1), "k-3").status_code == 422
    assert client.get("/v1/proof/inclusion?index=x").status_code == 400
    assert client.get("/v1/proof/inclusion").status_code == 400
    assert client.get("/v1/proof/inclusion?index=99").status_code == 422
    assert client.get("/v1/nothing").status_code == 404



def test_raw_query_bytes_and_control_characters_in_paths(client):
    """Found by tools/fuzz_api_wsgi.py: a query string with raw bytes >= 0x80 was a 500 in process
    (werkzeug decodes it strictly; waitress refuses such a URI before glint, another WSGI server may
    not), and a percent-encoded newline or ESC in a path (over glint serve too) was echoed into the
    one-line error."""
    c = client.c
    for path in ("/v1/proof/inclusion", "/", "/v1/identifiers"):
        r = c.get(path, environ_overrides={"QUERY_STRING": "index=0&s\xffize=2"})
        assert r.status_code == 400 and r.json["error"] == "the query string is not UTF-8", (path, r.data)
    for path in ("/v1/ite%0A%1Bms", "/c/000000000000000w%0A%1BT00000000000000000000"):
        r = c.get(path)
        assert r.status_code in (400, 404) and r.is_json, (path, r.data)
        assert "\n" not in r.json["error"] and "\x1b" not in r.json["error"] and "\\n" in r.json["error"], r.json
    for method, path in (("GET", "/v1//checkpoint"), ("POST", "/v1//events"), ("GET", "/v1/proof//inclusion")):
        r = c.open(path, method=method, json={})   # was a 308 redirect with an HTML body (merged slashes)
        assert r.status_code in (404, 405) and r.is_json and r.json["error"], (path, r.status_code, r.data[:80])


def test_proofs_verify_against_the_checkpoint(client):
    post(client, REG, "r")
    for i in range(6):
        body = wire.event_body("service", "acme:BAG-1", NOW - 900 + i, {"action": f"clean {i}"})
        assert post(client, body, f"v{i}").status_code == 201
    cp = client.get("/v1/checkpoint").json
    assert cp["size"] == 7 and cp["note"].startswith(cp["origin"] + "\n7\n")
    p = client.get("/v1/proof/inclusion?index=3").json
    verify_inclusion(bytes.fromhex(p["leaf_hash"]), 3, 7, [bytes.fromhex(h) for h in p["hashes"]],
                     bytes.fromhex(cp["root"]))
    c = client.get("/v1/proof/consistency?from=3&to=7").json
    verify_consistency(3, 7, [bytes.fromhex(h) for h in c["hashes"]], bytes.fromhex(c["root_from"]),
                       bytes.fromhex(cp["root"]))
    item = client.get("/v1/items/acme:BAG-1").json
    assert len(item["events"]) == 7
    ev = item["events"][4]
    assert wire.decode_value(ev["data"])["action"] == "clean 3"


def test_keys_of_an_earlier_server_in_glint_db_are_taken_over(tmp_path):
    """A SQLite ledger keeps the idempotency keys in its own commits. A server before that kept them
    in glint.db: its done keys are moved into ledger.db at start, and a key it left pending (a crash
    between its append and the key's 'done') is still reconciled there, not appended twice."""
    import sqlite3

    from glint.server.store import IdempotencyStore, connect

    home = tmp_path / "home"
    home.mkdir()
    api = Api(home)
    c = _Client(api)
    post(c, REG, "r")
    body = wire.event_body("service", "acme:BAG-1", NOW - 100, {"action": "clean"})
    first = post(c, body, "v").json
    api.close()
    led = sqlite3.connect(home / "ledger.db", isolation_level=None)  # the keys as the earlier server wrote them
    rows = led.execute("SELECT key, body_hash, idx, leaf_hash FROM upload_keys").fetchall()
    led.execute("DELETE FROM upload_keys")
    led.close()
    db = connect(home / "glint.db")
    IdempotencyStore(db)
    for key, h, idx, lh in rows:
        pending = key.endswith(":v")
        db.execute("INSERT INTO idempotency(key, body_hash, state, idx, leaf_hash, created) VALUES(?,?,?,?,?,0)",
                   (key, h, "pending" if pending else "done", None if pending else idx, None if pending else lh))
    db.close()
    app = create_app(home)
    c.c = app.test_client()
    again = post(c, body, "v")
    assert again.status_code == 200 and again.json["duplicate"] and again.json["index"] == first["index"]
    assert post(c, REG, "r").status_code == 200  # the done key, now in ledger.db
    assert c.get("/v1/checkpoint").json["size"] == 2
    app.glint_close()
    db = connect(home / "glint.db")
    assert db.execute("SELECT state FROM idempotency").fetchall() == [("done",)]  # only the reconciled one
    db.close()


def test_wire_round_trip_keeps_bytes_and_floats():
    data = {"res": "pass", "fap": 1.25e-11, "ref": bytes(range(32)), "parts": {"clasp": "pass"}, "l": [b"\x00", 3]}
    body = wire.event_body("verify", "x:1", 5, data)
    import json

    kind, item, t, back, scan = wire.parse_event(json.loads(json.dumps(body)))
    assert (kind, item, t, back, scan) == ("verify", "x:1", 5, data, None)
    with pytest.raises(Exception):
        wire.parse_event(dict(body, scan="***"))


def test_deeply_nested_or_non_object_body_is_a_400_json_error(client):
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/v1/events", data=deep, content_type="application/json", headers={"Idempotency-Key": "k-deep"})
    assert r.status_code in (400, 413) and "error" in r.json
    r = client.post("/v1/events", data="[1, 2]", content_type="application/json", headers={"Idempotency-Key": "k-list"})
    assert r.status_code == 400 and "JSON object" in r.json["error"]
    assert client.get("/v1/checkpoint").json["size"] == 0


def test_history_endpoint(client):
    assert post(client, REG, "r1").status_code == 201
    body = {"kind": "passport", "item": "acme:BAG-1", "time": NOW - 900, "data": {"set": {"origin": "IT"}}}
    assert post(client, body, "p1").status_code == 201
    r = client.get("/v1/history/acme%3ABAG-1?before=1")
    assert r.status_code == 200 and r.json["events"] == 1 and r.json["head_seq"] == 1
    full = client.get("/v1/history/acme:BAG-1").json["leaves"]
    assert len(full) == 2 and full[0] == r.json["leaves"][0]
    assert client.get("/v1/history/acme:NOPE").status_code == 422
    assert client.get("/v1/history/acme:BAG-1?before=x").status_code == 400
