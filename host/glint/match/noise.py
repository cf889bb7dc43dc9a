"""Localisation noise: how precisely each spot of a capture is placed, from the capture itself.

A spot found at peak signal-to-noise SNR with a point spread of width s (px) is located to
about ``c * s / SNR`` px on each axis (the Thompson / Cramer-Rao scaling of a peak fit; ``c``
is the detector's efficiency, calibrated), and never better than a floor (1/32 px records,
pixel-phase bias of the 3 x 3 interpolation, JPEG):

    sigma_i = sqrt((c * s / SNR_i)^2 + floor^2)

Everything comes from the scan descriptor (v1, unchanged): SNR_i = Q_SNR / 16 * flux_i /
median flux (flux u8 is the 3 x 3 sum, brightest = 255; Q_SNR is the median kept spot's peak
over the background noise), and s = sqrt(1477 / Q_FOCUS - 1/12) (the detector's log-curvature
focus measure), clipped to the range a spot can have. Where a capture carries no quality map the
nominal SNR and width of ``NoiseModel`` stand in.

A reference fused from several captures has its spots' noise divided by sqrt(support), and its
measured repeatability (the residuals between its enrollment captures, against what the model
predicts for them) gives the item's own factor ``noise_scale``: the optics of that scanner
and coating that the descriptor's two numbers do not capture (a defocus disc, JPEG, blends).

The clone gate (:func:`residual_test`) asks whether a pair's refit residuals are consistent with
that precision: each matched pair's squared residual over its expected variance
(sigma_ref^2 + sigma_probe^2 per axis) is chi-square with 2 degrees of freedom when the model
holds; the test statistic is the mean of the smallest 90 % of them (a few wrong or blended pairs
cannot decide it), against its distribution under the model, allowing a margin ``margin`` on
sigma for the model's own error. Its p-value is the probability that a genuine pair shows residuals this
large; a clone, whose particles are each displaced by sigma_c, adds sigma_c^2 to every pair's
variance.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

Q_SNR, Q_FOCUS, Q_NOISE = 1, 2, 6  # glintcore.descriptor quality keys
FOCUS_K = 1477.0                   # Q_FOCUS ~ FOCUS_K / (s^2 + 1/12) (firmware detect: log2 curvature; docs/simulator.md)
S_RANGE = (0.6, 3.0)               # px: what a detected spot's width can be
SNR_FLOOR = 3.0                    # a kept spot is at least this significant (detector's acceptance)
TRIM_KEEP = 0.9                    # the clone gate's statistic keeps the smallest 90 % of the pairs' z^2


@dataclass(frozen=True)
class NoiseModel:
    """The calibrated factors of the localisation noise model (per scanner model; docs/matching.md)."""

    c: float = 2.2           # sigma = c * s / SNR (fitted on simulator truth over bench/field/harsh/wild)
    floor: float = 0.03      # px per axis
    nominal_snr: float = 20.0  # for spot sets without a quality map (synthetic sets, old scans)
    nominal_s: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "NoiseModel":
        if not d:
            return cls()
        known = set(cls.__dataclass_fields__)
        return cls(**{k: float(v) for k, v in d.items() if k in known})


def capture_quality(quality: dict | None, model: NoiseModel) -> tuple[float, float]:
    """(median spot SNR, spot width s px) of a capture from its descriptor quality map."""
    q = quality or {}
    snr = q.get(Q_SNR, q.get(str(Q_SNR)))
    foc = q.get(Q_FOCUS, q.get(str(Q_FOCUS)))
    snr = model.nominal_snr if not snr else max(SNR_FLOOR, float(snr) / 16.0)
    s = model.nominal_s if not foc else math.sqrt(max(0.0, FOCUS_K / float(foc) - 1.0 / 12.0))
    return snr, min(S_RANGE[1], max(S_RANGE[0], s))


def spot_sigma(flux: np.ndarray, quality: dict | None, model: NoiseModel) -> np.ndarray:
    """Per-spot localisation sigma (px per axis) of one capture's spots."""
    flux = np.asarray(flux, np.float64)
    snr_med, s = capture_quality(quality, model)
    if len(flux) == 0:
        return np.zeros(0)
    fmed = median(flux)
    rel = flux / fmed if fmed > 0 else np.ones(len(flux))
    snr = np.maximum(SNR_FLOOR, snr_med * rel)
    return np.sqrt((model.c * s / snr) ** 2 + model.floor**2)


def median(v: np.ndarray) -> float:
    """np.median of a 1-D array without NaN (the same value: the middle one, or the mean of the middle
    two) from one sort, at a fraction of its overhead."""
    s = v.copy()  # np.sort(v), without its wrapper
    s.sort()
    n = len(s)
    return 0.5 * float(s[(n - 1) // 2] + s[n // 2])


@functools.lru_cache(maxsize=4096)
def _trimmed_moments(k: int, m: int, theta: float) -> tuple[float, float]:
    """Mean and variance of the mean of the smallest ``m`` of ``k`` exponentials of mean ``theta``
    (Renyi: the i-th smallest is theta * sum_{j <= i} E_j / (k - j + 1), E_j independent Exp(1))."""
    j = np.arange(1, m + 1, dtype=np.float64)
    w = (m - j + 1) / (k - j + 1)
    return theta * float(w.sum()) / m, theta * theta * float((w * w).sum()) / (m * m)


def kept_pairs(k: int) -> int:
    """How many of ``k`` matched pairs the statistic keeps (the smallest TRIM_KEEP of their z^2)."""
    return max(1, int(math.ceil(TRIM_KEEP * k)))


def chi2_pvalue(mean_z2: npt.ArrayLike, matched: npt.ArrayLike, margin: float) -> np.ndarray:
    """P(trimmed mean z^2 >= ``mean_z2`` | the model holds with sigma up to ``margin`` x the expected)
    for ``matched`` pairs: under the model each z^2 is exponential with mean 2 margin^2; the mean of
    the smallest kept_pairs(K) is a weighted sum of independent exponentials, approximated by a
    gamma with its mean and variance, whose tail Wilson and Hilferty's cube-root normal gives
    (within 10 % of a Monte-Carlo tail at 1e-2 and 1e-3 for 10-60 pairs)."""
    t = np.atleast_1d(np.asarray(mean_z2, np.float64))
    ks = np.atleast_1d(np.asarray(matched, np.int64))
    out = np.full(len(t), np.nan)
    for i, (ti, k) in enumerate(zip(t.tolist(), ks.tolist())):  # Python floats and ints: the same values
        if math.isfinite(ti) and k > 0:
            out[i] = _chi2_tail(ti, k, margin)
    return out


def _chi2_tail(ti: float, k: int, margin: float) -> float:
    """:func:`chi2_pvalue` of one finite statistic ``ti`` of ``k`` > 0 pairs (a float, the same bits)."""
    mu, var = _trimmed_moments(k, kept_pairs(k), 2.0 * margin * margin)
    shape = mu * mu / var
    z = (math.pow(max(ti / mu, 0.0), 1.0 / 3.0) - (1.0 - 1.0 / (9.0 * shape))) / math.sqrt(1.0 / (9.0 * shape))
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def residual_test(err: np.ndarray, var: np.ndarray, margin: float, dof_fitted: int = 8) -> dict:
    """The clone gate's statistics for matched pairs with residual lengths ``err`` (px) and expected
    per-axis variances ``var`` (sigma_ref^2 + sigma_probe^2, px^2), all in one frame.

    z^2 = err^2 / var is chi-square(2) under the model; the fit absorbed ``dof_fitted`` of the 2K
    coordinates' noise (z^2 is scaled by 2K / (2K - dof_fitted)). The statistic is the mean of the
    smallest TRIM_KEEP of them (a few wrong or blended pairs cannot decide it; a clone's
    displacement raises them all); ``ratio`` = its square root over the model's expectation, the
    observed over the expected noise; ``p_value`` its tail under the model."""
    var = np.maximum(np.asarray(var, np.float64), 1e-8)
    k = len(var)
    if k == 0:
        return {"expected": float("nan"), "ratio": float("nan"), "mean_z2": float("nan"), "p_value": 1.0}
    z2 = np.asarray(err, np.float64) ** 2 / var * (2.0 * k / max(1.0, 2.0 * k - dof_fitted))
    m = kept_pairs(k)
    z2.sort()  # in place (z2 is this call's own array): np.sort's values
    t = float(np.add.reduce(z2[:m])) / m  # .mean(): the same sum, divided by the count
    mu1, _ = _trimmed_moments(k, m, 2.0)
    p_value = _chi2_tail(t, k, margin) if math.isfinite(t) else math.nan  # chi2_pvalue(t, k, margin)[0]
    return {"expected": float(math.sqrt(median(var))), "ratio": math.sqrt(t / mu1), "mean_z2": t,
            "p_value": float(p_value)}


@functools.lru_cache(maxsize=16)
def clone_power_pairs(margin: float, alpha: float, ratio: float = 2.0, target: float = 0.01) -> int:
    """The fewest matched pairs with which the clone gate (margin, alpha) passes a replica whose
    particles are displaced by ``ratio`` x the genuine noise with probability at most ``target``,
    where the model holds (the replica's z^2 are (1 + ratio^2) x a genuine pair's): with fewer, a
    replica at that displacement cannot be told from the item (25 at the defaults: 15 pairs pass
    7 % of the replicas at 2 x, 40 none)."""
    for k in range(8, 400):
        lo, hi = 0.0, 200.0
        for _ in range(60):  # the gate's threshold on the statistic: p-value alpha under the margin
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if chi2_pvalue(mid, k, margin)[0] >= alpha else (lo, mid)
        passed = 1.0 - float(chi2_pvalue(hi / (1.0 + ratio * ratio), k, 1.0)[0])
        if passed <= target:
            return k
    return 400
