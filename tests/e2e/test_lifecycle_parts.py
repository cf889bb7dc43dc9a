"""Issue 16 workflows on one virtual scanner (the firmware on real MicroPython), one shared home:
assemblies scanned part by part, the bench on a "real" port (prompt, feeder, certificates, report),
passports with audiences over the HTTP API, derived items and bound identifiers."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import E2E_TIMEOUTS, PROFILE

from glint.errors import UsageError
from glint.home import Home

pytestmark = pytest.mark.usefixtures("mpy_runtime")

SEEDS = {"acme:BAG-1": 31, "acme:BAG-2": 32, "acme:CLASP-1": 33, "acme:CLASP-2": 34, "acme:STRAP-1": 35,
         "acme:BILLET-7": 36}
BLADE_SEED = 37
FEEDER = f"{sys.executable} -S {Path(__file__).with_name('vscanner_feeder.py')}"  # -S: starts faster


def glint(home, *args, stdin=None):
    """``glint --home HOME ARGS`` in this process (the CLI's main, its exit code, stdout and stderr)."""
    import contextlib
    import io

    from glint.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["--home", str(home.root), *args])
            except SystemExit as e:  # argparse
                code = e.code
    finally:
        sys.stdin = saved
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def shop(vscanner, tmp_path_factory):
    """A home with SEEDS enrolled (host twin of the detector), the virtual scanner provisioned, two
    assemblies defined, and the scanner's control port for feeders."""
    from test_bench_fleet import enroll_sim_items

    from glint.link import open_scanner
    from glint.registry import Registry
    from glint.vscanner.control import serve_control
    from glint.workflows import HostSession, provision
    from glint.workflows.assembly import define_assembly

    home = Home(tmp_path_factory.mktemp("shop")).ensure()
    enroll_sim_items(home, SEEDS, PROFILE)
    with Registry.open(home) as reg, open_scanner(vscanner.url, E2E_TIMEOUTS) as sc:
        provision(reg, sc, label="shop-desk")
    with HostSession(home, durable=False) as host:
        define_assembly(host, "acme:BAG-1", {"clasp": "acme:CLASP-1", "strap": "acme:STRAP-1"}, operator="ana")
        define_assembly(host, "acme:BAG-2", {"clasp": "acme:CLASP-2"})
        host.ledger.register_item("acme:BILLET-7", "acme")
        host.ledger.add_coating("acme:BILLET-7", "c1", loc="the foundry")
    srv = serve_control(vscanner, "127.0.0.1:0")
    yield {"home": home, "vs": vscanner, "url": vscanner.url, "control": "%s:%d" % srv.server_address}
    srv.shutdown()
    srv.server_close()


def lens(vs, seed, capture, kind="item"):
    from glint.vscanner import LensSpec

    vs.set_lens(LensSpec(kind, seed, capture, PROFILE))


def parts_placer(vs, seeds):
    """Place by part name ("" = the assembly itself); a negative seed is a counterfeit."""
    def place(p):
        s = seeds[p.env["GLINT_PART"] or "body"]
        lens(vs, abs(s), 50 + abs(s), "counterfeit" if s < 0 else "item")
    return place


def test_assembly_scanned_part_by_part_names_the_part_that_is_not_its_own(shop):
    from glint.link import open_scanner
    from glint.workflows import HostSession
    from glint.workflows.assembly import NOT_ITS_OWN, define_assembly, scan_assembly

    vs = shop["vs"]
    good = {"body": 31, "clasp": 33, "strap": 35}
    with HostSession(shop["home"], durable=False, operator="ana") as host, open_scanner(shop["url"], E2E_TIMEOUTS) as sc:
        with pytest.raises(UsageError, match="already part 'strap' of acme:BAG-1"):
            define_assembly(host, "acme:BAG-2", {"strap": "acme:STRAP-1"})
        with pytest.raises(UsageError, match="unknown item acme:NOPE"):
            define_assembly(host, "acme:BAG-2", {"lid": "acme:NOPE"})

        ok = scan_assembly(host, sc, "acme:BAG-1", place=parts_placer(vs, good))
        assert ok.passed and ok.body == "pass" and ok.cert_path.is_file(), ok.lines()
        assert ok.lines() == ["PASS acme:BAG-1: all 2 parts are its own"]

        swapped = scan_assembly(host, sc, "acme:BAG-1", place=parts_placer(vs, dict(good, clasp=34)))
        assert not swapped.passed and swapped.cert_path is None
        lines = swapped.lines()
        assert lines[0] == f"FAIL acme:BAG-1: {NOT_ITS_OWN}"
        assert lines[1:] == ["  part 'clasp' is genuine but is acme:CLASP-2 (part of acme:BAG-2), not acme:CLASP-1"]

        fake = scan_assembly(host, sc, "acme:BAG-1", place=parts_placer(vs, dict(good, strap=-35)))
        assert not fake.passed and fake.lines()[1:] == ["  part 'strap' did not verify"]

        st = host.ledger.item("acme:BAG-1")
        verdicts = [e.data for e in st.events if e.kind == "verify" and "parts" in e.data]
        assert [v["res"] for v in verdicts] == ["pass", "fail", "fail"]
        swapped_scan = host.ledger.item("acme:CLASP-2").last_verify
        assert verdicts[1]["parts"]["clasp"] == {"res": "fail", "item": "acme:CLASP-2", "scan": swapped_scan["scan"]}
        assert verdicts[1]["note"] == NOT_ITS_OWN and verdicts[0]["op"] == "ana"
        # the swapped clasp's own scan is in its own twin, named by the verdict (a server checks it by that)
        assert swapped_scan["note"] == "scanned as part 'clasp' of acme:BAG-1"


def test_scan_parts_command_with_a_feeder_and_its_refusals(shop):
    home = shop["home"]
    feeder = f"{FEEDER} {shop['control']}"
    seeds = {"body": 31, "clasp": 33, "strap": 35}
    p = glint(home, "scan", "-p", shop["url"], "--item", "acme:BAG-1", "--parts", "--feeder",
              f"{feeder} '{json.dumps(seeds)}'")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("PASS acme:BAG-1: all 2 parts are its own") and "certificate " in p.stdout
    p = glint(home, "scan", "-p", shop["url"], "--item", "acme:BAG-1", "--parts", "--json", "--feeder",
              f"{feeder} '{json.dumps(dict(seeds, clasp=34))}'")
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert out["result"] == "fail" and "assembly contains a part that is not its own" in out["message"]
    assert [v["part"] for v in out["verdicts"] if not v["belongs"]] == ["clasp"]
    # the prompt path: 'q' at the first part stops with one line, nothing judged
    p = glint(home, "scan", "-p", shop["url"], "--item", "acme:BAG-2", "--parts", stdin="q\n")
    assert p.returncode == 2 and p.stderr.count("place ") == 1
    assert p.stderr.strip().splitlines()[-1].endswith("glint: stopped by the operator")
    for args, msg in [(["assembly", "define", "acme:BAG-2", "--part", "strap=acme:STRAP-1"],
                       "glint: item acme:STRAP-1 is already part 'strap' of acme:BAG-1"),
                      (["assembly", "define", "acme:BAG-2", "--part", "clasp"], "is not NAME=ITEM"),
                      (["scan", "-p", shop["url"], "--parts"], "--parts needs --item ASSEMBLY")]:
        p = glint(home, *args)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and msg in p.stderr, (args, p.stderr)


def test_bench_on_a_real_port_places_each_row_and_certifies_the_passes(shop, tmp_path):
    from glint.ledger import Keys, verify_certificate

    home = shop["home"]
    m = tmp_path / "batch.csv"
    m.write_text("item,mode,expect,lens,seed,capture,note\n"
                 "acme:BAG-1,verify,pass,item,31,11,genuine\n"
                 "acme:BAG-2,verify,fail,counterfeit,32,12,a copy\n"
                 ",identify,pass,item,33,13,which one?\n")
    out = tmp_path / "fed"
    # the bug of issue 16: with nothing placing the rows, the genuine item stayed under the lens and
    # the counterfeit row came back PASS. A feeder places each row; the counterfeit fails.
    p = glint(home, "bench", str(m), "-p", shop["url"], "--feeder", f"{FEEDER} {shop['control']}",
              "--operator", "ana", "--out", str(out), "--quiet", "--json")
    assert p.returncode == 0, p.stderr
    assert "glint: note: the manifest's lens column applies only to virtual scanners" in p.stderr
    s = json.loads(p.stdout)
    assert s["ok"] == 3 and s["outcomes"] == {"pass": 2, "fail": 1, "error": 0} and s["certificates"] == 2
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [r["outcome"] for r in rows] == ["pass", "fail", "pass"] and rows[2]["matched"] == "acme:CLASP-1"
    assert all(r["time"].endswith("Z") and r["operator"] == "ana" for r in rows)
    assert rows[1]["certificate"] == "" and rows[0]["certificate"].startswith("certs/")
    keys = Keys.load(home.ledger_dir)
    for r in (rows[0], rows[2]):
        info = verify_certificate((out / r["certificate"]).read_bytes(), keys.issuer_public, keys.log_verifier())
        # the operator is sealed in the certified leaf (glint.ledger.sealed): the report names it, the certificate not
        assert info.result == "pass" and info.index == int(r["ledger_index"]) and info.operator == "[sealed]"
    html = (out / "report.html").read_text()
    assert "<h2>Items (3)</h2>" in html and f'href="{rows[0]["certificate"]}"' in html
    assert "<svg" in html and "log10 FAR of the scans" in html

    # the operator's prompt: Enter scans row 1, 's' skips row 2, then stdin closes: the run stops
    lens(shop["vs"], 31, 21)
    p = glint(home, "bench", str(m), "-p", shop["url"], "--out", str(tmp_path / "asked"), "--quiet", stdin="\ns\n")
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("place ") == 3 and "place acme:BAG-2 (row 2, lens counterfeit: a copy)" in p.stderr
    assert "glint: no answer: stdin is closed: 2 of 3 rows scanned" in p.stderr
    rows = list(csv.DictReader((tmp_path / "asked" / "report.csv").open()))
    assert [(r["outcome"], r["error"]) for r in rows] == [("pass", ""), ("error", "skipped by the operator (row 2, "
                                                                          "lens counterfeit: a copy)")]


def test_passports_with_audiences_cli_and_http_api(shop):
    from softdevice import Api

    from glint.ledger import Keys, Ledger
    from glint.ledger.passport import set_fields

    home = shop["home"]
    p = glint(home, "passport", "set", "acme:BAG-2", "materials=calf 92%, brass 8%", "market=EU",
              "--audience", "public", "--operator", "ana")
    assert p.returncode == 0 and "for public" in p.stdout, p.stderr
    with Ledger.open(home.ledger_path, keys=Keys.load(home.ledger_dir)) as led:
        set_fields(led, "acme:BAG-2", {"purchase_price": "2400 EUR"}, "owner")
        set_fields(led, "acme:BAG-2", {"disassembly": "unscrew the clasp"}, "recycler")
        set_fields(led, "acme:BAG-2", {"supplier": "tannery 7"}, "regulator")
        set_fields(led, "acme:BAG-2", {"cost": "310 EUR"}, "brand")
    p = glint(home, "passport", "set", "acme:BAG-2", "x=1", "--audience", "everyone")
    assert p.returncode == 2 and "invalid choice" in p.stderr
    shown = json.loads(glint(home, "passport", "show", "acme:BAG-2", "--json").stdout)["fields"]
    assert len(shown) == 6 and shown["cost"] == {"value": "310 EUR", "audience": "brand"}   # the CLI shows all
    as_rec = json.loads(glint(home, "passport", "show", "acme:BAG-2", "--as", "recycler", "--json").stdout)
    assert set(as_rec["fields"]) == {"materials", "market", "disassembly"}

    api = Api(home.root)
    try:
        public = {"materials", "market"}
        for role, fields in [(None, public), ("bench", public), ("brand", public | {"purchase_price", "disassembly",
                             "supplier", "cost"}), ("auditor", public | {"purchase_price", "disassembly", "supplier",
                                                                          "cost"})]:
            r = api.get("/v1/passports/acme:BAG-2", role=role)
            assert r.status_code == 200 and set(r.json["fields"]) == fields, (role, r.json)
        item = api.get("/v1/items/acme:BAG-2").json
        assert set(item["passport"]) == public
        hidden = [e["data"] for e in item["events"] if e["kind"] == "passport" and e["data"].get("hidden")]
        assert len(hidden) == 4 and all(d["set"] == {} for d in hidden)
        assert "310 EUR" not in json.dumps(item) and "2400 EUR" not in json.dumps(item)
        # assemblies over HTTP: read (public), define (brand key; the same definition again is no new event)
        r = api.get("/v1/assemblies/acme:BAG-1")
        assert r.json["parts"] == {"clasp": "acme:CLASP-1", "strap": "acme:STRAP-1"}
        body = {"item": "acme:BAG-2", "parts": {"clasp": "acme:CLASP-2"}}
        r = api.client.post("/v1/assemblies", json=body, headers={"Authorization": f"Bearer {api.keys['brand']}"})
        assert r.status_code == 200 and r.json["duplicate"] is True
        r = api.client.post("/v1/assemblies", json=body, headers={"Authorization": f"Bearer {api.keys['bench']}"})
        assert r.status_code == 403
        r = api.client.post("/v1/assemblies", json={"item": "acme:BAG-2", "parts": {"strap": "acme:STRAP-1"}},
                            headers={"Authorization": f"Bearer {api.keys['brand']}"})
        assert r.status_code == 422 and "already part 'strap' of acme:BAG-1" in r.json["error"]
    finally:
        api.close()


def test_derived_items_and_bound_identifiers(shop):
    from glint.ledger import Keys, verify_certificate
    from glint.link import open_scanner
    from glint.workflows import HostSession, enroll_from_scanner
    from glint.workflows.lineage import bind, derive, find_by_identifier

    home, vs = shop["home"], shop["vs"]
    qr = "https://acme.example/q/B2"
    with HostSession(home, durable=False, location="the machine shop") as host, \
            open_scanner(shop["url"], E2E_TIMEOUTS) as sc:
        derive(host, "acme:BILLET-7", ["acme:BLADE-2", "acme:BLADE-3"], "machined", operator="ana")
        with pytest.raises(UsageError, match="item acme:BLADE-2 already exists"):
            derive(host, "acme:BILLET-7", ["acme:BLADE-2"], "cut")
        enroll_from_scanner(host, sc, "acme:BLADE-2", captures=3,
                            between=lambda i: lens(vs, BLADE_SEED, 30 + i))
        bind(host, "acme:BLADE-2", "qr", qr)
        with pytest.raises(UsageError, match=f"qr {qr} is already bound to acme:BLADE-2"):
            bind(host, "acme:BLADE-3", "qr", qr)
        assert find_by_identifier(host, "qr", qr) == "acme:BLADE-2"
        assert find_by_identifier(host, "nfc", qr) is None
        parent = host.ledger.item("acme:BILLET-7")
        assert parent.derivations[0]["children"] == ["acme:BLADE-2", "acme:BLADE-3"]
        assert host.ledger.item("acme:BLADE-3").lineage == {"item": "acme:BILLET-7", "how": "machined",
                                                            "origin": "enrolled at the foundry"}
    lens(vs, BLADE_SEED, 40)
    p = glint(home, "scan", "-p", shop["url"], "--qr", qr)
    assert p.returncode == 0 and p.stdout.startswith("PASS acme:BLADE-2"), p.stderr
    assert "found by qr https://acme.example/q/B2; authenticated by its coating, not the label" in p.stdout
    cert = Path(p.stdout.split("certificate ")[1].split()[0])
    keys = Keys.load(home.ledger_dir)
    # the compact certificate itself says what was checked (its verify event); the lineage is in
    # the item's history, checked with a bundle (or --remote)
    info = verify_certificate(cert.read_bytes(), keys.issuer_public, keys.log_verifier())
    assert info.as_dict()["checked"].startswith("coating c1 (the item was looked up by qr")
    assert info.event.data["via"] == {"scheme": "qr", "value": qr}
    keys.export(home.root / "pub")
    pub = ["--issuer", str(home.root / "pub" / "issuer.pub"), "--log", str(home.root / "pub" / "log.vkey")]
    assert glint(home, "cert", "bundle", str(cert), "-o", str(home.root / "b2.bundle")).returncode == 0
    page = home.root / "b2.html"
    v = glint(home, "cert", "verify", str(home.root / "b2.bundle"), *pub, "--html", str(page))
    assert v.returncode == 0 and "machined from acme:BILLET-7 (enrolled at the foundry)" in v.stdout, v.stderr
    html = page.read_text()
    assert "<th>Made from</th><td>machined from acme:BILLET-7 (enrolled at the foundry)</td>" in html
    assert "<th>Authenticated by</th><td>coating c1 (the item was looked up by qr" in html
    assert "checked coating c1 (the item was looked up by qr" in v.stdout
    show = glint(home, "ledger", "show", "acme:BLADE-2").stdout
    assert "lineage     machined from acme:BILLET-7 (enrolled at the foundry)" in show
    assert f"identifier  qr {qr}" in show
    assert "derived     machined into acme:BLADE-2, acme:BLADE-3" in glint(home, "ledger", "show", "acme:BILLET-7").stdout
    lk = glint(home, "lookup", "--qr", qr)
    assert lk.returncode == 0 and lk.stdout.startswith("acme:BLADE-2 (acme, factory-enrolled)")
    # only the coating authenticates: a label on the wrong object fails
    lens(vs, 35, 41)
    p = glint(home, "scan", "-p", shop["url"], "--qr", qr)
    assert p.returncode == 1 and p.stdout.startswith("FAIL acme:BLADE-2")
    p = glint(home, "scan", "-p", shop["url"], "--nfc", "no-such-chip")
    assert p.returncode == 2 and "glint: no item has nfc no-such-chip" in p.stderr
