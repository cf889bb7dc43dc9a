"""The chance model: the vectorised tail, its mid-p value and the step position's p-value, the
best of a Poisson number of seeds, agreement with trials drawn from the model itself (at every
threshold with the step position, where the mid-p value is uniform only on average), the fit of the two scanner constants,
and an honest agreement table (counts, 95% intervals, what the trials resolve)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glint.match import MatchParams
from glint.match import calibrate
from glint.match.verify import calibrated_far, log10_binom_sf


def test_vectorised_tail_matches_the_exact_sum():
    rng = np.random.default_rng(5)
    k = rng.integers(-1, 45, 400)
    n = rng.integers(0, 40, 400)
    p = rng.choice([0.0, 1e-3, 0.02, 0.3, 0.97, 1.0], 400)
    got = calibrate.log10_binom_sf_many(k, n, p, chunk=37)  # several chunks
    for kk, nn, pp, g in zip(k, n, p, got):
        if kk <= 0:
            assert g == 0.0
        elif kk > nn or pp == 0.0:
            assert g == -math.inf
        else:
            exact = sum(math.comb(int(nn), i) * pp**i * (1 - pp) ** (int(nn) - i) for i in range(int(kk), int(nn) + 1))
            assert g == pytest.approx(math.log10(exact), abs=1e-9)
            assert g == pytest.approx(log10_binom_sf(int(kk), int(nn), float(pp)), abs=1e-9)


def test_mid_p_tail_is_the_exact_half_weighted_sum():
    for k, n, p in ((3, 20, 0.05), (1, 5, 0.3), (12, 40, 0.1), (7, 7, 0.5)):
        exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1, n + 1))
        exact += 0.5 * math.comb(n, k) * p**k * (1 - p) ** (n - k)
        got = calibrate.log10_binom_sf_many(np.array([k]), np.array([n]), np.array([p]), mid=True)[0]
        assert got == pytest.approx(math.log10(exact), abs=1e-9)
    assert calibrate.log10_binom_sf_many(np.array([0]), np.array([5]), np.array([0.1]), mid=True)[0] == 0.0


def test_step_position_p_value_is_the_exact_weighted_sum():
    for k, n, p, u in ((3, 20, 0.05, 0.3), (1, 5, 0.3, 0.01), (12, 40, 0.1, 0.9), (7, 7, 0.5, 0.02)):
        exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1, n + 1))
        exact += u * math.comb(n, k) * p**k * (1 - p) ** (n - k)
        got = calibrate.log10_binom_sf_many(np.array([k]), np.array([n]), np.array([p]), log_u=np.log([u]))[0]
        assert got == pytest.approx(math.log10(exact), abs=1e-9)
    mid = calibrate.log10_binom_sf_many(np.array([4]), np.array([30]), np.array([0.1]), mid=True)
    half = calibrate.log10_binom_sf_many(np.array([4]), np.array([30]), np.array([0.1]), log_u=np.array([calibrate.LOG_MID]))
    assert half[0] == pytest.approx(mid[0], abs=1e-12)


def test_step_position_is_uniform_from_the_closest_of_uniform_spots():
    rng = np.random.default_rng(11)
    near = rng.integers(1, 30, 200_000)
    closest = np.array([rng.random(m).min() for m in near[:2000]])  # the least of m uniforms, directly ...
    closest = np.concatenate([closest, rng.beta(1, near[2000:])])   # ... and by its law, Beta(1, m)
    u = np.exp(calibrate.step_position(near, closest))
    assert u.min() == pytest.approx(calibrate.STEP_FLOOR)  # floored: never more than a step's fraction
    for a in (0.02, 0.1, 0.3, 0.5, 0.9):
        assert np.mean(u <= a) == pytest.approx(a, abs=0.005)
    assert calibrate.step_position(np.array([0]), np.array([1.0]))[0] == 0.0  # nothing coincided: u = 1
    assert calibrate.step_position(np.array([5]), np.array([0.0]))[0] == pytest.approx(calibrate.LOG_STEP_FLOOR)


def test_seeds_far_is_the_best_of_a_poisson_number_of_seeds():
    for lam, lt in ((0.3, -1.0), (0.3, -6.0), (4.0, -2.0), (40.0, -9.0), (0.01, -0.2)):
        t = 10.0**lt
        pm = [math.exp(-lam) * lam**h / math.factorial(h) for h in range(6)]
        pm.append(1.0 - sum(pm))  # m = min(H, 6)
        direct = sum(q * (1 - (1 - t) ** h) for h, q in enumerate(pm))
        assert calibrate.seeds_log10_far(lam, lt)[0] == pytest.approx(math.log10(direct), abs=1e-6)
    # deep tails: E[min(H, 6)] x T
    assert calibrate.seeds_log10_far(40.0, -400.0)[0] == pytest.approx(math.log10(6.0) - 400.0, abs=1e-6)
    assert calibrate.seeds_log10_far(1.0, -math.inf)[0] == -math.inf


def synthetic_impostors(rng, trials: int, scale: float):
    """Impostor trials drawn from the chance model itself: each pair has lambda expected chance
    code matches, H ~ Poisson(lambda), up to 6 seeds scored, each seed's k of n mapped spots
    coinciding with probability scale * p (p: what verify computes), the closest of them at a
    uniform v (the least of k uniforms); the best seed's (k, n, p) and step position log u."""
    lam = rng.uniform(0.02, 3.0, trials)
    m = np.minimum(rng.poisson(lam), 6)
    best = np.zeros((trials, 4))
    best_tail = np.full(trials, np.inf)
    for s in range(6):
        n = rng.integers(20, 60, trials)
        p = rng.uniform(0.02, 0.12, trials)
        k = rng.binomial(n, np.minimum(1.0, scale * p))
        lu = calibrate.step_position(k, rng.beta(1, np.maximum(k, 1)))
        tail = np.where(m > s, calibrate.log10_binom_sf_many(k, n, p, log_u=lu), np.inf)
        better = tail < best_tail
        best[better] = np.column_stack([k, n, p, lu])[better]
        best_tail = np.minimum(best_tail, tail)
    w = m > 0
    return lam[w], best[w, 0].astype(np.int64), best[w, 1].astype(np.int64), best[w, 2], best[w, 3]


def test_the_model_agrees_with_trials_drawn_from_it():
    rng = np.random.default_rng(3)
    trials = 30_000
    lam, k, n, p, lu = synthetic_impostors(rng, trials, 1.0)
    rows = calibrate.table(calibrate.predicted(lam, k, n, p, 0.0, 1.0, log_u=lu), trials)
    assert calibrate.agreement_depth(rows) <= -3.0
    assert all(abs(r["deviation_decades"]) < 0.06 for r in rows[:3])  # -1 .. -2: hundreds of events


def test_the_step_position_is_uniform_at_every_threshold_where_the_mid_p_value_is_not():
    """A count of small mean (Binomial(30, 0.01): decade-sized steps): the mid-p value is uniform
    only on average over thresholds (0.45 - 0.5 decades below 10^t at -1 and -2, on it at -1.5 and
    -2.5); P(K > k) + u P(K = k) is on 10^t at each of them."""
    rng = np.random.default_rng(7)
    n, p = np.full(100_000, 30), np.full(100_000, 0.01)
    k = rng.binomial(n, p)
    step = calibrate.log10_binom_sf_many(k, n, p, log_u=calibrate.step_position(k, rng.beta(1, np.maximum(k, 1))))
    mid = calibrate.log10_binom_sf_many(k, n, p, mid=True)
    for t in (-1.0, -1.5, -2.0, -2.5):  # 10,000 .. 316 events expected
        assert math.log10(np.mean(step <= t)) - t == pytest.approx(0.0, abs=0.06)
    assert all(math.log10(np.mean(mid <= t)) - t < -0.4 for t in (-1.0, -2.0))


@pytest.mark.slow
def test_the_fit_finds_no_correction_for_the_model_and_the_scale_of_another():
    rng = np.random.default_rng(3)
    trials = 100_000
    lam, k, n, p, lu = synthetic_impostors(rng, trials, 1.0)
    f = calibrate.fit(lam, k, n, p, trials, log_u=lu)
    # The two constants trade against each other (a scale of 1.08 on counts of k ~ 2 is an offset of
    # ~ +0.15); the fitted pair describes the trials as the true one does, within 0.1 decades.
    assert f["chance_scale"] == pytest.approx(1.0, abs=0.1)
    assert abs(f["offset"]) < 0.2
    rows = calibrate.table(calibrate.predicted(lam, k, n, p, f["offset"], f["chance_scale"], log_u=lu), trials)
    assert all(abs(r["deviation_decades"]) < 0.1 for r in rows[:5])  # -1 .. -3
    # Coincidences at 0.7 of the modelled rate: the fit finds the scale, and the fitted model agrees.
    lam, k, n, p, lu = synthetic_impostors(rng, trials, 0.7)
    f = calibrate.fit(lam, k, n, p, trials, log_u=lu)
    assert f["chance_scale"] == pytest.approx(0.7, abs=0.08)
    lam2, k2, n2, p2, lu2 = synthetic_impostors(rng, trials, 0.7)
    rows = calibrate.table(calibrate.predicted(lam2, k2, n2, p2, f["offset"], f["chance_scale"], log_u=lu2), trials)
    assert calibrate.agreement_depth(rows) <= -3.5


def test_a_wrong_model_is_reported_as_disagreeing():
    rng = np.random.default_rng(4)
    trials = 20_000
    lam, k, n, p, lu = synthetic_impostors(rng, trials, 1.0)
    far = calibrate.predicted(lam, k, n, p, 0.0, 0.5, log_u=lu)  # claims coincidences half as likely as they are
    rows = calibrate.table(far, trials)
    assert calibrate.agreement_depth(rows) is None or calibrate.agreement_depth(rows) > -2.0
    assert rows[4]["deviation_decades"] > 0.5


def test_table_counts_intervals_and_resolution():
    far = np.array([-0.5, -1.2, -2.6, -3.1, -7.0])
    rows = calibrate.table(far, 1000, np.array([-1.0, -2.0, -3.0, -4.0]))
    assert [r["count"] for r in rows] == [4, 3, 2, 1]
    assert [r["resolved"] for r in rows] == [True, True, False, False]  # 10^t * trials >= 3
    lo, hi = rows[0]["ci95"]
    assert lo < 0.004 < hi
    assert rows[0]["deviation_decades"] == pytest.approx(math.log10(0.004) + 1.0, abs=1e-3)


def test_poisson_interval_close_to_garwood():
    # Garwood (exact) 95% intervals: 0 -> (0, 3.689); 1 -> (0.0253, 5.572); 10 -> (4.795, 18.39)
    for c, lo, hi in ((0, 0.0, 3.689), (1, 0.0253, 5.572), (10, 4.795, 18.39), (100, 81.36, 121.63)):
        got = calibrate.poisson_interval(c)
        assert got[0] == pytest.approx(lo, rel=0.05, abs=0.002)
        assert got[1] == pytest.approx(hi, rel=0.03)


def test_calibrated_far():
    p = MatchParams(far_offset=-0.5)
    # lambda 100: six seeds scored, so 6 x 1e-12, less the offset
    assert calibrated_far(100.0, -12.0, p) == pytest.approx(math.log10(6.0) - 12.5)
    assert calibrated_far(0.0, -12.0, p) == 0.0
    assert calibrated_far(5.0, 0.0, MatchParams()) == pytest.approx(math.log10(-math.expm1(-5.0)))  # P(H > 0)
    assert calibrated_far(5.0, -math.inf, p) == -math.inf
    # a pair whose chance code matches are rare (lambda 0.1) gets that rarity: about 0.1 x T
    assert calibrated_far(0.1, -12.0, MatchParams()) == pytest.approx(-13.0, abs=0.01)


def test_constants_of_an_older_model_form_are_not_reused():
    stored = MatchParams(far_offset=-1.3, far_chance_scale=0.5).to_dict()
    assert MatchParams.from_dict(stored).far_offset == -1.3  # same form: a database's own calibration kept
    old = dict(stored, far_model=1, far_offset=-0.45, far_hyp_exponent=1.0, far_tail_slope=1.0)
    del old["far_chance_scale"]
    p = MatchParams.from_dict(old)
    assert (p.far_offset, p.far_chance_scale) == (MatchParams().far_offset, MatchParams().far_chance_scale)
    legacy = {k: v for k, v in old.items() if k != "far_model"}  # written before the form had a version
    assert MatchParams.from_dict(legacy).far_offset == MatchParams().far_offset
