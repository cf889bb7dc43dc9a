"""1:1 verification on synthetic constellations: any rotation, +-15% scale, mild perspective,
noise, 30% missing and 30% spurious spots; impostors and clones refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glint.match import enroll, verify
from glint.match import synth
from glint.match.params import MatchParams
from glint.match.verify import log10_binom_sf


def test_binomial_tail_matches_direct_sum():
    n, p = 40, 0.02
    for k in (1, 3, 8, 20):
        direct = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert log10_binom_sf(k, n, p) == pytest.approx(math.log10(direct), abs=1e-9)
    assert log10_binom_sf(0, 5, 0.1) == 0.0
    assert log10_binom_sf(6, 5, 0.1) == -math.inf


def test_genuine_probes_match_at_any_pose(fields, rng):
    results = []
    for f in fields[:8]:
        ref = enroll(synth.enrollment_captures(f, rng))
        for _ in range(2):
            results.append(verify(ref, synth.observe(f, rng, noise=0.1, drop=0.3, spurious=0.3)))
    misses = [r.reason for r in results if not r.match]
    assert len(misses) <= 1, misses
    good = [r for r in results if r.match]
    assert all(r.log10_far <= -9 and r.matched >= 8 and r.residual < 0.2 for r in good)


def test_transform_recovers_the_pose(fields, rng):
    f = fields[0]
    caps = synth.enrollment_captures(f, rng, n=1, drop=0.0, spurious=0.0)
    ref = enroll(caps)
    probe = synth.observe(f, rng, noise=0.05)
    res = verify(ref, probe)
    assert res.match
    true = probe.meta["pose"] @ np.linalg.inv(caps[0].meta["pose"])
    err = np.abs(synth.apply_h(res.transform, ref.xy) - synth.apply_h(true, ref.xy)).max()
    assert err < 0.5


def test_impostors_are_beyond_doubt_rejected(fields, rng):
    refs = [enroll(synth.enrollment_captures(f, rng)) for f in fields[:6]]
    worst = 0.0
    for i, ref in enumerate(refs):
        for j, f in enumerate(fields[6:12]):
            res = verify(ref, synth.observe(f, rng))
            assert not res.match
            worst = min(worst, res.log10_far)
    assert worst > -6  # 36 trials: nothing near the threshold


def test_clone_with_large_error_is_rejected_by_the_residual_gate(fields, rng):
    f = fields[1]
    ref = enroll(synth.enrollment_captures(f, rng, noise=0.05))
    clone = synth.displace(f, 0.6, rng)
    res = verify(ref, synth.observe(clone, rng, noise=0.05))
    assert not res.match
    assert res.residual_p is not None and res.residual_p < MatchParams().residual_alpha
    assert res.residual_ratio > 2.5 and "x the expected" in res.reason
    assert res.log10_far < -9  # far beyond chance: it is the precision that gives the clone away


@pytest.mark.parametrize("noise", [0.05, 0.15, 0.3])
def test_clone_gate_follows_the_captures_noise(fields, rng, noise):
    """The gate is relative to the measured precision: genuine captures pass at any noise level,
    a replica displaced by 2x the genuine noise does not (an absolute threshold cannot do both)."""
    f = fields[2]
    ref = enroll(synth.enrollment_captures(f, rng, noise=noise, drop=0.1, spurious=0.1))
    genuine = [verify(ref, synth.observe(f, rng, noise=noise, drop=0.1, spurious=0.1)) for _ in range(4)]
    assert all(g.match for g in genuine), [g.reason for g in genuine]
    assert all(0.6 < g.residual_ratio < 1.5 and g.residual_p > 0.01 for g in genuine)
    assert all(0.7 < g.expected_noise / (noise * (1 + 1 / 3) ** 0.5) < 1.4 for g in genuine)
    # displaced by twice the genuine residual noise (probe and fused reference: sqrt(1 + 1/3) x noise)
    clone = synth.displace(f, 2 * noise * (1 + 1 / 3) ** 0.5, rng)
    fakes = [verify(ref, synth.observe(clone, rng, noise=noise, drop=0.1, spurious=0.1)) for _ in range(4)]
    assert not any(c.match for c in fakes), [c.reason for c in fakes]


def test_refit_converges_from_a_poor_seed():
    """A seed transform that predicts only the spots near its quad (a slightly wrong rotation) must
    still end in the precise fit: the refit goes on while it gains pairs."""
    from glint.match.verify import prepare, refine, score_prepared

    f = [synth.make_field(np.random.default_rng(99)) for _ in range(3)][2]
    rng = np.random.default_rng(1234)
    ref = enroll(synth.enrollment_captures(f, rng, drop=0.0, spurious=0.0))
    probe = synth.observe(f, rng, noise=0.05, drop=0.1, spurious=0.1)
    sc = score_prepared(ref, prepare(probe, ref.params))
    radius = np.full(len(ref.xy), 2.0)
    good = refine(ref.xy, probe.xy, sc.seed_map, radius, ref.params)
    assert good[2] is not None and len(good[1]) >= 25
    # Rotate the seed map by 1.2 degrees about its quad: 3 px off at 150 px from it (one round of
    # refitting leaves 0.12 px of residual instead of 0.09).
    a = math.radians(1.2)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c, m = sc.seed_centre, sc.seed_map  # [x y 1] @ m
    lin = m[:2] @ rot.T
    poor = np.vstack([lin, (c @ m[:2] + m[2]) - c @ lin])
    h, pairs, sigma = refine(ref.xy, probe.xy, poor, radius, ref.params)
    assert sigma is not None
    assert sigma == pytest.approx(good[2], abs=0.005)
    assert len(pairs) >= len(good[1]) - 1


def test_refit_grows_an_affine_map_before_the_homography(monkeypatch):
    """A seed whose scale is 2 % off predicts only the spots near its quad. A homography fitted to
    that patch alone extrapolates its projective terms into pixels of error across the coating
    (harsh: 30 of 60 pairs kept, residual 4.5 x the expected); the refit grows an affine map over
    the coating first and ends where a good seed does."""
    import importlib

    v = importlib.import_module("glint.match.verify")
    rng = np.random.default_rng(3)
    f = synth.make_field(rng)
    ref = enroll(synth.enrollment_captures(f, rng, noise=0.1, drop=0.05, spurious=0.05))
    probe = synth.observe(f, rng, noise=0.1, drop=0.05, spurious=0.05)
    pr = v.prepare(probe, ref.params)
    sc = v.score_prepared(ref, pr)
    radius = v.seed_radii(ref.params, np.linalg.norm(ref.xy - sc.seed_centre, axis=1), v.seed_noise(ref, pr))
    good = v.refine(ref.xy, probe.xy, sc.seed_map, radius, ref.params)
    c, m = sc.seed_centre, sc.seed_map
    lin = m[:2] * 1.02
    poor = np.vstack([lin, (c @ m[:2] + m[2]) - c @ lin])
    h, pairs, sigma = v.refine(ref.xy, probe.xy, poor, radius, ref.params)
    assert sigma == pytest.approx(good[2], abs=0.005) and len(pairs) == len(good[1])
    monkeypatch.setattr(v, "AFFINE_ROUNDS", 0)  # the homography straight from the seed's pairs
    _, pairs0, sigma0 = v.refine(ref.xy, probe.xy, poor, radius, ref.params)
    assert len(pairs0) < len(good[1]) - 5 and sigma0 > 2 * good[2]


def test_refit_starts_from_the_pairs_the_count_found():
    """Where the seed's own map is too poor to gather pairs (harsh: 14-21 pairs kept of a count of
    52-54, the clone gate then at 4.5-6 x the expected noise), the refit starts from the pairs the
    count's rings found (Score.seed_pairs: the seed's four and the k counted) and ends as a good
    seed does; without them it gathers too few pairs to fit at all."""
    import importlib

    v = importlib.import_module("glint.match.verify")
    rng = np.random.default_rng(0)
    f = synth.make_field(rng)
    ref = enroll(synth.enrollment_captures(f, rng, noise=0.1, drop=0.05, spurious=0.05))
    probe = synth.observe(f, rng, noise=0.1, drop=0.05, spurious=0.05)
    sc = v.score_prepared(ref, v.prepare(probe, ref.params))
    assert sc.seed_pairs is not None and len(sc.seed_pairs) == sc.k + 4
    radius = v.seed_radii(ref.params, np.linalg.norm(ref.xy - sc.seed_centre, axis=1), 0.1)
    good = v.refine(ref.xy, probe.xy, sc.seed_map, radius, ref.params)
    c, m = sc.seed_centre, sc.seed_map
    lin = m[:2] * 1.06  # a seed 6 % off in scale
    poor = np.vstack([lin, (c @ m[:2] + m[2]) - c @ lin])
    _, pairs, sigma = v.refine(ref.xy, probe.xy, poor, radius, ref.params, start=sc.seed_pairs)
    assert sigma == pytest.approx(good[2], abs=0.005) and len(pairs) == len(good[1])
    _, pairs0, sigma0 = v.refine(ref.xy, probe.xy, poor, radius, ref.params)
    assert sigma0 is None and len(pairs0) < 6


def test_rings_follow_a_tilt_outwards(fields, rng, monkeypatch):
    """A noisy pair under a tilt: each ring's affine map extrapolates only a quarter further than
    the pairs it is fitted to, so its radii stay tight at the far side of the coating, where three
    rings out to 2 band_hi (the earlier law) lose decades; unrelated pairs stay far from -9."""
    import importlib

    v = importlib.import_module("glint.match.verify")
    f = fields[3]
    ref = enroll(synth.enrollment_captures(f, rng, noise=0.5, drop=0.1, spurious=0.1))
    probes = [v.prepare(synth.observe(f, rng, pose=synth.random_pose(rng, tilt=0.06), noise=0.5, drop=0.1,
                                      spurious=0.1), ref.params) for _ in range(4)]
    others = [v.prepare(synth.observe(g, rng, noise=0.5, drop=0.1, spurious=0.1), ref.params) for g in fields[4:8]]
    new = [v.score_prepared(ref, p).log10_far for p in probes]
    assert all(v.score_prepared(ref, o).log10_far > -6 for o in others)
    monkeypatch.setattr(v, "ring_bounds", lambda first, far: (first, first * 5 / 3, first * 10 / 3, math.inf))
    old = [v.score_prepared(ref, p).log10_far for p in probes]
    # (with the count's step position the gains are 1.2 - 4.6 decades, with the mid-p value 1.9 - 3.6)
    assert all(a < b - 1.0 for a, b in zip(new, old)) and sum(old) - sum(new) > 6.0, list(zip(new, old))


def test_noisy_pairs_gain_significance_from_the_refined_stage(fields, rng, monkeypatch):
    """Where the localisation noise is large the seed's radii grow wide far from its quad and those
    spots carry little significance; the near stage's affine fit predicts them within radii that
    follow its own error instead. Genuine pairs gain decades; unrelated ones stay far from -9."""
    import importlib

    v = importlib.import_module("glint.match.verify")  # the module (glint.match.verify is also the function)
    noise = 0.6
    f = fields[3]
    ref = enroll(synth.enrollment_captures(f, rng, noise=noise, drop=0.1, spurious=0.1))
    probes = [synth.observe(f, rng, noise=noise, drop=0.1, spurious=0.1) for _ in range(4)]
    two = [v.score_prepared(ref, v.prepare(p, ref.params)) for p in probes]
    genuine = [verify(ref, p) for p in probes]
    monkeypatch.setattr(v, "REFINED_MIN_PAIRS", 10**6)  # the one-stage count
    one = [v.score_prepared(ref, v.prepare(p, ref.params)) for p in probes]
    assert all(a.log10_far < b.log10_far - 3 for a, b in zip(two, one)), [(a.log10_far, b.log10_far) for a, b in zip(two, one)]
    monkeypatch.undo()
    assert all(g.match for g in genuine), [g.reason for g in genuine]
    worst = 0.0
    for j, g in enumerate(fields[6:12]):
        res = verify(ref, synth.observe(g, rng, noise=noise, drop=0.1, spurious=0.1))
        assert not res.match
        worst = min(worst, res.log10_far)
    assert worst > -6


def test_a_failed_verify_names_an_under_exposed_probe():
    """Fewer than the guidance's MIN_SPOTS spots clear of the measured noise: the failure says so, with
    the figures and what to do; a probe without the host's count (a signed scan) or with enough: nothing."""
    from glint.match.spots import SpotSet
    from glint.match.verify import poor_capture
    from glintcore.proto import GD_OK, GD_TOO_DARK, GD_TOO_FEW_SPOTS

    s = SpotSet(np.zeros((32, 2)), np.ones(32), 1280, 960)
    s.meta = {"quality": {0: 32}, "guidance": GD_OK, "clear": 12}
    why = poor_capture(s)
    assert why.startswith("; the probe capture is under-exposed: only 12 of its 32 spots") and "longer exposure" in why
    assert "\n" not in why
    s.meta["clear"] = 30
    assert poor_capture(s) == ""
    del s.meta["clear"]
    assert poor_capture(s) == ""
    s.meta.update(guidance=GD_TOO_FEW_SPOTS, clear=12)  # the measured reason for too few spots
    assert "under-exposed" in poor_capture(s)
    s.meta.update(guidance=GD_TOO_DARK)  # any other guidance of the scanner's first
    assert "too dark" in poor_capture(s)
