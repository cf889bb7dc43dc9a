"""The upload fast path (glint.server.fastpath) answers exactly as the Flask route does: the same
requests on two fresh homes, one served with it and one by Flask alone, get the same answers."""

from __future__ import annotations

import json

from softdevice import NOW, Api
from werkzeug.test import Client

REG = {"kind": "register", "item": "acme:FP-1", "time": NOW - 1000, "data": {"brand": "ACME", "prov": {"class": "factory"}}}
SVC = {"kind": "service", "item": "acme:FP-1", "time": NOW - 900, "data": {"action": "clean"}}


def _requests(keys):
    brand, bench = f"Bearer {keys['brand']}", f"Bearer {keys['bench']}"
    js = "application/json"
    return [
        ("POST", "/v1/events", brand, "k1", js, json.dumps(REG)),             # 201
        ("POST", "/v1/events", brand, "k1", js, json.dumps(REG)),             # 200, duplicate
        ("POST", "/v1/events", brand, "k1", js, json.dumps(SVC)),             # 409: key reused
        ("POST", "/v1/events", brand, "k2", js, json.dumps(SVC)),             # 201
        ("POST", "/v1/events", brand, None, js, json.dumps(SVC)),             # 400: no key header
        ("POST", "/v1/events", None, "k3", js, json.dumps(SVC)),              # 401: no API key
        ("POST", "/v1/events", "Bearer glk_nope", "k3", js, json.dumps(SVC)),  # 401: malformed key
        ("POST", "/v1/events", bench, "k3", js, json.dumps(SVC)),             # 403: role
        ("POST", "/v1/events", brand, "k4", js, json.dumps(dict(SVC, time=10**23))),  # 422: schema
        ("POST", "/v1/events", brand, "k5", js, json.dumps(dict(SVC, item="acme:NONE"))),  # 422: custody
        ("POST", "/v1/events", brand, "k6", js, "{not json"),                 # 400
        ("POST", "/v1/events", brand, "k6", js, "[1, 2]"),                    # 400: not an object
        ("POST", "/v1/events", brand, "k6", "text/plain", json.dumps(SVC)),   # 400: not JSON
        ("POST", "/v1/events", brand, "k6", js, "[" * 100000 + "]" * 100000),  # 400: nested too deeply
        ("POST", "/v1/events", brand, "k7", js, json.dumps(dict(SVC, data={"action": "x" * 2_000_000}))),  # 413
        ("GET", "/v1/events", brand, None, None, None),                        # 405
    ]


def _answers(client, keys):
    out = []
    for method, path, auth, idem, ctype, body in _requests(keys):
        headers = {k: v for k, v in (("Authorization", auth), ("Idempotency-Key", idem),
                                     ("Content-Type", ctype)) if v is not None}
        r = client.open(path, method=method, headers=headers, data=body)
        out.append((r.status_code, r.headers.get("Content-Type"), json.loads(r.get_data())))
    return out


def test_fast_path_answers_as_the_flask_route(tmp_path):
    apis = []
    for name in ("fast", "flask"):
        (tmp_path / name).mkdir()
        apis.append(Api(tmp_path / name))
    try:
        fast, flask = apis
        for a in apis:  # the same keys on both homes, so the answers can be compared
            a.keys = fast.keys if a is flask else a.keys
        from glint.server.auth import KeyStore

        ks_fast, ks_flask = KeyStore(tmp_path / "fast" / "glint.db"), KeyStore(tmp_path / "flask" / "glint.db")
        rows = ks_fast._conn().execute("SELECT * FROM api_keys").fetchall()
        ks_flask._conn().execute("DELETE FROM api_keys")
        for row in rows:
            ks_flask._conn().execute(f"INSERT INTO api_keys VALUES ({','.join('?' * len(row))})", row)
        ks_fast.close()
        ks_flask.close()
        a = _answers(fast.client, fast.keys)
        b = _answers(Client(flask.app.glint_flask_wsgi), fast.keys)
        assert [x[0] for x in a] == [201, 200, 409, 201, 400, 401, 401, 403, 422, 422, 400, 400, 400, 400, 413, 405]
        assert a == b
    finally:
        for a in apis:
            a.close()
