"""Public certificate URLs (glint.publish) and `glint cert issue` printing them."""

from __future__ import annotations

import json

import pytest

from glint import cli, publish
from glint.errors import UsageError
from glint.home import Home
from glint.ledger import Keys, Ledger

GS1 = "https://brand.example/01/9506000134352/21/ABC%2F1"
CID = "0123456789abcdef0123456789abcdef"


def test_urls():
    assert publish.certificate_url("id.example.com", "https://x.example/01/09506000134352/21/ABC123", CID) == \
        f"https://id.example.com/01/09506000134352/21/ABC123?c={CID}"
    # GTIN-13 written as GTIN-14 (the resolver's canonical form); other ids get /c/ID
    assert publish.gs1_key("https://x.example/01/9506000134352/21/S-1") == ("09506000134352", "S-1")
    assert publish.certificate_url("id.example.com:8443", "acme:BAG-1", CID) == f"https://id.example.com:8443/c/{CID}"
    for bad in ("https://id.example.com", "id.example.com/path", "", "a b", 7):
        with pytest.raises(UsageError):
            publish.check_host(bad)


def _home(tmp_path, host=None):
    root = tmp_path / "home"
    Home(root).ensure()
    if host:
        (root / "config.toml").write_text(f'[public]\nhost = "{host}"\n')
    keys = Keys.load(root, create=True)
    with Ledger.open(root / "ledger.db", keys=keys, durable=False) as led:
        item = "https://brand.example/01/09506000134352/21/ABC123"
        led.register_item(item, "ACME")
        a = led.record_verify(item, "pass", fap=1e-9)
    return root, a


def test_issue_prints_the_url_and_publishes(tmp_path, capsys):
    root, a = _home(tmp_path, "id.example.com")
    out = tmp_path / "c.cose"
    rc = cli.main(["--home", str(root), "cert", "issue", str(a.index), "-o", str(out), "--png", str(tmp_path / "q.png"),
                   "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    cid = a.leaf_hash[:16].hex()
    assert res["id"] == cid and res["url"] == f"https://id.example.com/01/09506000134352/21/ABC123?c={cid}"
    assert res["bytes"] == len(out.read_bytes()) < 600
    assert publish.published(Home(root), cid) == out.read_bytes()
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


def test_no_resolver_host_refuses_the_qr_code_but_issues_without_it(tmp_path, capsys):
    root, a = _home(tmp_path)
    rc = cli.main(["--home", str(root), "cert", "issue", str(a.index), "-o", str(tmp_path / "c.cose"),
                   "--png", str(tmp_path / "q.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "no public resolver host" in err and "[public] host" in err and err.count("\n") == 1
    assert not (tmp_path / "c.cose").exists()
    rc = cli.main(["--home", str(root), "cert", "issue", str(a.index), "-o", str(tmp_path / "c.cose"), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["url"] is None


def test_publish_links_the_file_just_written_and_replaces_never_edits(tmp_path):
    home = Home(tmp_path / "home")
    home.ensure()
    home.certs_dir.mkdir(parents=True, exist_ok=True)
    first = home.certs_dir / "acme_BAG-1-7.cose"
    first.write_bytes(b"\xd2certificate")
    path = publish.publish(home, b"\xd2certificate", CID, same_as=first)
    assert path.read_bytes() == b"\xd2certificate" and path.stat().st_ino == first.stat().st_ino  # one file
    publish.publish(home, b"\xd2another", CID)  # published again: a new file under that name only
    assert path.read_bytes() == b"\xd2another" and first.read_bytes() == b"\xd2certificate"
    gone = home.certs_dir / "missing.cose"  # nothing to link to: a copy
    assert publish.publish(home, b"\xd2third", CID, same_as=gone).read_bytes() == b"\xd2third"
    assert not any(p.name.endswith(".tmp") for p in publish.published_dir(home).iterdir())


def test_publish_makes_its_folder_again_when_it_went_away(tmp_path):
    """The published folder is made once per process, not per certificate; removed meanwhile, the
    next publish makes it again (linked or copied)."""
    import shutil

    home = Home(tmp_path / "home")
    home.ensure()
    home.certs_dir.mkdir(parents=True, exist_ok=True)
    first = home.certs_dir / "acme_BAG-1-7.cose"
    first.write_bytes(b"\xd2certificate")
    assert publish.publish(home, b"\xd2certificate", CID, same_as=first).read_bytes() == b"\xd2certificate"
    for same_as in (first, None):
        shutil.rmtree(publish.published_dir(home))
        path = publish.publish(home, b"\xd2certificate", CID, same_as=same_as)
        assert path.read_bytes() == b"\xd2certificate"
