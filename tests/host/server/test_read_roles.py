"""Owner, regulator and recycler API keys read the passport fields of their audience; an owner key
only of the items its owner identity owns now (issue 16 point 8 on the API; glint.ledger.passport)."""

from __future__ import annotations

import pytest
from softdevice import ITEM, NOW

from glint.errors import UsageError
from glint.server.auth import KeyStore


def _key(api, role, owner=None):
    from glint.home import Home

    ks = KeyStore(Home(api.home).db)
    try:
        return ks.create(role, f"{role}-{owner}", owner=owner)[1]
    finally:
        ks.close()


def _read(api, token, path):
    return api.client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_owner_regulator_recycler_read_their_audience(api):
    assert api.post({"kind": "register", "item": ITEM, "time": NOW - 100,
                     "data": {"brand": "ACME", "prov": {"class": "factory"}}}, role="brand").status_code == 201
    for aud, fields in (("public", {"model": "Tote"}), ("owner", {"care": "wax yearly"}),
                        ("regulator", {"origin": "IT"}), ("recycler", {"strip": "unscrew clasp"}),
                        ("brand", {"cost": "41"})):
        r = api.post({"kind": "passport", "item": ITEM, "time": NOW - 90, "data": {"set": fields, "aud": aud}},
                     role="brand")
        assert r.status_code == 201, r.json
    keys = {"regulator": _key(api, "regulator"), "recycler": _key(api, "recycler"),
            "ana": _key(api, "owner", "ana"), "bob": _key(api, "owner", "bob")}

    def fields(who):
        r = _read(api, keys[who], f"/v1/passports/{ITEM}")
        assert r.status_code == 200, r.json
        return r.json["reader"], set(r.json["fields"])

    assert fields("regulator") == ("regulator", {"model", "origin"})
    assert fields("recycler") == ("recycler", {"model", "strip"})
    assert fields("ana") == ("public", {"model"})             # nobody owns it yet
    assert api.post({"kind": "transfer", "item": ITEM, "time": NOW - 80, "data": {"owner": "ana"}},
                    role="brand").status_code == 201
    assert fields("ana") == ("owner", {"model", "care"})
    assert fields("bob") == ("public", {"model"})             # bound to another owner
    page = _read(api, keys["ana"], f"/v1/items/{ITEM}").json
    assert set(page["passport"]) == {"model", "care"} and page["redacted"]   # passport reads only
    hidden = [e["data"] for e in page["events"] if e["kind"] == "passport" and "hidden" in e["data"]]
    assert len(hidden) == 3
    assert api.post({"kind": "transfer", "item": ITEM, "time": NOW - 70, "data": {"owner": "bob"}},
                    role="brand").status_code == 201
    assert fields("ana") == ("public", {"model"})             # sold: ana no longer reads owner fields
    assert fields("bob") == ("owner", {"model", "care"})
    # read-only roles upload nothing
    for who in keys:
        r = api.client.post("/v1/events", json={"kind": "passport", "item": ITEM, "time": NOW, "data": {"set": {}}},
                            headers={"Authorization": f"Bearer {keys[who]}", "Idempotency-Key": who})
        assert r.status_code == 403 and "may not upload" in r.json["error"], r.json


def test_owner_key_needs_its_owner(tmp_path):
    ks = KeyStore(tmp_path / "glint.db")
    try:
        with pytest.raises(UsageError, match="owner identity"):
            ks.create("owner", "ana-phone")
        with pytest.raises(UsageError, match="only an owner key"):
            ks.create("regulator", "customs", owner="ana")
        rec, _ = ks.create("owner", "ana-phone", owner="ana")
        assert ks.get(rec.key_id).owner == "ana" and ks.list()[0].to_dict()["owner"] == "ana"
    finally:
        ks.close()


def test_keys_table_from_before_owner_keys_gains_the_column(tmp_path):
    import sqlite3

    conn = sqlite3.connect(tmp_path / "glint.db")
    conn.execute("CREATE TABLE api_keys(key_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, role TEXT NOT NULL, "
                 "label TEXT NOT NULL, created REAL NOT NULL, revoked_at REAL, rate_per_s REAL NOT NULL, "
                 "quota_bytes INTEGER NOT NULL, bytes_used INTEGER NOT NULL DEFAULT 0, last_used REAL)")
    conn.commit()
    conn.close()
    ks = KeyStore(tmp_path / "glint.db")
    try:
        assert ks.create("owner", "x", owner="ana")[0].owner == "ana"
    finally:
        ks.close()
