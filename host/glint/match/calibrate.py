"""The chance model's false-accept probability, and its calibration on impostor trials.

For a probe unrelated to the reference (docs/matching.md, "Chance model"), from first principles:

* **Chance code matches.** A probe quad's code is a point uniform over the canonical code region
  of its circle, volume V = (pi rho^2 / 4)^2 / 4 (C and D uniform in the circle of radius rho / 2
  in code units, one of the four orderings canonical), so it lands in a reference code's eps-box
  with probability q = (2 eps)^4 / V. The expected number of chance code matches of a pair is
  lambda = q x (pairs of reference and probe quads whose backbone lengths agree within the scale
  tolerance), and their number H is Poisson(lambda): most unrelated pairs have none.
* **Seeds scored.** verify scores one seed of each of the largest transform groups, at most
  ``max_hypotheses`` (m = min(H, 6) for unrelated pairs, whose chance matches rarely share a
  transform); their counts are independent (different transforms map the spots elsewhere).
* **The count.** A scored seed's k of n mapped spots coincide; each with probability p_i (the
  fraction of the probe's coating within r_i of one of its spots, glint.match.verify); its tail is
  T = P(K > k) + u P(K = k) of K ~ Binomial(n, mean p_i), u where the coinciding spots' closeness
  puts the count inside its step (:func:`step_position`: uniform under the null, floored at
  ``STEP_FLOOR``), so that P(T <= a) = a at every a. P(K >= k), the usual p-value of a count, is
  conservative by a step; the mid-p value (u = 1/2, this model until this form) is uniform only
  on average over thresholds, and where the count's mean is small (decade-sized steps) it sat
  0.4-0.8 decades below 10^t at every decade on the wild family.

    FAR = sum_h P(m = h) (1 - (1 - T)^h),  m = min(Poisson(lambda), max_hypotheses)

is the probability that an unrelated probe's best scored seed reaches T: exact where the three
steps hold, with no constant fitted. Two constants (``far_offset``, ``far_chance_scale``) remain
for a scanner model whose impostor trials show otherwise (log10_far = offset + log10 FAR with
p scaled); they are 0 and 1 (none) for the model above, and ``fit`` estimates them from
impostor trials (over *all* trials, those without a hypothesis included, the fraction with
log10_far <= t should be 10^t at t = -1 .. -4, where a million trials resolve the rate well);
deeper thresholds are not fitted: agreement there is the model's test.
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


def log10_binom_sf_many(k: np.ndarray, n: np.ndarray, p: np.ndarray, chunk: int = 65536,
                        mid: bool = False, log_u: np.ndarray | None = None) -> np.ndarray:
    """Vectorised log10 P(Binomial(n, p) >= k) (0 where k <= 0, -inf where k > n or p = 0); with
    ``mid`` the mid-p value P(X > k) + P(X = k) / 2 (0 where k <= 0: no evidence); with ``log_u``
    (natural log of a position u in (0, 1] inside the count's step, per entry) the p-value
    P(X > k) + u P(X = k), which is uniform under the null when u is (:func:`step_position`)."""
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
        if log_u is not None:
            t[:, 0] += np.asarray(log_u, np.float64)[idx]
        elif mid:
            t[:, 0] -= math.log(2.0)
        m = t.max(1)
        m = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            out[idx] = np.minimum(0.0, (m + np.log(np.exp(t - m[:, None]).sum(1))) / LN10)
    out[dead & (k > 0)] = -np.inf
    return out


LOG_MID = -math.log(2.0)          # log u of the mid-p value (u = 1/2): trials recorded without a step position
STEP_FLOOR = 0.01                  # the step position's floor: closeness decides within a count's step, not beyond
LOG_STEP_FLOOR = math.log(STEP_FLOOR)


def step_position(near: np.ndarray, closest: np.ndarray) -> np.ndarray:
    """log u, where a count sits inside its step P(K = k), from its closest coinciding spot: each
    coinciding spot's v = P(D <= d) / P(D <= r) (D the distance from an unrelated point to the
    probe's nearest spot, d the one seen, r the spot's radius) is uniform on (0, 1) under the null
    given that it coincided, independently of the other spots and of the count, so of the ``near``
    spots within their radii (per seed) the least v (``closest``) gives u = 1 - (1 - v)^near,
    uniform too: P(K > k) + u P(K = k) is then a p-value with P(p <= a) = a at every a, where
    the count's own mid-p value (u = 1/2) is uniform only on average over a (docs/matching.md).
    A genuine pair's spots sit close (u small). u is floored at ``STEP_FLOOR``: closeness decides
    inside a step, never for more than a fraction of one. 0 (u = 1) where no spot coincided."""
    m = np.asarray(near, np.float64)
    v = np.clip(np.asarray(closest, np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        u = -np.expm1(m * np.log1p(-np.minimum(v, 1.0 - 1e-16)))
    return np.where(m > 0, np.log(np.clip(u, STEP_FLOOR, 1.0)), 0.0)


MAX_SEEDS = 6  # MatchParams.max_hypotheses: seeds verify scores per pair


_SEED_COUNTS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _seed_counts(max_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """(h, log h!) for h = 0 .. max_seeds as float64 arrays, made once per max_seeds (read-only)."""
    got = _SEED_COUNTS.get(max_seeds)
    if got is None:
        h = np.arange(max_seeds + 1, dtype=np.float64)
        lgh = np.array([math.lgamma(v + 1) for v in h])
        h.flags.writeable = lgh.flags.writeable = False
        got = _SEED_COUNTS[max_seeds] = (h, lgh)
    return got


def seeds_log10_far(lam, log10_tail, max_seeds: int = MAX_SEEDS) -> np.ndarray:
    """log10 sum_h P(m = h) (1 - (1 - T)^h), m = min(Poisson(lam), max_seeds), T = 10^log10_tail:
    the probability that one of the seeds an unrelated pair gets scored reaches the tail T."""
    lam = np.maximum(np.atleast_1d(np.asarray(lam, np.float64)), 1e-300)
    lt = np.atleast_1d(np.asarray(log10_tail, np.float64))
    h, lgh = _seed_counts(max_seeds)
    # P(m = h): Poisson for h < max_seeds, the rest of the tail at max_seeds
    logp = h[None, :] * np.log(lam)[:, None] - lam[:, None] - lgh[None, :]
    pm = np.exp(logp)
    pm[:, -1] = np.maximum(0.0, 1.0 - pm[:, :-1].sum(1))
    t = np.power(10.0, np.maximum(lt, -300.0))
    with np.errstate(divide="ignore"):
        hit = -np.expm1(h[None, :] * np.log1p(-np.minimum(t, 1.0 - 1e-16))[:, None])  # 1 - (1 - T)^h
        out = np.log10(np.maximum((pm * hit).sum(1), 1e-300))
        # beyond double precision: 1 - (1 - T)^h = h T, so the sum is E[m] T
        deep = lt < -280.0
        if np.any(deep):
            out[deep] = np.log10(np.maximum((pm[deep] * h[None, :]).sum(1), 1e-300)) + lt[deep]
    return np.where(np.isneginf(lt), -np.inf, np.minimum(0.0, out))


def predicted(lam, k, n, p, offset: float, scale: float, max_seeds: int = MAX_SEEDS, log_u=None) -> np.ndarray:
    """log10_far of trials with a hypothesis under the model (capped at 0): ``lam`` the expected
    chance code matches of each pair, (k, n, p) its best seed's count, spots and mean chance p,
    ``log_u`` its position inside the count's step (:func:`step_position`; None: the mid-p value,
    as trials recorded before it have)."""
    lu = np.full(len(np.atleast_1d(k)), LOG_MID) if log_u is None else np.asarray(log_u, np.float64)
    tail = log10_binom_sf_many(k, n, np.minimum(1.0, scale * np.asarray(p, np.float64)), log_u=lu)
    return np.minimum(0.0, offset + seeds_log10_far(lam, tail, max_seeds))


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


def fit(lam, k, n, p, n_trials: int, scales=SCALES, thresholds=FIT_THRESHOLDS, log_u=None) -> dict:
    """Least-squares fit of (offset, chance_scale): log10 of the fraction of all ``n_trials``
    impostor trials with log10_far <= t should equal t at each fitted threshold. The scale is
    searched coarsely (every fifth grid value), then finely around the best."""
    k, n, p = np.asarray(k), np.asarray(n), np.asarray(p, np.float64)
    scales = np.asarray(scales, np.float64)
    tried: dict[float, tuple] = {}

    def at(scale: float):
        if scale not in tried:
            base = np.sort(predicted(lam, k, n, p, 0.0, scale, log_u=log_u))
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
