"""Calibration of the chance model on impostor trials: an effective hypothesis count.

verify's raw bound is Bonferroni, ``log10(H) + log10 T`` (H candidate hypotheses, T the
binomial tail of the best one). It is valid but loose: the H hypotheses are far from
independent (most share spots and transforms) and only the best few transform groups
are scored, so the empirical impostor rate sits 2-3 decades below it. The calibrated
model replaces H by an effective count ``10^offset * H^exponent`` (and allows a slope on
log10 T, never above 1, so it never extrapolates more optimistically than the binomial):

    log10_far = offset + exponent * log10(H) + slope * log10(T)

fitted so that, among impostor trials with a similar H, the fraction with
``log10_far <= t`` equals ``10^t`` over the thresholds the trials resolve (at least
``MIN_COUNT`` impostors below t). The fit is made on one set of trials and checked on a
disjoint one (the lab: probes of even items against odd ones).
"""

from __future__ import annotations

import math

import numpy as np

MIN_COUNT = 5                       # thresholds with fewer impostors below them are not fitted
THRESHOLDS = np.arange(-0.5, -12.01, -0.25)
OFFSETS = np.arange(-4.0, 1.001, 0.05)
EXPONENTS = np.arange(0.2, 1.201, 0.05)
SLOPES = np.arange(0.8, 1.001, 0.05)
STRATA = 4                          # groups of trials by hypothesis count


def predicted(n_hyp: np.ndarray, log10_tail: np.ndarray, offset: float, exponent: float, slope: float) -> np.ndarray:
    """log10_far of trials (n_hyp > 0) under the calibrated model (not capped at 0)."""
    return offset + exponent * np.log10(np.maximum(n_hyp, 1)) + slope * log10_tail


def empirical_curve(far: np.ndarray, n_trials: int, thresholds=THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """(count, rate) of trials with log10_far <= t for each threshold t (trials absent from ``far``
    had no hypothesis: log10_far = 0)."""
    s = np.sort(far)
    count = np.searchsorted(s, thresholds, "right")
    return count, count / max(1, n_trials)


def fit(n_hyp: np.ndarray, log10_tail: np.ndarray, strata: int = STRATA, exponents=EXPONENTS,
        slopes=SLOPES) -> dict:
    """Least-squares fit of (offset, exponent, slope): within each stratum of trials with similar H
    (quantiles of log10 H), log10 of the fraction with log10_far <= t should equal t.

    Calibrating within strata identifies the exponent (a marginal fit cannot tell a larger
    offset from a smaller exponent) and makes the model hold for each pair whatever its H;
    over all trials, including those without any hypothesis, the rate is then lower by the
    fraction of trials that had one."""
    n_hyp = np.asarray(n_hyp, np.float64)
    log10_tail = np.asarray(log10_tail, np.float64)
    lh = np.log10(np.maximum(n_hyp, 1))
    edges = np.quantile(lh, np.linspace(0, 1, strata + 1)[1:-1]) if len(lh) else np.zeros(0)
    stratum = np.searchsorted(edges, lh, "right")
    groups = [np.nonzero(stratum == g)[0] for g in range(strata)]
    groups = [g for g in groups if len(g)]
    best = None
    for slope in slopes:
        for exponent in exponents:
            base = exponent * lh + slope * log10_tail
            sorted_groups = [(np.sort(base[g]), len(g)) for g in groups]
            for offset in OFFSETS:
                errs, used = [], 0
                for sg, n in sorted_groups:
                    count = np.searchsorted(sg, THRESHOLDS - offset, "right")
                    use = count >= MIN_COUNT
                    used += int(use.sum())
                    errs.append((np.log10(count[use] / n) - THRESHOLDS[use]) ** 2)
                if used < 3:
                    continue
                err = float(np.mean(np.concatenate(errs)))
                if best is None or err < best[0]:
                    best = (err, float(offset), float(exponent), float(slope), used)
    if best is None:
        return {"offset": 0.0, "exponent": 1.0, "slope": 1.0, "rms_decades": None, "points_fitted": 0}
    return {"offset": round(best[1], 3), "exponent": round(best[2], 3), "slope": round(best[3], 3),
            "rms_decades": round(math.sqrt(best[0]), 3), "points_fitted": best[4], "strata": len(groups)}


def table(far: np.ndarray, n_trials: int, thresholds=THRESHOLDS) -> list[dict]:
    """Empirical rate beside the model's 10^t per threshold (counts say how far the trials resolve)."""
    count, rate = empirical_curve(far, n_trials, thresholds)
    return [{"log10_threshold": round(float(t), 2), "predicted": 10.0 ** float(t), "empirical": float(r),
             "count": int(c)} for t, c, r in zip(thresholds, count, rate)]
