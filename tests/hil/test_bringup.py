"""glint bringup against a scanner (after glint fw deploy): frames, focus, exposure, part checks, provisioning."""

from __future__ import annotations

import json

import numpy as np

from glint.imaging import load_image
from glint.link import open_scanner


def test_capture_a_raw_frame_to_png(deployed, tmp_path):
    out = tmp_path / "frame.png"
    r = deployed.glint("bringup", "capture", "-p", deployed.url, "-o", str(out))
    img = load_image(out)
    with open_scanner(deployed.url) as sc:
        w, h = sc.info()["geom"]
    assert img.shape == (h, w) and img.max() > img.min()
    assert "guidance" in r.stdout and "focus" in r.stdout
    if deployed.kind == "virtual":  # the sim camera plays /sim/lens.pgm: the PNG is exactly that frame
        from glint.bringup.frames import frame_stats

        lens = load_image(deployed.vs.sim_dir / "lens.pgm")
        assert np.array_equal(img, lens)
        st = json.loads(deployed.glint("bringup", "stats", "-p", deployed.url, "--json").stdout)
        assert st == json.loads(json.dumps(frame_stats(lens).to_dict()))


def test_focus_repeats_with_a_progress_display(deployed):
    r = deployed.glint("bringup", "focus", "-p", deployed.url, "--count", "2")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("focus ")]
    assert len(lines) == 2 and "[" in lines[0] and "best focus" in r.stdout


def test_exposure_sweep_stores_its_recommendation(deployed):
    r = json.loads(deployed.glint("bringup", "exposure", "-p", deployed.url, "--exposures", "3000,6000", "--json").stdout)
    assert [row["exposure_us"] for row in r["rows"]] == [3000, 6000]
    assert r["stored"] and r["best"] in (3000, 6000)
    from glint.bringup.frames import config_value

    with open_scanner(deployed.url) as sc:
        assert config_value(sc, "exposure_us") == r["best"]
        sc.config_set("exposure_us", r["previous"])


def test_indicators_and_storage(deployed):
    r = deployed.glint("bringup", "indicators", "-p", deployed.url, "--yes")
    assert "indicators: ok" in r.stdout
    if deployed.kind == "virtual":
        assert deployed.vs.status()["pattern"] == "ready"
    assert "storage: ok" in deployed.glint("bringup", "storage", "-p", deployed.url).stdout


def test_provision_then_key_selftest(deployed):
    r = deployed.glint("fw", "provision", "-p", deployed.url, "--board", deployed.board, "--label", "hil-1")
    assert "no change" in r.stdout and "provisioned " in r.stdout
    r = deployed.glint("bringup", "keytest", "-p", deployed.url)
    assert "signature over a fresh challenge: verifies" in r.stdout and "tampered challenge: rejected" in r.stdout
    r = json.loads(deployed.glint("bringup", "check", "-p", deployed.url, "--json").stdout)
    assert r["ok"], r
    listed = json.loads(deployed.glint("device", "list", "--json").stdout)
    assert [d["label"] for d in listed["devices"]] == ["hil-1"]
