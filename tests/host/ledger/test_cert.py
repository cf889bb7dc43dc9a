"""Scan certificates: offline verification in a fresh process, altered history, renderings."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from glintcore import cbor, cose

from glint.errors import LedgerError, VerificationError
from glint.ledger import Keys, Ledger, verify_certificate
from glint.ledger import cert as certmod
from glint.ledger import render

from .conftest import ITEM, T0


@pytest.fixture
def issued(tmp_path, keys):
    path = tmp_path / "ledger.db"
    with Ledger.open(path, keys=keys, durable=False) as led:
        led.register_item(ITEM, "ACME", passport={"origin": "Italy", "materials": "leather"},
                          provenance={"class": "later", "by": "Authentica Ltd", "at": T0, "reason": "pre-owned"})
        led.add_coating(ITEM, "c1", ref=bytes(range(32)), time=T0 + 1)
        led.transfer(ITEM, owner="bob", time=T0 + 2)
        led.register_item("acme:OTHER-1", "ACME")
        a = led.record_verify(ITEM, "pass", fap=2.5e-10, device="a1b2c3d4e5f60708", operator="ana",
                              location="Paris", scan=b"device-signed scan bytes", coating="c1", time=T0 + 3)
        blob = led.issue_certificate(a.index)
    pub = tmp_path / "pub"
    keys.export(pub)
    return tmp_path, path, blob, a


def _cli_verify(tmp_path, cert_path, pub):
    # A fresh process with an empty glint home: only the two public key files are available.
    env = dict(os.environ, GLINT_HOME=str(tmp_path / "empty-home"))
    r = subprocess.run([sys.executable, "-m", "glint", "cert", "verify", str(cert_path),
                        "--issuer", str(pub / "issuer.pem"), "--log", str(pub / "log.vkey")],
                       capture_output=True, text=True, env=env, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_offline_verification_in_fresh_process(issued):
    tmp_path, _, blob, a = issued
    (tmp_path / "c.cose").write_bytes(blob)
    rc, out = _cli_verify(tmp_path, tmp_path / "c.cose", tmp_path / "pub")
    assert rc == 0, out
    assert out.startswith(f"ok: {ITEM} PASS fap=2.5e-10") and f"event {a.index} of" in out
    assert not (tmp_path / "empty-home").exists()


def test_certificate_contents(issued, keys):
    _, _, blob, a = issued
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
    assert (info.item, info.result, info.fap, info.device, info.operator, info.location) == (
        ITEM, "pass", 2.5e-10, "a1b2c3d4e5f60708", "ana", "Paris")
    assert info.scan == __import__("hashlib").sha256(b"device-signed scan bytes").digest()
    assert [e.kind for e in info.history] == ["register", "enroll", "transfer"]
    assert info.state.owner == "bob" and "Authentica Ltd" in info.state.provenance_line()
    assert info.checkpoint.size == 5 and info.index == a.index


def test_wrong_keys_and_flipped_bytes_fail(issued):
    tmp_path, _, blob, _ = issued
    other = Keys.generate("glint.test/ledger")
    other.export(tmp_path / "other")
    (tmp_path / "c.cose").write_bytes(blob)
    env_pub = tmp_path / "pub"
    for issuer, log, why in ((tmp_path / "other", env_pub, "issuer key"), (env_pub, tmp_path / "other", "log key")):
        r = subprocess.run([sys.executable, "-m", "glint", "cert", "verify", str(tmp_path / "c.cose"),
                            "--issuer", str(issuer / "issuer.pub"), "--log", str(log / "log.vkey")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1, (why, r.stderr)
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x01
    (tmp_path / "bad.cose").write_bytes(bytes(bad))
    rc, out = _cli_verify(tmp_path, tmp_path / "bad.cose", env_pub)
    assert rc == 1 and out.startswith("glint: certificate rejected:"), out


def _resign(keys, blob, mutate):
    """Re-sign a certificate after changing its claims: what a compromised host could do."""
    msg = cose.decode1(blob)
    claims = cbor.loads(msg.payload)
    mutate(claims)
    return cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=msg.protected.get(4),
                           protected_extra={3: certmod.CONTENT_FORMAT_CWT})


def test_altered_history_fails_even_when_signed(issued, keys):
    _, _, blob, _ = issued

    def drop_transfer(c):
        c["hist"] = c["hist"][:2]

    def edit_register(c):
        c["hist"][0] = c["hist"][0].replace(b"Italy", b"Spain")

    def claim_fail_as_pass(c):
        c["res"] = "fail"

    for mutate, why in ((drop_transfer, "history has 2 events"), (edit_register, "history was altered"),
                        (claim_fail_as_pass, "claim 'res'")):
        forged = _resign(keys, blob, mutate)
        with pytest.raises(VerificationError, match=why):
            verify_certificate(forged, keys.issuer_public, keys.log_verifier())


def test_history_altered_in_the_ledger_afterwards(issued, keys):
    """Rewrite the item's register event in storage, then build a certificate from the altered rows."""
    tmp_path, path, blob, a = issued
    db = sqlite3.connect(path)
    (leaf,) = db.execute("SELECT leaf FROM leaves WHERE idx = 0").fetchone()
    forged = leaf.replace(b"Italy", b"Spain")
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = 0", (forged,))  # leaf hashes are derived, not stored
    db.commit()
    db.close()
    with Ledger.open(path, keys=keys) as led:
        with pytest.raises(LedgerError, match="does not verify"):
            led.issue_certificate(a.index)
        # Even signed by the honest issuer key, a certificate over the altered history fails offline.
        e = led.event(a.index)
        hist = [r.leaf for r in led.store.item_leaves(ITEM) if r.seq < e.seq]
        note = led.store.latest_checkpoint().note
        bad = certmod.build(keys, e.raw, hist, led.prove(a.index, 5).hashes, note)
        assert not led.verify().ok
    (tmp_path / "bad.cose").write_bytes(bad)
    rc, out = _cli_verify(tmp_path, tmp_path / "bad.cose", tmp_path / "pub")
    assert rc == 1 and "item history was altered" in out, out
    # The certificate issued before the edit still verifies: it is a snapshot.
    verify_certificate(blob, keys.issuer_public, keys.log_verifier())


def test_renderings(issued, keys, tmp_path):
    _, _, blob, _ = issued
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
    png, svg, html = tmp_path / "c.png", tmp_path / "c.svg", tmp_path / "c.html"
    render.write_outputs(blob, info, str(png), str(svg), str(html))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()
    page = html.read_text()
    for text in (ITEM, "GENUINE", "Authentica Ltd", "Italy", "transfer", "<svg", "2.5e-10"):
        assert text in page, text
    assert render.qr_code(blob).version <= 40
    with pytest.raises(Exception, match="does not fit"):
        render.qr_code(b"x" * 4000)
