"""Sealed values over HTTP (both backends): a reader without a key never receives a non-public value,
in any answer (history leaves included); a key's role receives exactly what its audience may read."""

from __future__ import annotations

import base64
import json

import pytest
from softdevice import NOW

from glint.ledger import sealed
from glint.ledger.passport import reader_of_role

ITEM = "acme:SEAL-9"
VALUES = {aud: f"pp-{aud}-5e1d" for aud in ("public", "owner", "regulator", "recycler", "brand")}
WHO = ("op-ana-5e1d", "loc-paris-5e1d", "own-bob-5e1d", "reg-cost-5e1d")


def _everything(r) -> bytes:
    """An answer's bytes with every base64 payload in it decoded too (leaves, reveals' salts and values)."""
    out = [r.data]

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"b64"}:
                out.append(base64.b64decode(v["b64"]))
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and len(v) >= 16:
            try:
                out.append(base64.b64decode(v, validate=True))
            except ValueError:
                pass

    walk(json.loads(r.data))
    return b"\n".join(out)


@pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)
def test_each_reader_gets_only_its_audiences(api):
    body = {"kind": "register", "item": ITEM, "time": NOW - 100,
            "data": {"brand": "ACME", "prov": {"class": "factory"}, "passport": {"cost": WHO[3]},
                     "op": WHO[0], "loc": WHO[1]}}
    assert api.post(body, role="brand").status_code == 201
    for n, (aud, value) in enumerate(VALUES.items()):
        r = api.post({"kind": "passport", "item": ITEM, "time": NOW - 90 + n,
                      "data": {"set": {f"f-{aud}": value}, "aud": aud, "op": WHO[0]}}, role="brand")
        assert r.status_code == 201, r.json
    assert api.post({"kind": "transfer", "item": ITEM, "time": NOW - 50, "data": {"owner": WHO[2]}},
                    role="brand").status_code == 201
    from glint.home import Home
    from glint.server.auth import KeyStore

    ks = KeyStore(Home(api.home).db)
    for role in ("regulator", "recycler"):
        api.keys[role] = ks.create(role, f"{role}-host")[1]
    api.keys["owner"] = ks.create("owner", "bob's phone", owner=WHO[2])[1]       # the item's owner
    api.keys["stranger"] = ks.create("owner", "eve's phone", owner="eve")[1]   # an owner of other items
    ks.close()
    for role in (None, "bench", "brand", "auditor", "regulator", "recycler", "owner", "stranger"):
        reader = "public" if role == "stranger" else reader_of_role(role)
        hist = api.get(f"/v1/history/{ITEM}", role=role)
        assert hist.status_code == 200
        leaves = b"".join(base64.b64decode(x) for x in hist.json["leaves"])
        for value in (*WHO, *(v for a, v in VALUES.items() if a != "public")):
            assert value.encode() not in leaves, (role, value)   # the leaves themselves: never
        got = _everything(hist) + _everything(api.get(f"/v1/passports/{ITEM}", role=role))
        for aud, value in VALUES.items():
            assert (value.encode() in got) == sealed.may_read(reader, aud), (role, aud)
        assert (WHO[2].encode() in got) == sealed.may_read(reader, "owner"), role  # revealed in history
        item = _everything(api.get(f"/v1/items/{ITEM}", role=role))
        for aud, value in VALUES.items():
            assert (value.encode() in item) == sealed.may_read(reader, aud), (role, aud)
        if reader == "public":
            for value in (*WHO, *(v for a, v in VALUES.items() if a != "public")):
                assert value.encode() not in got + item, (role, value)
    # the revealed values a keyed reader gets check against the commitments of the leaves it got
    hist = api.get(f"/v1/history/{ITEM}", role="brand").json
    from glint.ledger.events import decode_leaf
    from glint.server.wire import decode_value

    for raw in map(base64.b64decode, hist["leaves"]):
        e = decode_leaf(raw)
        rv = decode_value(hist["reveals"].get(str(e.index))) if str(e.index) in hist["reveals"] else None
        opened = sealed.open_data(e.kind, e.data, rv, sealed.ALL, e.index)
        assert not any(isinstance(v, sealed.Sealed) for v in opened.values())
