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
