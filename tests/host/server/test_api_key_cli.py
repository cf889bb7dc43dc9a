"""glint api-key create / list / revoke as a user runs them, against the served app."""

from __future__ import annotations

import json

from glinttest import glint_cli
from softdevice import NOW

from glint.server.app import create_app


def glint(*args, home):
    return glint_cli(*args, "--home", home)


def test_create_use_list_revoke(tmp_path):
    home = tmp_path / "hq"
    assert glint("init", home=home).returncode == 0
    r = glint("api-key", "create", "--role", "brand", "--label", "brand-host", "--json", home=home)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    key = made["key"]
    text = glint("api-key", "create", "--role", "bench", "--label", "bench-1", home=home).stdout
    assert text.splitlines()[1].startswith("glk_")
    app = create_app(home)
    try:
        c = app.test_client()
        body = {"kind": "register", "item": "acme:K-1", "time": NOW, "data": {"brand": "A", "prov": {"class": "factory"}}}
        h = {"Authorization": f"Bearer {key}", "Idempotency-Key": "1"}
        assert c.post("/v1/events", json=body, headers=h).status_code == 201
        listed = json.loads(glint("api-key", "list", "--json", home=home).stdout)
        assert [k["label"] for k in listed] == ["brand-host", "bench-1"] and listed[0]["bytes_used"] > 0
        assert key not in glint("api-key", "list", home=home).stdout  # the secret is never shown again
        r = glint("api-key", "revoke", made["id"], home=home)
        assert r.returncode == 0 and "revoked brand key" in r.stdout
        r = c.post("/v1/events", json=dict(body, item="acme:K-2"), headers=dict(h, **{"Idempotency-Key": "2"}))
        assert r.status_code == 401 and "revoked" in r.json["error"]
        r = glint("api-key", "revoke", made["id"], home=home)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already revoked" in r.stderr
        r = glint("api-key", "create", "--role", "root", "--label", "x", home=home)
        assert r.returncode == 2 and "invalid choice" in r.stderr
        r = glint("api-key", "create", "--role", "owner", "--label", "ana-phone", home=home)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--owner" in r.stderr
        r = glint("api-key", "create", "--role", "owner", "--label", "ana-phone", "--owner", "ana", home=home)
        assert r.returncode == 0 and "owner key" in r.stdout and "(owner ana)" in r.stdout
        assert "owner=ana" in glint("api-key", "list", home=home).stdout
    finally:
        app.glint_close()
