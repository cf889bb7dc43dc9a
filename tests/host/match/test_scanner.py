"""Calibrating a scanner model from its own captures (glint lab calibrate --captures)."""

from __future__ import annotations

import json

import pytest
from glinttest import glint_cli

from glint.errors import MatchError
from glint.match import Database, enroll
from glint.match.scanner import calibrate_scanner, load_captures
from glint.sim import capture, make_coating, write_frame


@pytest.fixture(scope="module")
def scanner_dir(tmp_path_factory):
    """K = 4 items x M = 3 captures of one simulated scanner (the harsh profile), as PNG files."""
    root = tmp_path_factory.mktemp("scanner")
    for i in range(4):
        c = make_coating(300 + i, "harsh")
        d = root / f"item-{i}"
        d.mkdir()
        for k in range(3):
            write_frame(d / f"c{k}.png", capture(c, "harsh", seed=10 * i + k).image)
    return root


def test_calibration_fits_the_noise_factor_and_reports_the_tail(scanner_dir):
    rep = calibrate_scanner(load_captures(scanner_dir))
    assert rep["items"] == 4 and rep["captures"] == 12 and rep["genuine_pairs"] == 24
    n = rep["noise"]
    assert n["pairs"] >= 12 and 0.5 < n["median_ratio"] < 2.0  # single-capture references: some not beyond chance
    assert rep["constants"]["noise_c"] == pytest.approx(rep["constants_before"]["noise_c"] * n["median_ratio"], rel=1e-2)
    c = rep["chance"]
    assert c["trials"] == 12 * 9 and c["fit"] is None and "kept" in c  # too few impostors: constants kept
    assert c["least_log10_far"] > -9 and rep["frr_after"] <= rep["frr_before"] + 0.05


def test_calibration_is_stored_and_used(scanner_dir, tmp_path):
    rep = calibrate_scanner(load_captures(scanner_dir))
    caps = load_captures(scanner_dir)["item-0"]
    db = Database(tmp_path / "db")
    with pytest.raises(MatchError, match="is empty"):
        db.set_calibration(rep["constants"])
    db.add("item-0", enroll(caps[:2]))
    db.set_calibration(dict(rep["constants"], noise_c=3.25))
    again = Database(tmp_path / "db")
    assert again.params.noise_c == 3.25 and again.reference("item-0").params.noise_c == 3.25
    ref = enroll(caps[:2], calibration={"noise_c": 1.75, "far_offset": -0.5})
    assert ref.params.noise_c == 1.75 and ref.params.far_offset == -0.5


def test_cli_calibrate_captures(scanner_dir, tmp_path):
    out = tmp_path / "cal.json"
    r = glint_cli("lab", "calibrate", "--captures", str(scanner_dir), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "noise_c" in r.stdout and "FRR at log10_far <= -9" in r.stdout
    assert set(json.loads(out.read_text())) >= {"noise_c", "far_offset", "far_chance_scale"}
    r = glint_cli("lab", "calibrate", "--captures", str(tmp_path / "none"))
    assert r.returncode == 2 and r.stderr.startswith("glint: ") and r.stderr.count("\n") <= 2


def test_real_camera_calibration(real_photos, tmp_path):
    """The test_5mp camera: one field (item) x three exposures; nothing else from that camera."""
    d = tmp_path / "test_5mp"
    d.mkdir()
    for e in ("e20ms", "e50ms", "e100ms"):
        (d / f"{e}.jpg").symlink_to(real_photos / f"test_5mp_g100_{e}.jpg")
    rep = calibrate_scanner(load_captures(tmp_path))
    assert rep["frame"] == [1280, 960] and rep["noise"]["pairs"] >= 2
    assert 1.0 < rep["noise"]["median_ratio"] < 3.0 and rep["chance"]["trials"] == 0
