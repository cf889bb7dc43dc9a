"""A compact certificate checked against its log over HTTP: `glint cert verify --remote` and `cert bundle --remote`
fetch the item's history from a real `glint serve` and check it against the certificate's chain head."""

from __future__ import annotations

import pytest
from pagestest import ITEM, OTHER, cid, make_home, serve

from glint import cli, publish
from glint.home import Home


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    w = make_home(root / "home")
    w["keys"].export(root / "pub")
    w["pub"] = root / "pub"
    yield from serve(w)


def test_verify_and_bundle_with_the_history_from_the_log(served, tmp_path, capsys):
    cert = tmp_path / "c.cose"
    cert.write_bytes(publish.published(Home(served["home"]), cid(served[ITEM])))
    keys = ["--issuer", str(served["pub"] / "issuer.pub"), "--log", str(served["pub"] / "log.vkey")]
    assert cli.main(["cert", "verify", str(cert), *keys]) == 0
    assert "history not checked" in capsys.readouterr().out
    assert cli.main(["cert", "verify", str(cert), *keys, "--remote", served["base"]]) == 0
    assert "history of 4 events checks against the chain head" in capsys.readouterr().out
    bundle = tmp_path / "c.glintb"
    assert cli.main(["cert", "bundle", str(cert), "-o", str(bundle), "--remote", served["base"], *keys]) == 0
    capsys.readouterr()
    assert cli.main(["cert", "verify", str(bundle), *keys]) == 0
    assert "history of 4 events" in capsys.readouterr().out
    # the log's copy of the item's history edited in storage: it no longer reaches the chain head
    import sqlite3

    alt = tmp_path / "o.cose"
    alt.write_bytes(publish.published(Home(served["home"]), cid(served[OTHER])))
    db = sqlite3.connect(served["home"] / "ledger.db")
    idx = served[OTHER].index - 4  # its register event
    (leaf,) = db.execute("SELECT leaf FROM leaves WHERE idx = ?", (idx,)).fetchone()
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = ?", (leaf.replace(b"ACME", b"ACMF"), idx))  # the brand: public, in the leaf
    db.commit()
    try:
        rc = cli.main(["cert", "verify", str(alt), *keys, "--remote", served["base"]])
        err = capsys.readouterr().err
        assert rc == 1 and "item history was altered: event 1" in err, err
    finally:
        db.execute("UPDATE leaves SET leaf = ? WHERE idx = ?", (leaf, idx))
        db.commit()
        db.close()
