"""The enroll/verify/identify commands as a user runs them (glint's main, glinttest.glint_cli), on simulator
images and a signed scan."""

from __future__ import annotations

import json

import numpy as np
import pytest
from glinttest import glint_cli


def glint(*args):
    return glint_cli(*args)


@pytest.fixture(scope="module")
def files(tmp_path_factory, sim_item):
    from glint.sim.frames import write_pgm

    d = tmp_path_factory.mktemp("cli")
    paths = {}
    for k, img in enumerate(sim_item["enroll"]):
        paths[f"e{k}"] = write_pgm(d / f"e{k}.pgm", img)
    for name in ("probe", "other", "clone"):
        paths[name] = write_pgm(d / f"{name}.pgm", sim_item[name])
    (d / "bad.pgm").write_bytes(b"P5\n3 3\n255\nxx")
    paths["bad"] = d / "bad.pgm"
    paths["db"] = d / "db"
    return paths


def test_enroll_verify_identify(files):
    db = files["db"]
    r = glint("enroll", "--db", db, "--item", "coat-7", files["e0"], files["e1"], files["e2"])
    assert r.returncode == 0, r.stderr
    r = glint("verify", "--db", db, "--item", "coat-7", files["probe"], "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 0 and v["match"] is True and v["log10_far"] < -9 and v["matched"] >= 20
    # the clone gate's figures beside log10_far: expected noise (from the captures), observed residual, p-value
    assert 0 < v["expected_noise"] < 0.5 and 0 < v["residual"] < 0.5 and v["residual_p_value"] >= 1e-3
    assert 0.3 < v["residual_ratio"] < 2.0
    r = glint("verify", "--db", db, "--item", "coat-7", files["other"], "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 1 and v["match"] is False
    r = glint("verify", "--db", db, "--item", "coat-7", files["clone"], "--json")
    v = json.loads(r.stdout)
    assert v["match"] is False and v["residual_p_value"] < 1e-3 and v["residual"] > v["expected_noise"]
    r = glint("identify", "--db", db, files["probe"], "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 0 and v["item"] == "coat-7" and isinstance(v["candidates"], list)
    r = glint("identify", "--db", db, files["other"], "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["item"] is None


def test_jpeg_photographs_are_images(sim_item, tmp_path):
    """A camera's JPEG (colour-encoded, as photographs usually are) is read as a grayscale image,
    not taken for a signed scan: enrolled and verified from the CLI like PNG/PGM."""
    import cv2

    paths = []
    for k, img in enumerate([*sim_item["enroll"], sim_item["probe"], sim_item["other"]]):
        p = tmp_path / f"c{k}.jpg"
        assert cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(p)
    *enrolls, probe, other = paths
    db = tmp_path / "db"
    r = glint("enroll", "--db", db, "--item", "coat-7", *enrolls)
    assert r.returncode == 0, r.stderr
    v = json.loads(glint("verify", "--db", db, "--item", "coat-7", probe, "--json").stdout)
    assert v["match"] is True and v["log10_far"] < -9
    r = glint("verify", "--db", db, "--item", "coat-7", other, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["match"] is False


@pytest.mark.parametrize("case", ["bad_file", "unknown_item", "empty_db", "missing_file"])
def test_errors_are_one_line(files, tmp_path, case):
    db = files["db"]
    if not (db / "meta.json").exists():
        glint("enroll", "--db", db, "--item", "coat-7", files["e0"], files["e1"], files["e2"])
    args = {
        "bad_file": ("verify", "--db", db, "--item", "coat-7", files["bad"]),
        "unknown_item": ("verify", "--db", db, "--item", "nope", files["probe"]),
        "empty_db": ("identify", "--db", tmp_path / "empty", files["probe"]),
        "missing_file": ("identify", "--db", db, tmp_path / "missing.pgm"),
    }[case]
    r = glint(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glint: ")


def test_signed_scan_input(files, tmp_path, sim_item):
    from glint import imaging
    from glint.match import load_spots
    from glintcore import cose, descriptor, p256

    det = imaging.detect(sim_item["probe"])
    h, w = sim_item["probe"].shape
    payload = descriptor.encode(descriptor.make(b"\x01" * 8, 1, "1.0", "sim", w, h, det.quality, det.spots,
                                                det.guidance))
    priv = 0x1234567
    scan = cose.sign1(payload, priv, kid=b"\x01" * 8)
    p = tmp_path / "probe.scan"
    p.write_bytes(scan)
    a = load_spots(p)
    b = load_spots(files["probe"])
    assert np.array_equal(a.xy, b.xy)
    assert np.array_equal(load_spots(p, public_key=p256.public_key(priv)).xy, a.xy)
    glint("enroll", "--db", files["db"], "--item", "coat-7", files["e0"], files["e1"], files["e2"])
    pub = p256.public_key(priv).hex()
    r = glint("verify", "--db", files["db"], "--item", "coat-7", p, "--json", "--pubkey", pub)
    assert json.loads(r.stdout)["match"] is True
    # issue 15: file mode accepted re-signed, zero-signature and unchecked scans as if checked
    home = tmp_path / "empty-home"
    home.mkdir()
    r = glint_cli("verify", "--db", files["db"], "--item", "coat-7", p, env={"GLINT_HOME": home})
    assert r.returncode != 0 and "no key to check its signature" in r.stderr and len(r.stderr.splitlines()) == 1
    resigned = tmp_path / "resigned.scan"
    resigned.write_bytes(cose.sign1(payload, 0x7654321, kid=b"\x01" * 8))
    zero = tmp_path / "zero.scan"
    zero.write_bytes(scan[:-64] + bytes(64))
    for f in (resigned, zero):
        r = glint("verify", "--db", files["db"], "--item", "coat-7", f, "--pubkey", pub)
        assert r.returncode != 0 and "does not verify" in r.stderr, r.stderr
    r = glint("verify", "--db", files["db"], "--item", "coat-7", zero, "--unchecked", "--json")
    assert json.loads(r.stdout)["match"] is True  # asked for explicitly: matched, not checked
    bad = tmp_path / "junk.scan"
    bad.write_bytes(b"\xa1\x01\x02")
    r = glint("verify", "--db", files["db"], "--item", "coat-7", bad, "--pubkey", pub)
    assert r.returncode != 0 and "not a signed scan" in r.stderr


def test_lab_eval_then_calibrate(tmp_path):
    run = tmp_path / "run"
    r = glint("lab", "eval", "--profile", "field", "--items", "8", "--probes", "2", "--clone-items", "0",
              "--no-identify", "--seed", "3", "--jobs", "1", "--out", run)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["impostor_trials"] == 16 * 7 and summary["far_model"]["chance_scale"] > 0
    r = glint("lab", "calibrate", run)
    assert r.returncode == 0, r.stderr
    assert "impostor trials" in r.stdout and "agrees down to" in r.stdout
    r = glint("lab", "calibrate", tmp_path / "nothing")
    assert r.returncode != 0 and "not a lab run" in r.stderr and len(r.stderr.strip().splitlines()) == 1
