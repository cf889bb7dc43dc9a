"""POST /v1/certificates/verify, the marketplace check (issue 17 point 7): a genuine certificate verifies
(base64 in JSON or the raw file), and a tampered one, one from an unknown or revoked issuer key, one of a
forked log, one for another item and garbage each get a JSON answer naming the failed check."""

from __future__ import annotations

import base64
import os
import shutil

import pytest
from softdevice import ITEM, NOW, Api, SoftDevice, enroll_body, register_body

from glint.ledger import Keys
from glint.ledger.cert import issuer_kid
from glint.server import wire
from glint.server.certcheck import CHECKS

ALL = list(CHECKS)


def _session(home, device, coating, other):
    """A served home with one passing and one failing verification of ITEM; (api, pass cert, fail cert)."""
    device.provision(home)
    api = Api(home)
    ref, probes, (w, h) = coating
    assert api.post(register_body(), role="brand").status_code == 201
    assert api.post(enroll_body(device, coating)).status_code == 201
    certs = []
    for spots, res in ((probes[1], "pass"), (other[1][0], "fail")):
        r = api.post(wire.event_body("verify", ITEM, NOW - 50, {"res": res}, device.sign(spots, w, h)))
        assert r.status_code == 201, r.json
        certs.append(base64.b64decode(api.get(f"/v1/certificates/{r.json['index']}").json["cert"]))
    return api, certs[0], certs[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, coating, other_coating):
    home = tmp_path_factory.mktemp("hq")
    api, good, fail = _session(home, SoftDevice(4), coating, other_coating)
    yield api, good, fail
    api.close()


def check(api, cert=None, item=None, raw=None, addr="127.0.0.1"):
    env = {"REMOTE_ADDR": addr}
    if raw is not None:
        r = api.client.post("/v1/certificates/verify" + (f"?item={item}" if item else ""), data=raw,
                            content_type="application/cose", environ_base=env)
    else:
        body = {"cert": base64.b64encode(cert).decode()} if isinstance(cert, bytes) else cert
        if item is not None:
            body["item"] = item
        r = api.client.post("/v1/certificates/verify", json=body, environ_base=env)
    return r


def test_a_genuine_certificate_verifies(served):
    api, good, _fail = served
    r = check(api, good, item=ITEM)
    assert r.status_code == 200, r.json
    a = r.json
    assert a["verdict"] == "verified" and a["failure"] is None and a["checks_passed"] == ALL
    assert a["item"] == ITEM and a["result"] == "pass" and a["time"] == NOW - 50 and a["is_listing_item"] is True
    assert a["issuer"] == issuer_kid(Keys.load(api.home).issuer_public).hex()
    # the file as glint cert issue writes it, raw
    r = check(api, raw=good, item=ITEM, addr="10.0.0.2")
    assert r.json["verdict"] == "verified" and r.json["checks_passed"] == ALL
    # without a listing item: no item check, no answer about it
    a = check(api, good, addr="10.0.0.3").json
    assert a["verdict"] == "verified" and a["checks_passed"] == ALL[:-1] and a["is_listing_item"] is None


def test_another_item_a_failed_scan_and_tampering_are_named(served):
    api, good, fail = served
    a = check(api, good, item="acme:BAG-2").json
    assert a["verdict"] == "failed" and a["failure"]["check"] == "item" and a["is_listing_item"] is False
    a = check(api, fail, item=ITEM).json
    assert a["verdict"] == "failed" and a["failure"]["check"] == "result-pass" and a["result"] == "fail"
    for pos in (len(good) - 5, len(good) // 2, 40):
        bad = bytearray(good)
        bad[pos] ^= 0x01
        a = check(api, bytes(bad), item=ITEM).json
        assert a["verdict"] == "failed" and a["failure"]["check"] in ("format", "certificate"), a
        assert a["item"] is None and "\n" not in a["failure"]["error"]
    a = check(api, good[:-10]).json
    assert a["failure"]["check"] in ("format", "certificate")


def test_garbage_gets_a_json_answer_never_a_500(served):
    api, _good, _fail = served
    for i, cert in enumerate((b"", os.urandom(300), b"\xd2\x84" + os.urandom(50), b"\xa1\x01\x02")):
        a = check(api, cert, addr=f"10.1.0.{i}").json
        assert a["verdict"] == "failed" and a["failure"]["check"] == "format", a
        assert check(api, raw=cert, addr=f"10.2.0.{i}").json["failure"]["check"] == "format"
    a = check(api, {"cert": "not base64!"}).json
    assert a["failure"] == {"check": "format", "error": "'cert' is not standard base64"}
    for body in ({}, {"cert": 5}, {"cert": "AA==", "extra": 1}, {"cert": "AA==", "item": ""}, [1]):
        r = check(api, body, addr="10.3.0.1")
        assert r.status_code == 400 and r.json["error"] and "\n" not in r.json["error"], body
    r = api.client.post("/v1/certificates/verify", data=b"{{", content_type="application/json")
    assert r.status_code == 400 and r.json["error"]


def test_unknown_revoked_and_forked_issuers(tmp_path, served, coating, other_coating):
    api, good, _fail = served
    # another home's certificate: its issuer key is not one this server vouches for
    other_api, other_good, _ = _session(tmp_path / "other", SoftDevice(5), coating, other_coating)
    other_api.close()
    a = check(api, other_good, item=ITEM).json
    assert a["verdict"] == "failed" and a["failure"]["check"] == "issuer-known" and a["checks_passed"] == ["format"]
    # a fork: the same keys (copied), another ledger: the signatures verify, this log disagrees
    fork = tmp_path / "fork"
    fork.mkdir()
    shutil.copytree(api.home / "keys", fork / "keys")
    fork_api, fork_good, _ = _session(fork, SoftDevice(6), coating, other_coating)
    fork_api.close()
    a = check(api, fork_good, addr="10.4.0.1").json
    assert a["failure"]["check"] == "log-consistent", a
    assert a["checks_passed"] == ["format", "issuer-known", "issuer-not-revoked", "certificate"]
    # revoked: the operator lists the key id in [issuers] revoked; the server refuses from then on
    kid = a["issuer"]
    (tmp_path / "rev").mkdir()
    shutil.copytree(api.home, tmp_path / "rev" / "hq")
    rev_home = tmp_path / "rev" / "hq"
    (rev_home / "config.toml").write_text(f'[issuers]\nrevoked = ["{kid}"]\n')
    from glint.server.app import create_app

    app = create_app(rev_home)
    try:
        r = app.test_client().post("/v1/certificates/verify", json={"cert": base64.b64encode(good).decode()})
        a = r.json
        assert a["verdict"] == "failed" and a["failure"]["check"] == "issuer-not-revoked" and kid in a["failure"]["error"]
        (rev_home / "config.toml").write_text("")  # un-revoked (config changed): counts again, no restart
        r = app.test_client().post("/v1/certificates/verify", json={"cert": base64.b64encode(good).decode()})
        assert r.json["verdict"] == "verified", r.json
    finally:
        app.glint_close()


def test_the_check_is_rate_limited_per_caller(served):
    api, good, _fail = served
    statuses = []
    for _ in range(1000):  # the bucket refills at 20/s: a loaded machine needs more than burst + 20 requests
        statuses.append(check(api, {"cert": "AA=="}, addr="10.9.9.9").status_code)
        if statuses[-1] == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429 and len(statuses) > 40
    assert check(api, good, addr="10.9.9.8").status_code == 200  # another caller is not affected


def test_a_history_that_does_not_chain_is_named(served):
    """The history check is the library's (glint.ledger.cert.check_history) over this server's log: a log
    whose history of the item does not lead to the certificate's chain head fails it."""
    from glint.ledger import Ledger
    from glint.orgs import current_status
    from glint.server.certcheck import Trust
    from glint.server.certcheck import check as run_check

    api, good, _fail = served
    keys = Keys.load(api.home)
    trust = Trust.of(keys.issuer_public, keys.log_vkey, {})
    with Ledger.open(api.home / "ledger.db", keys=keys, readonly=True) as led:
        hist = led.history(ITEM)
        root = led.root
        ok = run_check(good, ITEM, trust, root, lambda item, seq: led.history(item, seq),
                       lambda index: current_status(led, index))
        assert ok.failure is None and ok.checks_passed == ALL and ok.status["status"] == "current"
        for bad in (lambda item, seq: hist[:seq - 1], lambda item, seq: hist[1:seq + 1], lambda item, seq: []):
            a = run_check(good, ITEM, trust, root, bad)
            assert a.failure["check"] == "history" and a.checks_passed == ALL[:ALL.index("history")], a.failure
