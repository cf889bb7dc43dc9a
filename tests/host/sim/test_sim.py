"""glint.sim: deterministic frames, sensible particle counts, clones, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from glinttest import glint_cli

from glint.sim import PROFILES, capture, clone_coating, make_coating
from glint.sim.evaluate import blob_detector, detectable_mask, match


def test_profiles_documented_fields():
    assert set(PROFILES) == {"bench", "field", "harsh", "wild"}
    for p in PROFILES.values():
        assert (p.width, p.height) == (320, 240) and p.px_per_mm > 0
    vga = PROFILES["field"].at(640, 480)
    assert vga.px_per_mm == 2 * PROFILES["field"].px_per_mm


def test_deterministic():
    a = capture(make_coating(5, "harsh"), "harsh", seed=3)
    b = capture(make_coating(5, "harsh"), "harsh", seed=3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.truth_xy, b.truth_xy)
    c = capture(make_coating(5, "harsh"), "harsh", seed=4)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("profile", ["bench", "field", "harsh"], ids=lambda p: "profile-" + p)
def test_every_pose_shows_enough_detectable_particles(profile):
    for k in range(12):
        cap = capture(make_coating(k, profile), profile, seed=k)
        n = int(detectable_mask(cap)[0].sum())
        assert 60 <= n <= 170, (profile, k, n)
        assert cap.image.dtype == np.uint8 and cap.image.shape == (240, 320)


def test_clone_displacement_and_counterfeit():
    c = make_coating(9)
    cl = clone_coating(c, sigma_px=0.5, seed=1)
    d = np.hypot(*(cl.xy - c.xy).T) * PROFILES["field"].px_per_mm
    assert 0.4 < np.sqrt((d**2).mean() / 2) < 0.6
    other = make_coating(10)
    assert len(match(other.xy * 40, c.xy * 40, radius=0.5)) < 5


def test_truth_matches_blob_detector_roughly():
    cap = capture(make_coating(2, "bench"), "bench", seed=2)
    kp = blob_detector(cap.image)
    assert len(match(kp, cap.truth_xy)) > 0.6 * len(cap.truth_xy)


def test_cli_render_and_detect(tmp_path):
    out, truth = tmp_path / "f.png", tmp_path / "t.json"
    r = glint_cli("sim", "render", "--profile", "field", "--seed", "7",
                  "--item-seed", "3", "--clone-sigma", "0.3", "--out", str(out), "--truth", str(truth))
    assert r.returncode == 0, r.stderr
    t = json.loads(truth.read_text())
    assert t["item_seed"] == 3 and t["width"] == 320 and len(t["particles"]) > 60 and "pose" in t
    r = glint_cli("sim", "detect", str(out), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(bytes.fromhex(d["spots"])) == 5 * 64 and d["guidance"] == 0
    r = glint_cli("sim", "render", "--profile", "nope", "--out", str(out))
    assert r.returncode == 2 and r.stderr.startswith("glint: unknown simulator profile")


def test_wild_items_draw_their_own_optics_over_the_documented_ranges():
    from glint.sim import get_profile
    from glint.sim import wild

    drawn = [get_profile("wild", item_seed=k) for k in range(300)]
    d = [p.extras["draw"] for p in drawn]
    ppm = np.array([x["px_per_mm"] for x in d])
    psf = np.array([x["psf_sigma_px"] for x in d])
    disc = np.array([x["defocus_disc_px"] for x in d])
    n = np.array([x["particles_in_view"] for x in d])
    ph = np.array([x["photons"] for x in d])
    rn = np.array([x["read_noise_e"] for x in d])
    for v, (lo, hi) in ((ppm, wild.PX_PER_MM), (psf, wild.PSF_SIGMA_PX), (disc, wild.DEFOCUS_DISC_PX),
                        (n, wild.PARTICLES_IN_VIEW), (ph, wild.PHOTONS), (rn, wild.READ_NOISE_E)):
        assert lo <= v.min() and v.max() <= hi
        assert v.min() < lo + 0.15 * (hi - lo) and v.max() > hi - 0.15 * (hi - lo)  # the whole range is drawn
    assert {tuple(x["frame"]) for x in d} == set(wild.FRAMES)
    jpeg = [x["jpeg_quality"] for x in d]
    assert None in jpeg and min(q for q in jpeg if q) >= 50 and max(q for q in jpeg if q) <= 95
    assert max(p.wear_loss for p in drawn) > 0.25 and max(p.tilt_max_deg for p in drawn) > 10
    assert get_profile("wild", item_seed=7) == drawn[7]  # the same item, the same scanner
    with pytest.raises(Exception, match="draws each item's frame size"):
        PROFILES["wild"].at(640, 480)


def test_wild_capture_uses_the_items_optics_and_is_deterministic():
    c = make_coating(3, "wild")
    a, b = capture(c, "wild", seed=1), capture(c, "wild", seed=1)
    assert np.array_equal(a.image, b.image)
    w, h = a.profile.extras["draw"]["frame"]
    assert a.image.shape == (h, w) and a.profile.extras["item_seed"] == 3
    n_view = a.profile.extras["draw"]["particles_in_view"]
    assert 0.5 * n_view < len(a.truth_xy) < 1.6 * n_view + 10
    cl = clone_coating(c, sigma_px=0.5, seed=1, profile="wild")
    d = np.hypot(*(cl.xy - c.xy).T) * a.profile.px_per_mm
    assert 0.4 < np.sqrt((d**2).mean() / 2) < 0.6


def test_cli_render_wild(tmp_path):
    out, truth = tmp_path / "w.png", tmp_path / "t.json"
    r = glint_cli("sim", "render", "--profile", "wild", "--seed", "2",
                  "--out", str(out), "--truth", str(truth))
    assert r.returncode == 0, r.stderr
    t = json.loads(truth.read_text())
    assert t["profile"] == "wild" and [t["width"], t["height"]] == t["optics"]["frame"] and "optics: " in r.stdout
