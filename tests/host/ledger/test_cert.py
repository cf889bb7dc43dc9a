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


def test_compact_claims_and_size(issued, keys):
    _, _, blob, a = issued
    msg = cose.decode1(blob)
    assert msg.protected == {1: -7, 4: certmod.issuer_kid(keys.issuer_public)}  # ES256 and the key id, no content type
    claims = cbor.loads(msg.payload)
    assert isinstance(claims, list) and len(claims) == 10  # format 4: one array
    dt, index, seq, t, item, res, fap, dev, data, hashes = claims
    assert (index, seq, t, res, fap, dev) == (a.index, 3, T0 + 3, 0, 2.5e-10, bytes.fromhex("a1b2c3d4e5f60708"))
    assert item == ["id.example.com", 9506000134352, "ABC123"] == certmod.gs1_parts(ITEM)  # a GS1 Digital Link id
    assert t + dt == verify_certificate(blob, keys.issuer_public, keys.log_verifier()).issued
    assert set(data) == {5, 9}  # coat and the sealed commitments of op and loc (keys 0-9: DATA_KEYS)
    scan = __import__("hashlib").sha256(b"device-signed scan bytes").digest()
    # logsig, the chain head, the scan digest, and one proof hash: index 4 = 0b100 (the root of leaves 0-3)
    assert len(hashes) == 64 + 32 + 32 + 32 and hashes[96:128] == scan
    assert hashes[64:96] == certmod.peek(blob).prev
    assert certmod.leaf_of4(claims)[0] == certmod.peek(blob).raw  # the payload stands for the exact leaf
    assert len(blob) < 420


def _format3(path, keys, index, issued=T0 + 9):
    """The format-3 certificate (a CWT) that glint issued before format 4, of the event ``index``."""
    from glint.ledger import merkle

    with Ledger.open(path, keys=keys) as led:
        note = led._certificate_checkpoint(index + 1)
        proof = merkle.inclusion_proof(index, index + 1, led.store.get_nodes)
        return certmod.build3(keys, led.event(index).raw, proof, note, issued)


def test_format_3_still_verifies_and_tampering_fails(issued, keys):
    _, path, blob, a = issued
    old = _format3(path, keys, a.index)
    claims = cbor.loads(cose.decode1(old).payload)
    assert set(claims) == {6, -4, -5, -6}
    assert certmod.leaf_of(claims[-4]) == certmod.peek(old).raw
    info = verify_certificate(old, keys.issuer_public, keys.log_verifier())
    new = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
    assert info.format == 3 and new.format == 4 and info.id == new.id and info.issued == T0 + 9
    assert (info.item, info.result, info.fap, info.device, info.scan) == (new.item, new.result, new.fap, new.device,
                                                                           new.scan)
    assert len(old) - len(blob) >= 25

    def fail_as_pass(c):
        c[-4][0][0] = "fail"

    def text_key(c):  # the same data key spelled as text: one spelling only
        c[-4][0]["res"] = c[-4][0].pop(0)

    for mutate, why in ((fail_as_pass, "checkpoint signature does not verify"), (text_key, "spelled two ways")):
        with pytest.raises(VerificationError, match=why):
            verify_certificate(_resign(keys, old, mutate, cwt=True), keys.issuer_public, keys.log_verifier())


def test_a_leaf_format_4_cannot_spell_gets_format_3(tmp_path, keys):
    with Ledger.open(tmp_path / "l.db", keys=keys, durable=False) as led:
        led.register_item("acme:S-1", "ACME")
        a = led.record_verify("acme:S-1", "pass", fap=1e-9, time=T0)  # no device, no scan: format 4
        b = led.append_event("verify", "acme:S-1", {"res": "pass", "dev": 7}, T0)  # a device id that is no text
        ca, cb = led.issue_certificate(a.index), led.issue_certificate(b.index)
    ia, ib = (verify_certificate(c, keys.issuer_public, keys.log_verifier()) for c in (ca, cb))
    assert (ia.format, ia.device, ia.scan, ib.format, ib.device) == (4, None, None, 3, 7)


def test_build_from_the_stored_event_equals_build_from_its_bytes(issued, keys):
    """issue_certificate hands build the event it holds (as stored: sealed values as their
    commitments), not its bytes to decode again: the same certificate, byte for byte, for format 4
    and for the format-3 fallback."""
    from glint.ledger import merkle
    from glint.ledger.log import _stored_event

    _, path, _, a = issued
    with Ledger.open(path, keys=keys, durable=False) as led:
        b = led.append_event("verify", ITEM, {"res": "pass", "dev": 7}, T0 + 4)  # format 3
        for index in (a.index, b.index):
            row = led.store.leaf(index)
            e = _stored_event(row)
            note = led._certificate_checkpoint(index + 1)
            proof = merkle.inclusion_proof(index, index + 1, led.store.get_nodes)
            assert certmod.build(keys, e, proof, note, T0 + 9) == certmod.build(keys, row.leaf, proof, note, T0 + 9)


def test_format_4_event_equals_the_strict_decode_of_its_leaf(issued, keys):
    """verify builds a format-4 certificate's event from its checked claims instead of decoding the
    leaf it has just encoded from them: the same Event as ev.decode_leaf (strict) of those bytes,
    data keys in the same order, for sealed values, a GS1 item, no device or scan, a via and a
    coating; and the leaf size limit still holds."""
    from glint.ledger import events as ev

    _, path, blob, _ = issued
    blobs = [blob]
    with Ledger.open(path, keys=keys, durable=False) as led:
        gs1 = "https://id.acme.example/01/09506000134352/21/SN-7"
        led.register_item(gs1, "ACME")
        for item, kw in ((gs1, {"device": "00ff00ff00ff00ff", "scan": b"s" * 40}), (ITEM, {}),
                         (ITEM, {"fap": 1, "coating": "c1", "via": {"scheme": "nfc", "value": "04:a2"}}),
                         (ITEM, {"operator": "ana", "location": "Rome", "fap": 0.5})):
            a = led.record_verify(item, "fail" if kw.get("fap") == 0.5 else "pass", **kw)
            blobs.append(led.issue_certificate(a.index))
    for b in blobs:
        claims = cbor.loads(cose.decode1(b).payload)
        e = certmod._event4(claims)[0]
        want = ev.decode_leaf(e.raw)
        assert e == want and list(e.data) == list(want.data)
        assert certmod.leaf_of4(claims)[0] == e.raw
    claims[8]["note"] = "x" * ev.MAX_LEAF_BYTES  # an event no ledger stores: refused as decode_leaf does
    with pytest.raises(VerificationError, match="too large"):
        certmod._event4(claims)


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
        proof = certmod.leaf_of4(cbor.loads(cose.decode1(blob).payload))[3]
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
                                                               keys.log_verifier()).as_dict()["format"] == 4
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


def _resign(keys, blob, mutate, cwt=False):
    """Re-sign a certificate after changing its claims: what a compromised issuer could do."""
    msg = cose.decode1(blob)
    claims = cbor.loads(msg.payload)
    mutate(claims)
    return cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=msg.protected.get(4),
                           protected_extra={3: certmod.CONTENT_FORMAT_CWT} if cwt else None)


def test_resigned_claims_fail_on_the_log_signature(issued, keys):
    """Even with the issuer key, changing the event, the proof or the size breaks the log's signature;
    every value has one spelling."""
    _, _, blob, _ = issued

    def fail_as_pass(c):
        c[5] = 1

    def other_proof(c):
        c[9] = c[9][:-32] + bytes(32)

    def other_index(c):
        c[1] += 1

    def other_head(c):
        c[9] = c[9][:64] + bytes(32) + c[9][96:]

    def other_scan(c):
        c[9] = c[9][:96] + bytes(32) + c[9][128:]

    def no_scan(c):  # the scan digest dropped: another leaf
        c[9] = c[9][:96] + c[9][128:]

    def short(c):  # half a hash short: the hashes do not add up for this index
        c[9] = c[9][:-16]

    def text_key(c):  # the coating's key spelled as text: one spelling only
        c[8]["coat"] = c[8].pop(5)

    def slotted_key(c):  # the result written in the data map too
        c[8][0] = "pass"

    def text_result(c):
        c[5] = "pass"

    def hex_device(c):  # the device id as its hex text, where format 4 carries its 8 bytes
        c[7] = c[7].hex()

    def extra_claim(c):
        c.append([])

    def gs1_as_text(c):  # the GS1 Digital Link id written out: one spelling only
        c[4] = ITEM

    def other_gtin(c):
        c[4] = [c[4][0], c[4][1] + 1, c[4][2]]

    def gs1_with_slash(c):  # a serial that would not parse back
        c[4] = [c[4][0], c[4][1], "ABC/123"]

    def later(c):  # a later issue time is the issuer's claim, signed by it: only the range is checked
        c[0] = -c[3] - 1

    for mutate, why in ((fail_as_pass, "checkpoint signature does not verify"),
                        (other_proof, "checkpoint signature does not verify"),
                        (other_index, "checkpoint signature does not verify|inclusion proof|proof hashes"),
                        (other_head, "checkpoint signature does not verify"),
                        (other_scan, "checkpoint signature does not verify"),
                        (no_scan, "checkpoint signature does not verify"),
                        (short, "proof hashes"),
                        (text_key, "spelled two ways"),
                        (slotted_key, "a key twice"),
                        (text_result, "not 0 \\(pass\\) or 1"),
                        (hex_device, "one spelling"),
                        (extra_claim, "payload is not"),
                        (gs1_as_text, "one spelling: \\[host, GTIN, serial\\]"),
                        (other_gtin, "checkpoint signature does not verify"),
                        (gs1_with_slash, "not \\[host, GTIN, serial\\] of a GS1"),
                        (later, "issue time is not a time")):
        forged = _resign(keys, blob, mutate)
        with pytest.raises(VerificationError, match=why):
            verify_certificate(forged, keys.issuer_public, keys.log_verifier())
    content_type = _resign(keys, blob, lambda c: None, cwt=True)
    with pytest.raises(VerificationError, match="protected header"):
        verify_certificate(content_type, keys.issuer_public, keys.log_verifier())


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
