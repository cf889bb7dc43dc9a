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
    _, path, blob, a = issued
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
    # who and where are sealed in the leaf (glint.ledger.sealed): a bare certificate does not say them
    assert (info.item, info.result, info.fap, info.device, info.operator, info.location) == (
        ITEM, "pass", 2.5e-10, "a1b2c3d4e5f60708", "[sealed]", "[sealed]")
    assert b"ana" not in blob and b"Paris" not in blob
    with Ledger.open(path, readonly=True) as led:
        revealed = led.history_reveals([info.event.raw], "owner")
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), reveals=revealed)
    assert (info.operator, info.location) == ("ana", "Paris")
    assert info.scan == __import__("hashlib").sha256(b"device-signed scan bytes").digest()
    assert info.history is None and info.state is None and not info.history_checked
    assert info.checkpoint.size == 5 and info.index == a.index and info.id == a.leaf_hash[:16].hex()
    with Ledger.open(path, readonly=True) as led:
        hist = led.history(ITEM, info.event.seq)
        owners = led.history_reveals(hist + [info.event.raw], "owner")
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), hist)
    assert [e.kind for e in info.history] == ["register", "enroll", "transfer"]
    assert info.state.owner == "[sealed]" and "Authentica Ltd" in info.state.provenance_line()
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), hist, owners)  # the buyer's view
    assert info.state.owner == "bob" and info.state.passport["origin"] == "[sealed]"  # the brand's value
    assert info.event.prev == info.history[-1].hash  # the chain head the history is checked against


def test_compact_claims_and_size(issued):
    _, _, blob, a = issued
    claims = cbor.loads(cose.decode1(blob).payload)
    assert set(claims) == {6, -4, -5, -6}  # format 3: issue time, the event, its proof, the log's signature
    data, index, seq, t, item, prev = claims[-4]
    assert (index, seq, t, item, len(prev)) == (a.index, 3, T0 + 3, ITEM, 32)
    assert data[0] == "pass" and data[6] == __import__("hashlib").sha256(b"device-signed scan bytes").digest()
    assert certmod.leaf_of(claims[-4]) == certmod.peek(blob).raw  # the event claim stands for the exact leaf
    assert len(claims[-5]) == 32  # index 4 = 0b100: one proof hash (the root of leaves 0-3) in the tree of size 5
    assert len(blob) < 480


def test_size_is_the_index_bits_not_the_log_or_the_history(tmp_path, keys):
    """A certificate's proof is to the tree right after its event: one hash per 1 bit of the index,
    however many events the log gained since and however long the item's history."""
    from glint.ledger import EventSpec

    with Ledger.open(tmp_path / "l.db", keys=keys, durable=False) as led:
        led.register_item("acme:S-1", "ACME")
        led.append_batch([EventSpec("verify", "acme:S-1", {"res": "pass"}, T0) for _ in range(126)])  # index 127 next
        a = led.record_verify("acme:S-1", "pass", fap=1e-9, device="a1b2c3d4e5f60708", time=T0)   # 0b1111111
        b = led.record_verify("acme:S-1", "pass", fap=1e-9, device="a1b2c3d4e5f60708", time=T0)   # 0b10000000
        early = led.issue_certificate(b.index)
        led.append_batch([EventSpec("verify", "acme:S-1", {"res": "pass"}, T0) for _ in range(1000)])
        late_a, late_b = led.issue_certificate(a.index), led.issue_certificate(b.index)
    for blob, index in ((late_a, a.index), (late_b, b.index), (early, b.index)):
        info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
        proof = cbor.loads(cose.decode1(blob).payload)[-5]
        assert info.checkpoint.size == index + 1 and len(proof) == 32 * bin(index).count("1")
    assert 0 <= len(late_a) - len(late_b) - 32 * 6 <= 2 and abs(len(early) - len(late_b)) <= 1  # CBOR heads


def test_format_2_still_verifies_and_tampering_fails(issued, keys):
    """A format-2 certificate (the leaf whole, a proof to a later checkpoint) issued before format 3."""
    _, path, blob, a = issued
    with Ledger.open(path, keys=keys) as led:
        note = led.checkpoint()
        cp = led.latest_checkpoint()[0]
        proof = led.prove(a.index, cp.size).hashes
        leaf = led.event(a.index).raw
    sig = certmod._note_signature(note, keys.log_verifier())
    claims = {"glint": 2, 6: T0, -1: leaf, -2: b"".join(proof), -3: [cp.size, sig]}
    old = cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=certmod.issuer_kid(keys.issuer_public),
                          protected_extra={3: certmod.CONTENT_FORMAT_CWT})
    info = verify_certificate(old, keys.issuer_public, keys.log_verifier())
    assert info.format == 2 and info.index == a.index and info.id == certmod.cert_id(a.leaf_hash)
    assert info.as_dict()["format"] == 2 and verify_certificate(blob, keys.issuer_public,
                                                               keys.log_verifier()).as_dict()["format"] == 3
    claims[-3] = [cp.size + 1, sig]
    forged = cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=certmod.issuer_kid(keys.issuer_public),
                             protected_extra={3: certmod.CONTENT_FORMAT_CWT})
    with pytest.raises(VerificationError, match="checkpoint signature does not verify|inclusion proof"):
        verify_certificate(forged, keys.issuer_public, keys.log_verifier())


def test_issue_cost_and_size_do_not_grow_with_history(tmp_path, keys):
    with Ledger.open(tmp_path / "l.db", keys=keys, durable=False) as led:
        led.register_item("acme:LONG-1", "ACME")
        led.append_batch([certmod_spec("acme:LONG-1", t) for t in range(300)])
        led.register_item("acme:SHORT-1", "ACME")
        a = led.record_verify("acme:SHORT-1", "pass", fap=1e-9, time=T0)
        b = led.record_verify("acme:LONG-1", "pass", fap=1e-9, time=T0)
        short, long_ = led.issue_certificate(a.index), led.issue_certificate(item="acme:LONG-1")
        # the same size but for the proof, one hash per 1 bit of each event's index (302, 303)
        assert abs(len(short) - 32 * bin(a.index).count("1") - len(long_) + 32 * bin(b.index).count("1")) <= 2
        bundle = led.bundle(long_)
    c, hist = certmod.read(bundle)
    assert c == long_ and len(hist) == 301
    info = verify_certificate(c, keys.issuer_public, keys.log_verifier(), hist)
    assert info.index == b.index and len(info.history) == 301


def certmod_spec(item, t):
    from glint.ledger import EventSpec

    return EventSpec("verify", item, {"res": "pass", "fap": 1e-9}, time=T0 + t)


def test_format_1_is_refused_by_name(keys):
    claims = {1: keys.origin, 6: T0, 7: bytes(16), "glint": 1, "item": ITEM}
    old = cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=certmod.issuer_kid(keys.issuer_public),
                          protected_extra={3: certmod.CONTENT_FORMAT_CWT})
    with pytest.raises(VerificationError, match="certificate format 1 is no longer issued"):
        verify_certificate(old, keys.issuer_public, keys.log_verifier())


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
        assert why in r.stderr
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x01
    (tmp_path / "bad.cose").write_bytes(bytes(bad))
    rc, out = _cli_verify(tmp_path, tmp_path / "bad.cose", env_pub)
    assert rc == 1 and out.startswith("glint: certificate rejected:"), out


def _resign(keys, blob, mutate):
    """Re-sign a certificate after changing its claims: what a compromised issuer could do."""
    msg = cose.decode1(blob)
    claims = cbor.loads(msg.payload)
    mutate(claims)
    return cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=msg.protected.get(4),
                           protected_extra={3: certmod.CONTENT_FORMAT_CWT})


def test_resigned_claims_fail_on_the_log_signature(issued, keys):
    """Even with the issuer key, changing the event, the proof or the size breaks the log's signature."""
    _, _, blob, _ = issued

    def fail_as_pass(c):
        c[-4][0][0] = "fail"

    def other_proof(c):
        c[-5] = bytes(32) + c[-5][32:]

    def other_index(c):
        c[-4][1] += 1

    def other_head(c):
        c[-4][5] = bytes(32)

    def text_key(c):  # the same data key spelled as text: one spelling only
        c[-4][0]["res"] = c[-4][0].pop(0)

    def extra_claim(c):
        c["hist"] = []

    for mutate, why in ((fail_as_pass, "checkpoint signature does not verify"),
                        (other_proof, "checkpoint signature does not verify"),
                        (other_index, "checkpoint signature does not verify|inclusion proof"),
                        (other_head, "checkpoint signature does not verify"),
                        (text_key, "spelled two ways"),
                        (extra_claim, "missing or unknown claims")):
        forged = _resign(keys, blob, mutate)
        with pytest.raises(VerificationError, match=why):
            verify_certificate(forged, keys.issuer_public, keys.log_verifier())


def test_altered_history_fails_against_the_chain_head(issued, keys):
    tmp_path, path, blob, _ = issued
    with Ledger.open(path, readonly=True) as led:
        hist = led.history(ITEM, 3)
    for bad, why in ((hist[:2], "history has 2 events"), ([hist[0].replace(b"ACME", b"ACMF")] + hist[1:],
                     "history was altered"), ([hist[1], hist[0], hist[2]], "another item or position")):
        with pytest.raises(VerificationError, match=why):
            verify_certificate(blob, keys.issuer_public, keys.log_verifier(), bad)
        (tmp_path / "b.glintb").write_bytes(certmod.make_bundle(blob, bad))
        rc, out = _cli_verify(tmp_path, tmp_path / "b.glintb", tmp_path / "pub")
        assert rc == 1 and "certificate rejected" in out, out


def test_bundle_verifies_offline_in_fresh_process(issued):
    tmp_path, path, blob, _ = issued
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "c.cose").write_bytes(blob)
    r = subprocess.run([sys.executable, "-m", "glint", "--home", str(home), "cert", "bundle", str(tmp_path / "c.cose"),
                        "-o", str(tmp_path / "c.glintb"), "--ledger", str(path), "--issuer",
                        str(tmp_path / "pub" / "issuer.pub"), "--log", str(tmp_path / "pub" / "log.vkey")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rc, out = _cli_verify(tmp_path, tmp_path / "c.glintb", tmp_path / "pub")
    assert rc == 0 and "history of 3 events checks against the chain head" in out, out


def test_history_altered_in_the_ledger_afterwards(issued, keys):
    """Rewrite the item's register event in storage: the history no longer reaches the certificate's chain head."""
    tmp_path, path, blob, a = issued
    db = sqlite3.connect(path)
    (leaf,) = db.execute("SELECT leaf FROM leaves WHERE idx = 0").fetchone()
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = 0", (leaf.replace(b"ACME", b"ACMF"),))
    db.commit()
    db.close()
    with Ledger.open(path, keys=keys) as led:
        hist = led.history(ITEM, 3)
        with pytest.raises(VerificationError, match="item history was altered: event 1"):
            verify_certificate(blob, keys.issuer_public, keys.log_verifier(), hist)
        with pytest.raises(VerificationError, match="history was altered"):
            led.bundle(led.issue_certificate(a.index))
        assert not led.verify().ok


def test_renderings(issued, keys, tmp_path):
    _, path, blob, _ = issued
    with Ledger.open(path, readonly=True) as led:
        hist = led.history(ITEM, 3)
        public = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), hist)
        info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), hist,
                                  led.history_reveals(hist + [public.event.raw], "brand"))
    assert "Italy" not in render.certificate_html(blob, public)  # the brand's passport value: sealed
    png, svg, html = tmp_path / "c.png", tmp_path / "c.svg", tmp_path / "c.html"
    url = "https://id.example.com/01/09506000134352/21/ABC123?c=" + info.id
    render.write_outputs(blob, info, str(png), str(svg), str(html), url=url)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()
    page = html.read_text()
    for text in (ITEM, "GENUINE", "Authentica Ltd", "Italy", "transfer", "<svg", "2.5e-10", url):
        assert text in page, text
    assert render.qr_code(url).version <= 6
    with pytest.raises(Exception, match="public URL"):
        render.write_outputs(blob, info, str(png))
