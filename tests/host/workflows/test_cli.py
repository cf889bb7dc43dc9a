"""glint device / scan / enroll --port as a user runs them, against the firmware App over a socket."""

import json

from peer import lens_image

from glint.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_device_and_scan_commands(peer, tmp_path, capsys):
    home = str(tmp_path / "home")
    rc, out, err = run(capsys, "device", "provision", "-p", peer.url, "--label", "bench-1", "--home", home, "--create")
    assert rc == 0 and "provisioned" in out and "new key generated on the device" in out
    rc, out, _ = run(capsys, "device", "list", "--json", "--home", home)
    devs = json.loads(out)["devices"]
    assert rc == 0 and devs[0]["label"] == "bench-1" and devs[0]["revoked_at"] is None

    peer.lens(lens_image(42, 10))
    rc, out, err = run(capsys, "enroll", "--port", peer.url, "--item", "acme:W-1", "--captures", "3", "--home", home)
    assert rc == 0 and out.startswith("enrolled acme:W-1") and "capture 3/3" in err

    peer.lens(lens_image(42, 20))
    rc, out, _ = run(capsys, "scan", "--port", peer.url, "--item", "acme:W-1", "--home", home)
    assert rc == 0 and out.startswith("PASS acme:W-1") and "certificate" in out
    peer.lens(lens_image(43, 20))
    rc, out, _ = run(capsys, "scan", "--port", peer.url, "--json", "--home", home)
    assert rc == 1 and json.loads(out)["result"] == "unknown"

    import numpy as np

    peer.lens(np.zeros((240, 320), np.uint8))  # nothing under the lens: guidance, retries, one line
    rc, out, err = run(capsys, "scan", "--port", peer.url, "--item", "acme:W-1", "--attempts", "2", "--home", home)
    assert rc == 2 and err.count("scanning again") == 2 and err.strip().splitlines()[-1].startswith("glint: no usable")

    rc, out, _ = run(capsys, "device", "revoke", "bench-1", "--home", home)
    assert rc == 0 and "revoked" in out
    peer.lens(lens_image(42, 21))
    rc, out, err = run(capsys, "scan", "--port", peer.url, "--item", "acme:W-1", "--home", home)
    assert rc == 2 and err.startswith("glint: scanner") and "revoked" in err and len(err.strip().splitlines()) == 1
    rc, out, err = run(capsys, "device", "revoke", "nope", "--home", home)
    assert rc == 2 and "no provisioned device" in err


def test_enroll_provenance_is_later_unless_the_brand_enrolls(peer, tmp_path, capsys, monkeypatch):
    """issue 16: glint enroll registered every item as factory; a factory claim is a brand's act now."""
    from glint.ledger import Ledger
    from glint.server.auth import KeyStore

    home = tmp_path / "home"
    assert run(capsys, "device", "provision", "-p", peer.url, "--label", "b", "--home", str(home), "--create")[0] == 0
    peer.lens(lens_image(42, 10))
    monkeypatch.delenv("GLINT_BRAND_KEY", raising=False)

    def enroll(item, *extra):
        return run(capsys, "enroll", "-p", peer.url, "--item", item, "--captures", "1", "--home", str(home), *extra)

    rc, out, _ = enroll("acme:R-1", "--reason", "vintage", "--by", "Authentica")
    assert rc == 0 and "enrolled later (vintage) by Authentica" in out, out
    rc, _, err = enroll("acme:R-2", "--provenance", "factory")
    assert rc == 2 and err.count("\n") == 1 and "brand credential" in err      # refused before any capture
    (home / "config.toml").write_text('[enroll]\nprovenance = "factory"\n')   # the brand's own home
    rc, _, err = enroll("acme:R-2")
    assert rc == 2 and "brand credential" in err
    ks = KeyStore(home / "glint.db")
    bench, brand = ks.create("bench", "bench")[1], ks.create("brand", "acme")
    ks.close()
    monkeypatch.setenv("GLINT_BRAND_KEY", bench)
    rc, _, err = enroll("acme:R-2")
    assert rc == 2 and "not brand" in err
    monkeypatch.setenv("GLINT_BRAND_KEY", brand[1])
    rc, out, _ = enroll("acme:R-2")
    assert rc == 0 and f"factory-enrolled by brand key {brand[0].key_id} (acme)" in out, out
    rc, out, _ = enroll("acme:R-3", "--provenance", "later", "--json")
    assert rc == 0 and json.loads(out)["provenance"]["class"] == "later"
    assert "@" in json.loads(out)["provenance"]["by"]                        # nobody named: the local user
    with Ledger.open(home / "ledger.db", readonly=True) as led:
        assert [led.item(i).provenance["class"] for i in ("acme:R-1", "acme:R-2", "acme:R-3")] == \
            ["later", "factory", "later"]
        assert not led.store.item_leaves("acme:R-9")
    rc, _, err = run(capsys, "enroll", "--db", str(tmp_path / "db"), "--item", "x", "--by", "a", "f.npy")
    assert rc == 2 and "--by is for enrollments from a scanner" in err
