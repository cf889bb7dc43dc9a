"""The chance-model calibration recovers a known effective hypothesis count and reports honestly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glint.match import MatchParams
from glint.match import calibrate
from glint.match.verify import calibrated_far


def test_fit_recovers_a_known_model():
    rng = np.random.default_rng(3)
    n = 200_000
    hyp = rng.integers(1, 2000, n)
    true_p = rng.random(n)  # an exactly calibrated statistic: P(p <= x) = x
    offset, exponent = -1.5, 0.6
    tail = np.log10(true_p) - offset - exponent * np.log10(hyp)
    f = calibrate.fit(hyp, tail)
    assert f["offset"] == pytest.approx(offset, abs=0.3)
    assert f["exponent"] == pytest.approx(exponent, abs=0.15)
    assert f["rms_decades"] < 0.1
    rows = calibrate.table(calibrate.predicted(hyp, tail, f["offset"], f["exponent"], f["slope"]), n,
                           np.array([-1.0, -3.0]))
    for r in rows:
        assert math.log10(r["empirical"]) == pytest.approx(r["log10_threshold"], abs=0.2)


def test_bonferroni_parameters_give_the_raw_bound():
    p = MatchParams(far_offset=0.0, far_hyp_exponent=1.0, far_tail_slope=1.0)
    assert calibrated_far(100, -12.0, p) == pytest.approx(-10.0)
    assert calibrated_far(0, -12.0, p) == 0.0
    assert calibrated_far(5, 0.0, p) == 0.0  # capped: a probability
    assert calibrated_far(5, -math.inf, p) == -math.inf
