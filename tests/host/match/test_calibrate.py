"""The chance-model calibration: the vectorised tail, the fit of its two constants on impostor
trials, and an honest agreement table (counts, 95% intervals, what the trials resolve)."""

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


def synthetic_impostors(rng, trials: int, with_hyp: float, scale: float):
    """Impostor trials drawn from a known model: a fraction ``with_hyp`` has one hypothesis, whose k
    of n mapped spots coincide, each with probability scale * p (p: what verify would compute)."""
    m = int(trials * with_hyp)
    n = rng.integers(20, 60, m)
    p = rng.uniform(0.02, 0.12, m)
    k = rng.binomial(n, scale * p)
    return np.ones(m, np.int64), k, n, p


def test_fit_recovers_the_chance_scale_and_the_hypothesis_mass():
    rng = np.random.default_rng(3)
    trials = 250_000
    hyp, k, n, p = synthetic_impostors(rng, trials, 0.3, 0.7)
    f = calibrate.fit(hyp, k, n, p, trials)
    assert f["chance_scale"] == pytest.approx(0.7, abs=0.08)
    # The offset holds the fraction with a hypothesis (log10 0.3 = -0.52) and the binomial tail's
    # own discreteness (it is a conservative p-value): a little below -0.52.
    assert -1.0 < f["offset"] < -0.4
    assert f["rms_decades"] < 0.1
    # Agreement is then tested on fresh trials of the same model, below the fitted depth too.
    hyp2, k2, n2, p2 = synthetic_impostors(rng, trials, 0.3, 0.7)
    far = calibrate.predicted(hyp2, k2, n2, p2, f["offset"], f["chance_scale"])
    rows = calibrate.table(far, trials)
    assert calibrate.agreement_depth(rows) <= -4.5
    # ... and the raw union bound (scale 1, offset 0) is far too conservative for the same trials.
    raw = calibrate.table(calibrate.predicted(hyp2, k2, n2, p2, 0.0, 1.0), trials)
    assert raw[4]["deviation_decades"] < -0.8   # at 1e-3


def test_a_wrong_model_is_reported_as_disagreeing():
    rng = np.random.default_rng(4)
    trials = 200_000
    hyp, k, n, p = synthetic_impostors(rng, trials, 0.3, 1.0)
    far = calibrate.predicted(hyp, k, n, p, 0.0, 0.5)  # claims coincidences half as likely as they are
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
    assert calibrated_far(100, -12.0, p) == pytest.approx(-10.5)
    assert calibrated_far(0, -12.0, p) == 0.0
    assert calibrated_far(5, 0.0, p) == 0.0  # capped: a probability
    assert calibrated_far(5, -math.inf, p) == -math.inf


def test_constants_of_an_older_model_form_are_not_reused():
    stored = MatchParams(far_offset=-1.3, far_chance_scale=0.5).to_dict()
    assert MatchParams.from_dict(stored).far_offset == -1.3  # same form: a database's own calibration kept
    old = dict(stored, far_model=1, far_offset=-0.45, far_hyp_exponent=1.0, far_tail_slope=1.0)
    del old["far_chance_scale"]
    p = MatchParams.from_dict(old)
    assert (p.far_offset, p.far_chance_scale) == (MatchParams().far_offset, MatchParams().far_chance_scale)
    legacy = {k: v for k, v in old.items() if k != "far_model"}  # written before the form had a version
    assert MatchParams.from_dict(legacy).far_offset == MatchParams().far_offset
