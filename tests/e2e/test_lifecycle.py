"""The custody lifecycle end to end: intake, transfer, service (re-coat), rental, retire.

Two virtual scanners (the firmware on real MicroPython over socket://): an intake desk and a
service centre, provisioned into one home; every workflow runs as the user runs it (`glint
intake -p URL ...`), each refusal path included. Tests run in file order on one home.
"""

from __future__ import annotations

import json

import pytest
from e2e_support import PROFILE

from glint.cli import main

VINTAGE, NEWBAG, OTHER = "acme:VINTAGE-1", "acme:BAG-7", "acme:COPY-1"
SEEDS = {VINTAGE: 31, NEWBAG: 32, "recoat": 33}


@pytest.fixture(scope="module")
def life(vscanner, tmp_path_factory):
    """Home H with the module's scanner (the intake desk) and a second one (the service centre)."""
    from glint.mpy import available_runtimes
    from glint.vscanner import LensSpec, VirtualScanner

    second = VirtualScanner(tmp_path_factory.mktemp("service-device") / "flash",
                            lens=LensSpec("empty", profile=PROFILE), runtime=available_runtimes()[0])
    second.start()
    home = str(tmp_path_factory.mktemp("life-home"))
    w = {"home": home, "desk": vscanner, "centre": second}
    try:
        for vs, label in ((vscanner, "desk"), (second, "centre")):
            assert main(["device", "provision", "-p", vs.url, "--label", label, "--home", home, "--create"]) == 0
        yield w
    finally:
        second.close()


_capture = iter(range(100, 10_000))


def lens(vs, seed, kind="item"):
    """The coating of ``seed`` under the lens, a new (pinned) placement and noise each time."""
    from glint.vscanner import LensSpec

    vs.set_lens(LensSpec(kind, seed, next(_capture), PROFILE))


def glint(capsys, life, *argv, json_out=True):
    rc = main([*argv, "--home", life["home"], *(["--json"] if json_out else [])])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if json_out and out.out.strip() else out.out), out.err


def state(life, item):
    from glint.ledger import Ledger

    with Ledger.open(f"{life['home']}/ledger.db", readonly=True) as led:
        return led.item(item)


def test_intake_enrolls_later_never_factory(life, capsys):
    desk = life["desk"]
    from glint.link import open_scanner
    from glint.workflows import HostSession
    from glint.workflows import lifecycle as lw

    with HostSession(life["home"], operator="ana", location="Paris desk") as host, open_scanner(desk.url) as sc:
        lw.intake(host, sc, VINTAGE, reason="vintage", by="Authentica Ltd", between=lambda i: lens(desk, SEEDS[VINTAGE]))
    st = state(life, VINTAGE)
    assert st.provenance["class"] == "later" and st.provenance["by"] == "Authentica Ltd"
    assert st.provenance["reason"] == "vintage" and st.state == "enrolled"
    reg = st.events[0]
    assert (reg.data["op"], reg.data["loc"]) == ("ana", "Paris desk")
    # an enrolled item is identified (no --item) and verified, its history shown
    lens(desk, SEEDS[VINTAGE])
    rc, out, err = glint(capsys, life, "intake", "-p", desk.url, "--operator", "ana")
    assert rc == 0 and out["item"] == VINTAGE and out["note"] == "enrolled: identified"
    assert [e["kind"] for e in out["history"]][:2] == ["register", "enroll"] and out["certificate"]
    # the same coating presented as another item: identified first, refused
    lens(desk, SEEDS[VINTAGE])
    rc, out, err = glint(capsys, life, "intake", "-p", desk.url, "--item", OTHER, "--operator", "ana")
    assert rc == 2 and f"already enrolled as {VINTAGE}, not {OTHER}" in err and len(err.strip().splitlines()) == 1


def test_intake_as_the_brand_needs_a_brand_credential(life, capsys, tmp_path, monkeypatch):
    desk = life["desk"]
    monkeypatch.delenv("GLINT_BRAND_KEY", raising=False)
    rc, _, err = glint(capsys, life, "intake", "-p", desk.url, "--item", NEWBAG, "--brand")
    assert rc == 2 and "needs a brand credential" in err
    rc, made, _ = glint(capsys, life, "api-key", "create", "--role", "bench", "--label", "desk")
    (tmp_path / "bench.key").write_text(made["key"])
    rc, _, err = glint(capsys, life, "intake", "-p", desk.url, "--item", NEWBAG, "--brand",
                       "--brand-key-file", str(tmp_path / "bench.key"))
    assert rc == 2 and "has role bench, not brand" in err
    rc, made, _ = glint(capsys, life, "api-key", "create", "--role", "brand", "--label", "acme")
    from glint.link import open_scanner
    from glint.workflows import HostSession
    from glint.workflows import lifecycle as lw

    life["brand_key"] = made["key"]
    with HostSession(life["home"], operator="acme-qa") as host, open_scanner(desk.url) as sc:
        lw.intake(host, sc, NEWBAG, brand_key=made["key"], between=lambda i: lens(desk, SEEDS[NEWBAG]))
    st = state(life, NEWBAG)
    assert st.provenance == {"class": "factory", "by": f"brand key {made['id']} (acme)"}


def test_transfer_needs_a_passing_scan_and_gives_the_buyer_a_certificate(life, capsys):
    desk = life["desk"]
    lens(desk, SEEDS[VINTAGE])
    rc, out, err = glint(capsys, life, "transfer", VINTAGE, "--to", "bob", "-p", desk.url, "--seller", "alice",
                         "--channel", "resale platform", "--price", "1200", "--currency", "EUR",
                         "--operator", "ana", "--location", "Paris desk")
    assert rc == 0, err
    pub = f"{life['home']}/pub"
    assert glint(capsys, life, "cert", "keys", "--export", pub)[0] == 0
    # A compact certificate carries no history: the buyer gets it checked from a bundle (certificate + history).
    bundle = f"{life['home']}/buyer.glintb"
    # who, where and prices are sealed in the log: the buyer's bundle reveals the owner's fields
    assert glint(capsys, life, "cert", "bundle", out["certificate"], "-o", bundle, "--reveal", "owner")[0] == 0
    rc, info, err = glint(capsys, life, "cert", "verify", bundle, "--issuer", f"{pub}/issuer.pem",
                          "--log", f"{pub}/log.vkey")
    assert rc == 0, err
    t = [h for h in info["history"] if h["kind"] == "transfer"][-1]
    assert "owner=bob seller=alice channel=resale platform price=1200.0 currency=EUR; op ana; at Paris desk" \
        in t["summary"]
    rc, text, _ = glint(capsys, life, "cert", "verify", bundle, "--issuer", f"{pub}/issuer.pem",
                        "--log", f"{pub}/log.vkey", json_out=False)
    assert rc == 0 and text.startswith(f"ok: {VINTAGE} PASS")
    assert "transfer      owner=bob seller=alice" in text and "register      acme (later, vintage, by Authentica" \
        in text and "op ana; at Paris desk" in text
    # within the window, without a new scan: relies on that scan (named in the event)
    rc, out, err = glint(capsys, life, "transfer", VINTAGE, "--to", "carol", "--operator", "bob")
    assert rc == 0 and out["verified"] == state(life, VINTAGE).last_verify["index"]
    assert out["certificate"].endswith(f"-{out['verified']}.cose")  # the buyer's: that scan's certificate
    import time
    from pathlib import Path

    from glint.workflows import HostSession
    from glint.workflows import lifecycle as lw

    cfg = Path(life["home"]) / "config.toml"
    cfg.write_text("[lifecycle]\nscan_window_s = 0\n")  # the window comes from the home's config
    try:
        with HostSession(life["home"]) as host, pytest.raises(lw.ScanRequired, match="scan window of 0 s"):
            lw.passing_scan(host, VINTAGE, now=time.time() + 2)
    finally:
        cfg.unlink()
    # a failing scan refuses the transfer (and is recorded), and a later window transfer too
    lens(desk, SEEDS[VINTAGE], "counterfeit")
    rc, out, err = glint(capsys, life, "transfer", VINTAGE, "--to", "dave", "-p", desk.url)
    assert rc == 2 and "did not pass" in err and "transfer refused" in err
    rc, out, err = glint(capsys, life, "transfer", VINTAGE, "--to", "dave")
    assert rc == 2 and "did not pass" in err
    assert state(life, VINTAGE).owner == "carol"


def test_service_at_another_scanner_recoats(life, capsys, monkeypatch):
    centre = life["centre"]
    lens(centre, SEEDS[VINTAGE], "counterfeit")  # not the item: no work without a brand's override
    rc, _, err = glint(capsys, life, "service", VINTAGE, "-p", centre.url, "--action", "re-coat", "--recoat")
    assert rc == 2 and "service refused" in err
    assert state(life, VINTAGE).state == "enrolled"

    captures = iter(range(10))

    def centre_lens():  # the check-in scan shows the old coating, the captures after it the new one
        lens(centre, SEEDS[VINTAGE] if next(captures) == 0 else SEEDS["recoat"])

    from glint.link import open_scanner
    from glint.workflows import HostSession
    from glint.workflows import lifecycle as lw

    centre_lens()
    with HostSession(life["home"], operator="marc", location="Milan atelier") as host, \
            open_scanner(centre.url) as sc:
        out = lw.service(host, VINTAGE, "re-coat", sc, by="Milan atelier", recoat=True,
                         between=lambda i: centre_lens())
    st = state(life, VINTAGE)
    assert st.state == "enrolled" and out.verified is not None
    assert [(c.id, c.active, c.replaced_by) for c in st.coatings] == [("c1", False, "c2"), ("c2", True, None)]
    kinds = [e.kind + (":" + e.data["stage"] if "stage" in e.data else "") for e in st.events[-6:]]
    assert kinds[-4:] == ["verify", "service:in", "enroll", "service:out"]
    # the new coating verifies at the intake desk; the old one no longer
    lens(life["desk"], SEEDS["recoat"])
    rc, out, _ = glint(capsys, life, "scan", "-p", life["desk"].url, "--item", VINTAGE)
    assert rc == 0 and out["result"] == "pass"
    lens(life["desk"], SEEDS[VINTAGE])
    rc, out, _ = glint(capsys, life, "scan", "-p", life["desk"].url, "--item", VINTAGE)
    assert rc == 1 and out["result"] == "fail"
    # a brand may override the scan (with a reason): the override is recorded with its key
    rc, _, err = glint(capsys, life, "service", VINTAGE, "--action", "clean", "--override", "strap only")
    assert rc == 2 and "needs a brand credential" in err
    monkeypatch.setenv("GLINT_BRAND_KEY", life["brand_key"])
    rc, _, err = glint(capsys, life, "service", VINTAGE, "--action", "clean", "--override", "strap only, coating off")
    assert rc == 0, err
    ins = [e for e in state(life, VINTAGE).events if e.data.get("stage") == "in"][-1]
    assert ins.data["override"] == "strap only, coating off" and ins.data["by"].startswith("brand key ")


def test_rental_return_substitution_opens_a_case(life, capsys):
    desk = life["desk"]
    lens(desk, SEEDS["recoat"])
    rc, out, err = glint(capsys, life, "rental", "out", VINTAGE, "--to", "renter-1", "-p", desk.url,
                         "--operator", "ana")
    assert rc == 0 and out["state"] == "rented-out", err
    rc, out, err = glint(capsys, life, "transfer", VINTAGE, "--to", "eve")
    assert rc == 2 and f"item {VINTAGE} is rented out (since " in err and "to renter-1): a transfer event" in err
    rc, out, err = glint(capsys, life, "rental", "return", VINTAGE, "-p", desk.url, "--cond", "good")
    assert rc == 0 and out["state"] == "enrolled", err
    # out again; what comes back is not the item
    rc, out, err = glint(capsys, life, "rental", "out", VINTAGE, "--to", "renter-2")
    assert rc == 0, err
    lens(desk, SEEDS["recoat"], "counterfeit")
    rc, out, err = glint(capsys, life, "rental", "return", VINTAGE, "-p", desk.url)
    assert rc == 1 and out["state"] == "suspect" and out["case"] is not None
    rc, q, _ = glint(capsys, life, "bench", "--exceptions")
    case = [e for e in q if e["id"] == out["case"]][0]
    assert case["source"] == "rental" and case["subject"] == VINTAGE and case["detail"]["renter"] == "renter-2"
    rc, _, err = glint(capsys, life, "rental", "return", VINTAGE, "-p", desk.url)
    assert rc == 2 and f"item {VINTAGE} is suspect (since " in err


def test_retire_refuses_every_later_event(life, capsys):
    rc, out, err = glint(capsys, life, "retire", VINTAGE, "--reason", "lost by renter", "--operator", "ana")
    assert rc == 0 and out["state"] == "retired", err
    line = f"glint: item {VINTAGE} is retired (since "
    for argv in (("transfer", VINTAGE, "--to", "x"), ("rental", "out", VINTAGE, "--to", "x"),
                 ("service", VINTAGE), ("retire", VINTAGE, "--reason", "again"),
                 ("intake", "-p", life["desk"].url, "--item", VINTAGE)):
        rc, _, err = glint(capsys, life, *argv)
        assert rc == 2 and err.startswith(line) and "lost by renter): no lifecycle event is accepted" in err, argv
        assert len(err.strip().splitlines()) == 1
    # the history shows every lifecycle event with who, where and when
    rc, text, _ = glint(capsys, life, "ledger", "show", VINTAGE, json_out=False)
    assert rc == 0 and "state       retired (since" in text
    for bit in ("register", "transfer", "service", "rental-out", "rental-return", "suspect", "retire",
                "op ana", "at Paris desk", "at Milan atelier", "[in] re-coat by Milan atelier"):
        assert bit in text, bit
