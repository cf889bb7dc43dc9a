"""Calibration of the chance model on impostor trials: two constants, fitted and then tested.

verify's raw bound is Bonferroni: ``log10(H) + log10 T(k; n, p)``, H the candidate
hypotheses of the pair and T the binomial tail of the best one (k of n mapped reference
spots within r of a probe spot, each with chance probability p). It is valid but loose,
for two reasons that a constant each captures:

* **offset**: the H hypotheses are far from independent (most share spots and
  transforms), and most unrelated pairs (about 74% on the field simulator) produce no
  hypothesis at all; ``10^offset * H`` is the effective number of independent chances.
* **chance_scale**: p = M pi r^2 / area is a union bound (overlapping disks, the
  one-to-one claim of probe spots and the coating's edge all lower the real coincidence
  rate); the real per-spot rate is ``chance_scale * p``. An error in p costs k times its
  logarithm, so it is what bends the tail: with p too large the empirical tail falls
  ever faster below the predicted one.

    log10_far = offset + log10(H) + log10 P(Binomial(n, chance_scale * p) >= k)

The two are fitted so that, over *all* impostor trials (those without a hypothesis
included: their log10_far is 0), the fraction with ``log10_far <= t`` equals ``10^t`` at
the thresholds ``FIT_THRESHOLDS`` (1e-1 .. 1e-4, where a million trials resolve the rate
well). Deeper thresholds are not fitted: agreement there is the model's test, made on
trials of other items (the lab: even items' probes fit, odd items' validate; a separate
run with another seed checks it again).
"""

from __future__ import annotations

import math

import numpy as np

MIN_COUNT = 5                                   # thresholds with fewer impostors below them are not fitted
FIT_THRESHOLDS = np.arange(-1.0, -4.01, -0.5)   # where the fit is made
THRESHOLDS = np.arange(-1.0, -12.01, -0.5)      # where agreement is reported
OFFSETS = np.arange(-3.0, 1.001, 0.01)
SCALES = np.round(np.arange(0.4, 1.201, 0.02), 2)
AGREE_DECADES = 0.3                             # "agrees": within a factor of 2, or inside the 95% interval
LN10 = math.log(10)

_LGAMMA = np.array([math.lgamma(i + 1) for i in range(4097)])  # log i! for i <= 4096


def log10_binom_sf_many(k: np.ndarray, n: np.ndarray, p: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Vectorised log10 P(Binomial(n, p) >= k) (0 where k <= 0, -inf where k > n or p = 0)."""
    k = np.asarray(k, np.int64)
    n = np.asarray(n, np.int64)
    p = np.clip(np.asarray(p, np.float64), 0.0, 1.0)
    out = np.zeros(len(k))
    live = np.flatnonzero((k > 0) & (p < 1.0))
    dead = (k > n) | (p <= 0.0)
    for s in range(0, len(live), chunk):
        idx = live[s:s + chunk]
        kk, nn, pp = k[idx], n[idx], p[idx]
        width = int((nn - kk).max(initial=0)) + 1
        i = kk[:, None] + np.arange(width)[None, :]
        ok = i <= nn[:, None]
        ic = np.minimum(i, nn[:, None])
        with np.errstate(divide="ignore"):
            t = (_LGAMMA[nn][:, None] - _LGAMMA[ic] - _LGAMMA[nn[:, None] - ic]
                 + ic * np.log(np.maximum(pp, 1e-300))[:, None] + (nn[:, None] - ic) * np.log1p(-pp)[:, None])
        t = np.where(ok, t, -np.inf)
        m = t.max(1)
        m = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            out[idx] = np.minimum(0.0, (m + np.log(np.exp(t - m[:, None]).sum(1))) / LN10)
    out[dead & (k > 0)] = -np.inf
    return out


def predicted(n_hyp, k, n, p, offset: float, scale: float) -> np.ndarray:
    """log10_far of trials with a hypothesis under the model (capped at 0)."""
    tail = log10_binom_sf_many(k, n, np.minimum(1.0, scale * np.asarray(p, np.float64)))
    return np.minimum(0.0, offset + np.log10(np.maximum(np.asarray(n_hyp, np.float64), 1)) + tail)


def empirical_curve(far: np.ndarray, n_trials: int, thresholds=THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """(count, rate) of trials with log10_far <= t for each threshold t (trials absent from ``far``
    had no hypothesis: log10_far = 0)."""
    s = np.sort(far)
    count = np.searchsorted(s, np.asarray(thresholds) + 1e-12, "right")
    return count, count / max(1, n_trials)


def _fit_offset(base: np.ndarray, n_trials: int, thresholds) -> tuple[float, float, int]:
    """Best offset for sorted log10_far-before-offset values: (mse, offset, thresholds used)."""
    cnt = np.searchsorted(base, thresholds[:, None] - OFFSETS[None, :] + 1e-12, "right")  # thresholds x offsets
    use = cnt >= MIN_COUNT
    err = (np.log10(np.maximum(cnt, 1) / n_trials) - thresholds[:, None]) ** 2
    used = use.sum(0)
    mse = np.where(used >= 3, (err * use).sum(0) / np.maximum(used, 1), np.inf)
    j = int(np.argmin(mse))
    return float(mse[j]), float(OFFSETS[j]), int(used[j])


def fit(n_hyp, k, n, p, n_trials: int, scales=SCALES, thresholds=FIT_THRESHOLDS) -> dict:
    """Least-squares fit of (offset, chance_scale): log10 of the fraction of all ``n_trials``
    impostor trials with log10_far <= t should equal t at each fitted threshold. The scale is
    searched coarsely (every fifth grid value), then finely around the best."""
    lh = np.log10(np.maximum(np.asarray(n_hyp, np.float64), 1))
    k, n, p = np.asarray(k), np.asarray(n), np.asarray(p, np.float64)
    scales = np.asarray(scales, np.float64)
    tried: dict[float, tuple] = {}

    def at(scale: float):
        if scale not in tried:
            base = np.sort(lh + log10_binom_sf_many(k, n, np.minimum(1.0, scale * p)))
            tried[scale] = _fit_offset(base, n_trials, thresholds)
        return tried[scale]

    coarse = scales[::5] if len(scales) > 10 else scales
    best = min(coarse, key=lambda s: at(float(s))[0])
    i = int(np.argmin(np.abs(scales - best)))
    for s in scales[max(0, i - 4): i + 5]:
        at(float(s))
    scale = min(tried, key=lambda s: tried[s][0])
    mse, offset, used = tried[scale]
    if not math.isfinite(mse):
        return {"offset": 0.0, "chance_scale": 1.0, "rms_decades": None, "points_fitted": 0}
    return {"offset": round(offset, 3), "chance_scale": round(scale, 3), "rms_decades": round(math.sqrt(mse), 3),
            "points_fitted": used}


def _poisson_cdf(c: int, mu: float) -> float:
    """P(Poisson(mu) <= c)."""
    if mu <= 0.0:
        return 1.0
    term = math.exp(-mu)
    total = term
    for i in range(1, c + 1):
        term *= mu / i
        total += term
    return min(1.0, total)


def _solve(f, lo: float, hi: float) -> float:
    """Root of an increasing f on [lo, hi] by bisection."""
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def poisson_interval(count: int, conf: float = 0.95) -> tuple[float, float]:
    """Two-sided interval for a Poisson mean given ``count`` events: Garwood's exact interval up
    to 200 events, Wilson-Hilferty's chi-square quantiles (within 0.1% of it) beyond."""
    a = (1.0 - conf) / 2
    if count <= 200:
        top = count + 20.0 * math.sqrt(count + 1) + 10.0
        lo = 0.0 if count == 0 else _solve(lambda m: (1.0 - _poisson_cdf(count - 1, m)) - a, 0.0, top)
        hi = _solve(lambda m: a - _poisson_cdf(count, m), 0.0, top)
        return lo, hi
    z = _z(conf)

    def chi2(q_z: float, dof: float) -> float:
        h = 2.0 / (9.0 * dof)
        return dof * max(0.0, 1.0 - h + q_z * math.sqrt(h)) ** 3

    return chi2(-z, 2 * count) / 2, chi2(z, 2 * count + 2) / 2


def _z(conf: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + conf / 2)


def table(far: np.ndarray, n_trials: int, thresholds=THRESHOLDS, pairs: np.ndarray | None = None) -> list[dict]:
    """Empirical rate beside the model's 10^t per threshold, with the count's 95% interval, the
    deviation in decades and whether they agree (the 95% interval reaches 10^t, or the rate is
    within a factor of 2 of it). A threshold with no event is resolved only while 10^t * trials
    exceeds about 3 (the interval's top): beyond that the trials cannot tell. ``pairs``: an id per
    trial in ``far`` (the unordered pair of coatings): each row then says how many distinct pairs its
    events come from (several probes of one item meeting the same unrelated reference are not
    independent events; the interval assumes they are)."""
    count, rate = empirical_curve(far, n_trials, thresholds)
    rows = []
    for t, c, r in zip(thresholds, count, rate):
        pred = 10.0 ** float(t)
        lo, hi = poisson_interval(int(c))
        lo, hi = lo / n_trials, hi / n_trials
        dev = None if c == 0 else round(math.log10(r) - float(t), 3)
        agree = bool(lo <= pred <= hi or (dev is not None and abs(dev) <= AGREE_DECADES))
        row = {"log10_threshold": round(float(t), 2), "predicted": pred, "empirical": float(r), "count": int(c),
               "ci95": [lo, hi], "deviation_decades": dev, "agrees": agree, "resolved": bool(pred * n_trials >= 3.0)}
        if pairs is not None:
            row["pairs"] = int(len(np.unique(np.asarray(pairs)[np.asarray(far) <= t + 1e-12])))
        rows.append(row)
    return rows


def agreement_depth(rows: list[dict]) -> float | None:
    """The deepest threshold down to which every resolved row agrees (None if the first does not)."""
    depth = None
    for r in rows:
        if not r["resolved"]:
            break
        if not r["agrees"]:
            break
        depth = r["log10_threshold"]
    return depth
