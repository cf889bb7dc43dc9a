"""The certificate page in a real browser: Debian's chromium driven by Playwright against a real `glint serve`.

One browser and one server for the module. The page verifies in the browser (WebCrypto ES256 and
Ed25519, the inclusion proof, the checkpoint, the history) and marks <html data-verdict>; these tests
read that mark, the failed check's name and the reason it shows. GLINT_SCREENSHOTS=DIR writes the
screenshots of docs/verify.md.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from glinttest import CHROMIUM_ARGS, require_browser
from pagestest import GTIN, ITEM, OTHER, PLAIN, cid, make_home, serve

from glint import publish
from glint.home import Home
from glintcore import cbor, cose

DONE = "html[data-verdict=verified], html[data-verdict=failed]"
SHOTS = os.environ.get("GLINT_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    w = make_home(tmp_path_factory.mktemp("browser") / "home")
    yield from serve(w)


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def _verdict(pg) -> tuple[str, str | None, str]:
    pg.wait_for_selector(DONE, state="attached", timeout=15000)
    return (pg.get_attribute("html", "data-verdict"), pg.get_attribute("html", "data-failed-check"),
            pg.inner_text("#why"))


def _shot(pg, name: str) -> None:
    if SHOTS:
        pg.screenshot(path=str(Path(SHOTS) / name))  # the first screen of a phone


def test_genuine_certificate_from_the_qr_code_url_shows_verified(site, page):
    url = publish.certificate_url("x", ITEM, cid(site[ITEM])).replace("https://x", site["base"])
    page.goto(url)  # /01/GTIN/21/SERIAL?c=ID: the resolver redirects to the certificate check
    verdict, failed, why = _verdict(page)
    assert (verdict, failed) == ("verified", None), why
    assert page.url.endswith("/c/" + cid(site[ITEM]))
    checks = page.eval_on_selector_all("#checks li", "els => els.map(e => [e.dataset.check, e.dataset.ok])")
    assert [c for c, _ in checks] == ["certificate format", "issuer key", "issuer signature", "claims", "certificate id",
                                      "inclusion proof", "log signature", "result", "history"]
    assert all(ok == "true" for _, ok in checks)
    assert "4 earlier events" in page.inner_text("#checks") and "PASS" in page.inner_text("#facts")
    _shot(page, "verify-verified.png")
    page.goto(f"{site['base']}/01/{GTIN}/21/ABC123?linkType=gs1:pip")
    assert "Latest verification" in page.inner_text("main")
    _shot(page, "verify-item.png")


def _resign(keys, blob: bytes, mutate) -> bytes:
    msg = cose.decode1(blob)
    claims = cbor.loads(msg.payload)
    mutate(claims)
    return cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=msg.kid)  # format 4: {alg, kid} alone


def test_tampered_certificates_name_the_failure(site, page):
    home = Home(site["home"])
    c = cid(site[PLAIN])
    good = publish.published(home, c)
    flipped = bytearray(good)
    flipped[-5] ^= 0x01

    def forged_proof(claims):  # a compromised issuer key signs a certificate of an event not in the log
        claims[9] = claims[9][:-32] + bytes(32)  # (the last proof hash; format 4's hashes end with the proof)

    def forged_verdict(claims):  # ... or turns the event's fail into a pass (res: 0 pass, 1 fail)
        claims[5] = 1

    try:
        for blob, check, reason in ((bytes(flipped), "issuer signature", "does not verify with the issuer key"),
                                    (_resign(site["keys"], good, forged_proof), "log signature",
                                     "the event, the proof or the checkpoint was altered"),
                                    (_resign(site["keys"], good, forged_verdict), "certificate id",
                                     "but the certificate's event has id")):
            publish.publish(home, blob, c)
            page.goto(f"{site['base']}/c/{c}")
            verdict, failed, why = _verdict(page)
            assert (verdict, failed) == ("failed", check) and reason in why, why
            assert page.inner_text("#verdict") == "Certificate NOT verified"
            _shot(page, "verify-tampered.png")
    finally:
        publish.publish(home, good, c)


def test_format_2_and_3_certificates_still_verify(site, page):
    """Certificates issued before format 4: format 3 (a CWT of the event, a proof to the tree right after
    it) and format 2 (the leaf whole, a proof to a later checkpoint)."""
    from glint.ledger import Ledger
    from glint.ledger import cert as certmod

    home = Home(site["home"])
    c = cid(site[PLAIN])
    good = publish.published(home, c)
    keys = site["keys"]
    with Ledger.open(site["home"] / "ledger.db", readonly=True) as led:
        row = led.store.latest_checkpoint()
        size = row.size
        leaf = led.event(site[PLAIN].index).raw
        proof = led.prove(site[PLAIN].index, size).hashes
    claims = {"glint": 2, 6: 1_760_000_100, -1: leaf, -2: b"".join(proof),
              -3: [size, certmod._note_signature(row.note, keys.log_verifier())]}
    old = cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=certmod.issuer_kid(keys.issuer_public),
                          protected_extra={3: 61})
    # format 3, spelled by hand from the format-4 certificate's event, proof and log signature
    raw, iat, logsig, proof4 = certmod.leaf_of4(cbor.loads(cose.decode1(good).payload))
    v3 = cose.sign1_with(cbor.dumps({6: iat, -4: certmod.compact_event(raw), -5: proof4, -6: logsig}), keys.sign_digest,
                         kid=certmod.issuer_kid(keys.issuer_public), protected_extra={3: 61})
    try:
        for blob, fmt in ((old, 2), (v3, 3)):
            publish.publish(home, blob, c)
            page.goto(f"{site['base']}/c/{c}")
            verdict, failed, why = _verdict(page)
            assert (verdict, failed) == ("verified", None), why
            assert f"format {fmt}:" in page.inner_text("#checks")
    finally:
        publish.publish(home, good, c)


def test_history_altered_in_storage_fails_against_the_chain_head(site, page):
    db = sqlite3.connect(site["home"] / "ledger.db")
    idx = site[OTHER].index - 4  # the item's register event
    (leaf,) = db.execute("SELECT leaf FROM leaves WHERE idx = ?", (idx,)).fetchone()
    try:
        db.execute("UPDATE leaves SET leaf = ? WHERE idx = ?", (leaf.replace(b"ACME", b"ACMF"), idx))  # the brand: public, in the leaf
        db.commit()
        page.goto(f"{site['base']}/c/{cid(site[OTHER])}")
        verdict, failed, why = _verdict(page)
        assert (verdict, failed) == ("failed", "history") and "history was altered: event 1" in why, why
    finally:
        db.execute("UPDATE leaves SET leaf = ? WHERE idx = ?", (leaf, idx))
        db.commit()
        db.close()


def test_a_revoked_issuer_key_fails(site, page):
    cfg = Home(site["home"]).config_path
    kid = site["keys"].issuer_public
    from glint.ledger.cert import issuer_kid

    cfg.write_text(f'[issuers]\nrevoked = ["{issuer_kid(kid).hex()}"]\n')
    try:
        page.goto(f"{site['base']}/c/{cid(site[ITEM])}")
        verdict, failed, why = _verdict(page)
        assert (verdict, failed) == ("failed", "issuer key") and "was revoked" in why, why
        _shot(page, "verify-revoked.png")
    finally:
        cfg.unlink()


def test_saved_page_and_saved_files_verify_offline(site, browser, tmp_path):
    c = cid(site[ITEM])
    with urllib.request.urlopen(f"{site['base']}/c/{c}", timeout=10) as r:
        (tmp_path / "cert.html").write_bytes(r.read())  # "Save page as": the page as served
    with urllib.request.urlopen(f"{site['base']}/verify", timeout=10) as r:
        (tmp_path / "verify.html").write_bytes(r.read())
    for suffix in ("bundle", "cose"):
        with urllib.request.urlopen(f"{site['base']}/c/{c}/{suffix}", timeout=10) as r:
            (tmp_path / f"c.{suffix}").write_bytes(r.read())
    ctx = browser.new_context(offline=True)
    try:
        pg = ctx.new_page()
        requests: list[str] = []
        pg.on("request", lambda q: requests.append(q.url))
        pg.goto((tmp_path / "cert.html").as_uri())
        verdict, failed, why = _verdict(pg)
        assert (verdict, failed) == ("verified", None) and "offline" in why, why
        pg.goto((tmp_path / "verify.html").as_uri())
        assert pg.get_attribute("html", "data-verdict") == "none"
        pg.set_input_files("#file", str(tmp_path / "c.bundle"))
        verdict, failed, why = _verdict(pg)
        assert (verdict, failed) == ("verified", None) and "c.bundle" in why, why
        assert pg.eval_on_selector("li[data-check=history]", "e => e.dataset.ok") == "true"
        pg.goto((tmp_path / "verify.html").as_uri())
        pg.set_input_files("#file", str(tmp_path / "c.cose"))  # a bare certificate: history not checked
        verdict, failed, why = _verdict(pg)
        assert verdict == "verified" and pg.eval_on_selector("li[data-check=history]", "e => e.dataset.ok") == "null"
        assert all(u.startswith(("file:", "data:")) for u in requests), requests  # no network at all
    finally:
        ctx.close()


def test_a_buyers_bundle_reveals_who_and_where_checked_against_the_commitments(site, page, tmp_path):
    """The owner's bundle (format 2) carries reveals of the sealed who/where values: the page checks each
    against its leaf's commitment (WebCrypto SHA-256) and shows them; a forged reveal fails "reveals"."""
    from glint.ledger import Ledger

    c = cid(site[PLAIN])
    with urllib.request.urlopen(f"{site['base']}/c/{c}/cose", timeout=10) as r:
        blob = r.read()
    with Ledger.open(site["home"] / "ledger.db", keys=site["keys"], readonly=True) as led:
        bundle = led.bundle(blob, "owner")
    (tmp_path / "owner.bundle").write_bytes(bundle)
    b = cbor.loads(bundle)
    assert b["glint-bundle"] == 2 and b"Paris" not in b["cert"]
    idx = site[PLAIN].index
    b["rev"][idx]["loc"][1] = "Lyon"  # a forged reveal: the value changed, the salt kept
    (tmp_path / "forged.bundle").write_bytes(cbor.dumps(b))
    page.goto(f"{site['base']}/verify")
    page.set_input_files("#file", str(tmp_path / "owner.bundle"))
    verdict, failed, why = _verdict(page)
    assert (verdict, failed) == ("verified", None), why
    assert page.eval_on_selector("li[data-check=reveals]", "e => e.dataset.ok") == "true"
    facts, hist = page.inner_text("#facts"), page.inner_text("#history")
    assert "ana" in facts and "Paris" in facts and "bob <script>alert(1)</script>" in hist  # as text, never HTML
    page.goto(f"{site['base']}/verify")
    page.set_input_files("#file", str(tmp_path / "forged.bundle"))
    verdict, failed, why = _verdict(page)
    assert (verdict, failed) == ("failed", "reveals") and f"event {idx}: the revealed 'loc' does not match" in why, why
