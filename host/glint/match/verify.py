"""1:1 verification: quad-code hypotheses, a chance-coincidence decision, a precise refit.

Steps (star-tracker / astrometry.net style):

1. Quad codes of the reference and the probe that agree give H candidate similarity
   transforms (each from the four corresponding spots of one quad).
2. Candidates are grouped by transform (rotation, shift); the largest groups' seeds are
   scored: every *other* reference spot is mapped into the probe, and k of the n that
   land inside the probe frame fall within ``seed_radius`` of a distinct probe spot.
3. Chance model (glint.match.calibrate, from first principles): for a probe unrelated to the
   reference, each mapped spot that lands inside the probe's spot hull (the coating; outside it
   the probe has no spots to coincide with) falls within r of one of the probe's M other spots
   with probability p = 1 - exp(-M pi r^2 / area) (``area`` the hull grown by the margin a mapped
   spot may lie outside it: the coating's density, overlapping disks counted once),
   independently of the seed (the seed's own spots are excluded). T = P(K > k) + u P(K = k) of
   K ~ Binomial(n, p), u where the closest coinciding spot puts the count inside its step
   (calibrate.step_position: uniform under the null), is the best scored seed's; the pair has Poisson(lambda) chance code
   matches (lambda from the code region's volume: :func:`chance_codes`), of which at most
   ``max_hypotheses`` seeds are scored, so log10_far = log10 sum_h P(m = h)(1 - (1 - T)^h):
   the probability that an unrelated probe scores as well (docs/matching.md has the evaluation).
4. The matched pairs are refitted with a homography (mild perspective), matched again within
   a radius that follows the pair's noise, and the residuals give a robust sigma in reference
   pixels. A clone of the coating re-creates every particle only to within some error; the
   residual gate (glint.match.noise.residual_test: the residuals against each spot's expected
   localisation noise, with a stated false-reject probability ``residual_alpha``) rejects it
   even when it is far beyond chance.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from glint.match.calibrate import LOG_MID, log10_binom_sf_many, seeds_log10_far, step_position
from glint.match.codes import CodeTable, Quads, code_table, match_codes, probe_circle, probe_quads
from glint.match.params import MatchParams
from glint.match.reference import Reference
from glint.match.spots import SpotSet

log = logging.getLogger(__name__)

try:  # np.linalg.solve's own LAPACK gufunc and error state, without its argument checks (solve below)
    from numpy._core.umath import _extobj_contextvar, _make_extobj
    from numpy.linalg import _umath_linalg
except ImportError:  # another numpy layout: np.linalg.solve itself
    _umath_linalg = None  # type: ignore[assignment]


def _singular(err, flag):
    raise np.linalg.LinAlgError("Singular matrix")


_SOLVE_STATE = None if _umath_linalg is None else _make_extobj(
    call=_singular, invalid="call", over="ignore", divide="ignore", under="ignore")


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.linalg.solve(a, b) for float64 arrays: the same gufunc under the same error state (so the
    same bits, and LinAlgError when singular) at a third of its cost on the small systems here."""
    if _SOLVE_STATE is None or a.dtype != np.float64 or b.dtype != np.float64:
        return np.linalg.solve(a, b)
    token = _extobj_contextvar.set(_SOLVE_STATE)
    try:
        return (_umath_linalg.solve1 if b.ndim == 1 else _umath_linalg.solve)(a, b, signature="dd->d")
    finally:
        _extobj_contextvar.reset(token)


ANGLE_BIN = 2 * math.pi / 72   # transform grouping: 5 degrees
SHIFT_BIN = 12.0               # px
REFINE_ROUNDS = 1
MAX_EXTRA_ROUNDS = 3  # further refits while the pairs keep growing (a poor seed)
RANSAC_PX = 1.0  # px: pairs this close to the first fit are always kept by the trimmed refit
TRIM_FACTOR = 3.0  # ... and pairs within this many times the median residual
RAYLEIGH_MEDIAN = math.sqrt(2 * math.log(2))  # median of |2-D Gaussian error| / sigma
LN10 = math.log(10)
HULL_MARGIN = 2.0  # px: a mapped spot this close outside the probe's spot hull still counts
AFFINE_MIN_ASPECT = 0.15  # quads thinner than this (width / length) seed with a similarity


@dataclass
class Probe:
    """A spot set prepared for matching (its quads computed once, reused against many references)."""

    spots: SpotSet
    quads: Quads
    table: CodeTable
    area: float  # px^2 over which the probe's spots are spread (their convex hull)
    edges: np.ndarray | None = None  # (K, 3) inward edge lines a x + b y + c >= 0 of that hull (unit normals)
    sigma: np.ndarray | None = None  # (N,) per-spot localisation sigma, px per axis (glint.match.noise)
    params_key: MatchParams | None = None  # the parameters its quads were coded with
    lengths: np.ndarray | None = None  # its quads' backbone lengths, sorted (chance_codes; made when first needed)
    length_counts: np.ndarray | None = None  # ... or its pairs' lengths, with the quads up to each (Quads.length_counts)
    _z: np.ndarray | None = field(default=None, repr=False)

    @property
    def z(self) -> np.ndarray:
        """The spots as complex numbers x + 1j y (N,), made once."""
        if self._z is None:
            xy = self.spots.xy
            self._z = xy[:, 0] + 1j * xy[:, 1]
        return self._z


def spread_area(spots: SpotSet, hull: np.ndarray | None = None) -> float:
    """Area over which a mapped reference spot counts: the spots' convex hull grown by HULL_MARGIN
    (Steiner: area + perimeter x margin + pi margin^2), at least a hundredth of the frame. The
    local spot density is len(spots) / hull area, higher than over the whole frame when the
    coating is a small dot; a mapped spot in the margin has only the spots near the edge to
    coincide with, so over the grown area the mean coincidence probability is M pi r^2 / area."""
    if len(spots) < 3:
        return float(spots.width * spots.height)
    if hull is None:
        hull = cv2.convexHull(spots.xy.astype(np.float32))
    grown = float(cv2.contourArea(hull)) + float(cv2.arcLength(hull, True)) * HULL_MARGIN + math.pi * HULL_MARGIN**2
    return max(0.01 * spots.width * spots.height, grown)


def hull_edges(hull: np.ndarray) -> np.ndarray | None:
    """Inward unit-normal edge lines (K, 3) of a convex hull (cv2.convexHull output): a point is
    inside when a x + b y + c >= 0 for every row (None for a degenerate hull)."""
    h = hull.reshape(-1, 2).astype(np.float64)
    if len(h) < 3:
        return None
    nxt = np.concatenate([h[1:], h[:1]])
    d = nxt - h
    area2 = float(np.sum(h[:, 0] * nxt[:, 1] - nxt[:, 0] * h[:, 1]))
    sign = 1.0 if area2 > 0 else -1.0
    nrm = np.empty_like(d)  # points into the hull
    nrm[:, 0] = -sign * d[:, 1]
    nrm[:, 1] = sign * d[:, 0]
    length = np.sqrt((nrm * nrm).sum(1))
    ok = length > 1e-9
    nrm, h = nrm[ok] / length[ok, None], h[ok]
    out = np.empty((len(nrm), 3))
    out[:, :2] = nrm
    out[:, 2] = -(nrm * h).sum(1)
    return out


def prepare(spots: SpotSet, params: MatchParams) -> Probe:
    """Compute a probe's quads, code table and spot hull once, for any number of verifications."""
    q = probe_quads(spots.xy, params)
    sigma = spots.spot_sigma(params.noise)
    if len(spots) < 3:
        return Probe(spots, q, code_table(q, params), spread_area(spots), None, sigma, params)
    hull = cv2.convexHull(spots.xy.astype(np.float32))
    return Probe(spots, q, code_table(q, params), spread_area(spots, hull), hull_edges(hull), sigma, params)


def pair_noise(ref: Reference, probe: Probe) -> np.ndarray:
    """(N,) expected localisation noise (px per axis) of each reference spot against this probe:
    sqrt(sigma_ref^2 + median sigma_probe^2), times the item's measured repeatability factor."""
    rs = ref.spot_sigma()
    ps = probe.sigma
    pm = median(ps) if ps is not None and len(ps) else 0.0
    return ref.noise_scale * np.sqrt(rs * rs + pm * pm)


def seed_noise(ref: Reference, probe: Probe) -> float:
    """The pair's typical noise (median over the reference's spots) for the seed radii: one radius
    law per pair, so faint spots do not each widen their own disk (the chance model's calibration
    holds for radii that vary only with the distance from the seed)."""
    n = pair_noise(ref, probe)
    return median(n) if len(n) else 0.0


def seed_radii(params: MatchParams, dist: np.ndarray, noise: float | None) -> np.ndarray:
    """Radius within which a seed transform predicts a spot at ``dist`` px from its quad: the
    constant part (seed error and unmodelled perspective at in-focus noise), or where the pair's
    noise is larger, seed_noise_k x that noise, growing with the lever arm (1 + 2 d / band_lo)."""
    r = params.seed_radius + params.seed_slope * dist
    if noise is None:
        return r
    return np.maximum(r, params.seed_noise_k * noise * (1.0 + 2.0 * dist / params.band_lo))


@dataclass
class Result:
    """Outcome of 1:1 verify.

    ``match``: the decision; ``log10_far``: log10 of the false-accept probability bound (0 when
    nothing matched); ``matched``: reference spots matched after the refit; ``transform``: 3x3
    homography reference px -> probe px (None without a hypothesis); ``residual``: robust sigma of
    the matched spots' residuals in reference px; ``hypotheses``: candidates H tried.
    """

    match: bool
    log10_far: float
    matched: int
    transform: np.ndarray | None = None
    residual: float | None = None
    hypotheses: int = 0
    seed_matched: int = 0
    reason: str = ""
    pairs: np.ndarray | None = field(default=None, repr=False)
    log10_tail: float = 0.0  # log10 of the best seed's count p-value (Score.log10_tail), before the seeds
    expected_noise: float | None = None  # px (reference frame): the pairs' expected residual sigma
    residual_ratio: float | None = None  # observed over expected (robust: from the median)
    residual_p: float | None = None  # P(residuals this large | genuine): the clone gate's p-value
    residual_z2: float | None = None  # the gate's statistic: mean capped normalised squared residual

    def to_dict(self) -> dict:
        def rnd(v, n):
            return None if v is None else round(float(v), n)

        d = {"match": bool(self.match), "log10_far": round(float(self.log10_far), 3), "matched": int(self.matched),
             "residual": rnd(self.residual, 4), "expected_noise": rnd(self.expected_noise, 4),
             "residual_ratio": rnd(self.residual_ratio, 3),
             "residual_p_value": None if self.residual_p is None else float(f"{self.residual_p:.3g}"),
             "hypotheses": int(self.hypotheses), "reason": self.reason}
        if self.transform is not None:
            d["transform"] = [[round(float(v), 8) for v in row] for row in self.transform]
            d["pose"] = pose_summary(self.transform)
        else:
            d["transform"] = None
        return d


def pose_summary(h: np.ndarray) -> dict:
    """Rotation (deg), scale and shift of a homography's linear part at the origin."""
    a = h[:2, :2] / h[2, 2]
    scale = math.sqrt(abs(np.linalg.det(a)))
    rot = math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))
    return {"rotation_deg": round(rot, 3), "scale": round(scale, 5),
            "shift_px": [round(float(h[0, 2] / h[2, 2]), 3), round(float(h[1, 2] / h[2, 2]), 3)]}


def log10_binom_sf(k: int, n: int, p: float) -> float:
    """log10 P(X >= k) for X ~ Binomial(n, p), accurate far into the tail (n <= 4096)."""
    return float(log10_binom_sf_many(np.array([k]), np.array([n]), np.array([p]))[0])


def chance_p(n_probe: int, radius: float, width: int, height: int) -> float:
    """Probability that a point uniform in the probe frame lies within ``radius`` of one of ``n_probe`` spots."""
    return min(1.0, n_probe * math.pi * radius * radius / float(width * height))


def calibrated_far(lam: float, log10_tail: float, p: MatchParams) -> float:
    """log10 false-accept probability of a pair with ``lam`` expected chance code matches whose best
    scored seed's tail is ``log10_tail``: see glint.match.calibrate and docs/matching.md."""
    if lam <= 0:
        return 0.0
    if log10_tail == -math.inf:
        return -math.inf
    return min(0.0, p.far_offset + float(seeds_log10_far(lam, log10_tail, p.max_hypotheses)[0]))


def chance_codes(ref: Reference, probe: Probe) -> float:
    """Expected number of chance code matches (lambda) between ``ref`` and an unrelated ``probe``:
    a probe quad's code is uniform over its canonical code region, volume (pi rho^2 / 4)^2 / 4
    (C and D uniform in the circle of radius rho / 2, one ordering of four canonical), so it falls
    in a reference code's eps-box with probability (2 eps)^4 / volume; summed over the pairs of
    quads whose backbone lengths agree within the scale tolerance (the other test of a match)."""
    p = ref.params
    rl = ref.quads.length
    if probe.lengths is None:  # the quads its code table looks up (labscale's coder's table names a superset's)
        tq = probe.table.quads
        if len(probe.table.order) == len(tq):  # all of them (build_quads' table): counted per backbone pair
            probe.lengths, probe.length_counts = tq.length_counts()
        else:
            probe.lengths = np.sort(tq.length[probe.table.order])
    pl, cum = probe.lengths, probe.length_counts
    if len(rl) == 0 or len(pl) == 0:
        return 0.0
    hi, lo = np.searchsorted(pl, rl * p.scale_tol, "left"), np.searchsorted(pl, rl / p.scale_tol, "right")
    # quads with a length in (rl / tol, rl * tol): positions in the sorted lengths, or their run-length counts
    pairs = int((hi - lo).sum()) if cum is None else int((cum.take(hi) - cum.take(lo)).sum())
    rho = probe_circle(p)
    volume = (math.pi * rho * rho / 4.0) ** 2 / 4.0
    return pairs * (2.0 * p.code_eps) ** 4 / volume


def ref_similarity(ref: Reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`similarity_batch`'s reference side for each of ``ref``'s verify quads (Q, 4 spots):
    centroid (Q, 1), centred spots (Q, 4) and their scatter (Q,), made once per reference (a row
    gathered from these is the row similarity_batch computes from that quad's spots: the same bits)."""
    q = ref.quads
    got = ref._similarity
    if got is None or got[0] is not q:
        add = np.add.reduce
        zr = ref.z.take(q.idx)
        cr = add(zr, 1, keepdims=True) / zr.shape[1]
        dr = zr - cr
        got = ref._similarity = (q, cr, dr, np.maximum(add(np.abs(dr) ** 2, 1), 1e-12))
    return got[1], got[2], got[3]


def similarity_rows(cr: np.ndarray, dr: np.ndarray, den: np.ndarray, zp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`similarity_batch` with the reference side given (:func:`ref_similarity`'s rows)."""
    add = np.add.reduce
    cp = add(zp, 1, keepdims=True) / zp.shape[1]
    dp = zp - cp
    a = add(dp * dr.conj(), 1) / den
    return a, cp[:, 0] - a * cr[:, 0]


def similarity_batch(zr: np.ndarray, zp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity w = a z + b per row of corresponding complex points (H, K)."""
    add = np.add.reduce  # ndarray.sum without its Python wrapper
    cr, cp = add(zr, 1, keepdims=True) / zr.shape[1], add(zp, 1, keepdims=True) / zp.shape[1]
    dr, dp = zr - cr, zp - cp
    a = add(dp * dr.conj(), 1) / np.maximum(add(np.abs(dr) ** 2, 1), 1e-12)
    return a, cp[:, 0] - a * cr[:, 0]


def candidate_order(a: np.ndarray, b: np.ndarray, limit: int) -> np.ndarray:
    """Indices of one candidate per transform group, largest groups first (at most ``limit``)."""
    # np.round is np.rint at 0 decimals, np.angle arctan2(imag, real): the same values, without wrappers
    ka = np.rint(np.arctan2(a.imag, a.real) / ANGLE_BIN).astype(np.int64) % 72
    kx = np.rint(b.real / SHIFT_BIN).astype(np.int64)
    ky = np.rint(b.imag / SHIFT_BIN).astype(np.int64)
    key = (ka * 4096 + (kx + 2048)) * 4096 + (ky + 2048)
    # np.unique(key, return_index=True, return_counts=True), at half its cost: groups in key order,
    # each represented by its first candidate.
    order = key.argsort(kind="stable")
    sk = key.take(order)
    new = np.empty(len(sk), bool)
    new[0] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    starts = new.nonzero()[0]
    ends = np.empty(len(starts), np.int64)
    ends[:-1] = starts[1:]
    ends[-1] = len(sk)
    best = (starts - ends).argsort(kind="stable")[:limit]  # -counts
    return order.take(starts.take(best))


def affine_batch(src: np.ndarray, dst: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least-squares affine maps (H, 3, 2) from corresponding quads (H, 4, 2); where the quad is
    nearly collinear (the affine is ill-determined) the similarity (a, b) is used instead."""
    x = np.concatenate([src, np.ones(src.shape[:2] + (1,))], axis=2)  # (H, 4, 3)
    xtx = x.transpose(0, 2, 1) @ x
    xty = x.transpose(0, 2, 1) @ dst
    sim = np.empty((len(a), 3, 2))  # [x y 1] @ sim
    sim[:, 0, 0], sim[:, 0, 1] = a.real, a.imag
    sim[:, 1, 0], sim[:, 1, 1] = -a.imag, a.real
    sim[:, 2, 0], sim[:, 2, 1] = b.real, b.imag
    dev = src - np.add.reduce(src, 1, keepdims=True) / src.shape[1]
    spread = np.add.reduce(dev * dev, (1, 2))
    # det of the centred 2 x 2 scatter (xtx's top-left block less the mean's outer product)
    sx, sy = xtx[:, 2, 0], xtx[:, 2, 1]
    det = ((xtx[:, 0, 0] - sx * sx / 4.0) * (xtx[:, 1, 1] - sy * sy / 4.0)
           - (xtx[:, 0, 1] - sx * sy / 4.0) * (xtx[:, 1, 0] - sy * sx / 4.0))
    good = det > (AFFINE_MIN_ASPECT * spread / 2) ** 2
    if good.any():
        sim[good] = solve(xtx[good], xty[good])
    return sim


def sq_dist(a: np.ndarray, b: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    """Squared distances (N, M) between points a (N, 2) and b (M, 2) as one matrix product,
    |a|^2 - 2 a.b + |b|^2 (elementwise differences cost several passes over the N x M array;
    the rounding, ~1e-10 px^2 at these coordinates, is far below any radius compared with).
    ``right``: :func:`sq_right` of b, when already made (b's side of the product)."""
    left = np.empty((len(a), 4))
    left[:, :2] = a
    left[:, 2] = np.add.reduce(a * a, 1)  # (a * a).sum(1) without the method's wrapper
    left[:, 3] = 1.0
    return left @ (sq_right(b) if right is None else right)


def sq_right(b: np.ndarray) -> np.ndarray:
    """The (4, M) right-hand factor of :func:`sq_dist` for points b (M, 2)."""
    right = np.empty((4, len(b)))
    right[:2] = -2.0 * b.T
    right[2] = 1.0
    right[3] = np.add.reduce(b * b, 1)
    return right


def score_seeds(ref_xy: np.ndarray, probe_xy: np.ndarray, maps: np.ndarray, ref_seed: np.ndarray,
                probe_seed: np.ndarray, params: MatchParams, width: int, height: int, area: float,
                edges: np.ndarray | None = None, noise: float | None = None, chance_scale: float = 1.0,
                pairs_out: dict | None = None, ref1: np.ndarray | None = None):
    """For each seed map (H, 3, 2): (n inside the probe frame, k matched, mean chance p) over non-seed
    spots, one-to-one. A spot far from its seed quad is predicted less well (the seed's small errors
    and the unmodelled perspective grow with distance), so its radius grows with that distance.

    In rings where the pair's noise is given (``noise``): the spots within ``params.band_lo`` of
    the seed quad are scored with the seed's map; each further ring (to band_hi, 2 band_hi, beyond)
    is predicted by an affine map fitted to the seed and the pairs of the rings before it, where
    they are at least ``REFINED_MIN_PAIRS``, within radii that follow that fit's error
    (:func:`refined_radii`, never wider than the seed's). A ring's spots are independent of the
    earlier rings' under the null (unrelated points), their radii fixed by the earlier rings alone,
    and the probe spots the earlier rings claimed are not available to them, so the count stays a
    sum of Bernoulli trials with known p_i. A refined radius is small, so
    the union bound is accurate there: its p_i is raw (divided by ``chance_scale``, which the caller
    applies to the mean). Where the pair's noise is small the seed's constant radius is the tighter
    one everywhere, and the count is the one-stage count."""
    nh, nr, npr = len(maps), len(ref_xy), len(probe_xy)
    x = np.concatenate([ref_xy, np.ones((nr, 1))], axis=1) if ref1 is None else ref1
    w = affine_apply(ref_xy, maps)  # (h, N, 2)
    rows = np.arange(nh)[:, None]
    nonseed = np.ones(w.shape[:2], bool)
    nonseed[rows, ref_seed] = False
    centre = np.add.reduce(ref_xy.take(ref_seed, 0), 1) / ref_seed.shape[1]  # (h, 2): .mean(1), as it computes it
    cx = ref_xy[None, :, 0] - centre[:, None, 0]
    cy = ref_xy[None, :, 1] - centre[:, None, 1]
    dist = np.sqrt(cx * cx + cy * cy)
    radius = seed_radii(params, dist, noise)  # (h, N)
    use = _inside(w, width, height, edges) & nonseed
    right = sq_right(probe_xy)
    d2 = sq_dist(w.reshape(-1, 2), probe_xy, right).reshape(nh, nr, npr)
    d2[rows, :, probe_seed] = np.inf  # a probe seed spot is already used by the seed
    j = d2.argmin(2)
    d2min = d2.reshape(-1, npr)[np.arange(nh * nr), j.ravel()].reshape(nh, nr)  # d2.min(2), read at the argmin
    near = (d2min <= radius * radius) & use
    m_eff = max(1, npr - 4)
    p_i = -np.expm1(-m_eff * np.pi * radius**2 / area)
    if noise is not None:
        # A refined radius is never below the seed law's constant part: where the seed's radius is
        # within REFINED_GAIN of it on every spot (in-focus pairs), the one-stage count stands and
        # nothing is fitted.
        const = params.seed_radius + params.seed_slope * dist
        if (nonseed & (radius > REFINED_GAIN * const)).any():
            bounds = ring_bounds(params.band_lo, float(dist.max()))
            done = nonseed & (dist <= bounds[0])  # ring 0: the seed's map and radii
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                ring = nonseed & (dist > lo) & (dist <= hi)
                # Only the ring's spots change: everything below works on them alone ((R,) not (h, N)).
                rh, rn = np.nonzero(ring)
                # A refined radius is at least the constant law (refined_radii), so only spots whose seed
                # radius exceeds it can get a tighter one: without any, the ring's count stands unfitted.
                if len(rh) == 0 or not np.any(radius[rh, rn] > const[rh, rn]):
                    done |= ring
                    continue
                refined = refined_maps(x, probe_xy, maps, ref_seed, probe_seed, near & done, j)
                if refined is None:
                    done |= ring  # the seed's count stands for this ring
                    continue
                fit_maps, n_fit, fit_centre, fit_spread = refined
                fx = ref_xy[rn, 0] - fit_centre[rh, 0]
                fy = ref_xy[rn, 1] - fit_centre[rh, 1]
                r2 = refined_radii(params, dist[rh, rn], np.sqrt(fx * fx + fy * fy), fit_spread[rh], n_fit[rh], noise)
                tighter = (n_fit[rh] >= REFINED_MIN_PAIRS) & (r2 < radius[rh, rn])
                if np.any(tighter):
                    th, tn = rh[tighter], rn[tighter]
                    wr = w[rh, rn]  # (R, 2): the ring's spots mapped, by the fit where it is tighter
                    wr[tighter] = affine_apply_rows(ref_xy.take(tn, 0), fit_maps.take(th, 0))
                    use[th, tn] = _inside(wr[tighter], width, height, edges)  # nonseed: every ring spot is
                    rt = r2[tighter]
                    radius[th, tn] = rt
                    p_i[th, tn] = -np.expm1(-m_eff * np.pi * rt**2 / area) / chance_scale
                    dr = sq_dist(wr, probe_xy, right)  # (R, M)
                    taken = np.zeros((nh, npr), bool)  # per seed: its own probe spots and those the earlier rings claimed
                    taken[rows, probe_seed] = True
                    hh, nn = np.nonzero(near & done)
                    taken[hh, j[hh, nn]] = True
                    dr[taken[rh]] = np.inf
                    jr = dr.argmin(1)
                    j[rh, rn] = jr
                    dj = dr[np.arange(len(jr)), jr]
                    d2min[rh, rn] = dj
                    near[rh, rn] = (dj <= radius[rh, rn] ** 2) & use[rh, rn]
                done |= ring
    n = np.count_nonzero(use, 1)
    # k: distinct probe spots claimed by near reference spots (one-to-one), per seed.
    claimed = np.zeros((nh, npr), bool)
    hh, nn = near.nonzero()
    claimed[hh, j[hh, nn]] = True
    k = np.count_nonzero(claimed, 1).astype(np.int64)
    pbar = np.add.reduce(p_i * use, 1) / np.maximum(n, 1)
    # Where the count sits inside its step (calibrate.step_position): each near spot's
    # v = P(D <= d) / P(D <= r) under the coverage law of p_i, the least per seed.
    c = m_eff * np.pi / area
    vm = np.ones((nh, nr))
    vm[hh, nn] = np.expm1(-c * d2min[hh, nn]) / np.expm1(-c * radius[hh, nn] ** 2)
    log_u = step_position(np.bincount(hh, minlength=nh), vm.min(1))
    if pairs_out is not None:  # the pairs each seed counted (the refit starts from the best one's)
        pairs_out.update(near=near, j=j)
    return n, k, pbar, log_u


def affine_apply(xy: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped by each affine map (h, 3, 2) ([x y 1] @ map): (h, N, 2), elementwise
    (a matrix product would round differently from the einsum it replaced; this is bit-identical)."""
    x, y = xy[None, :, 0, None], xy[None, :, 1, None]
    return (x * maps[:, None, 0, :] + y * maps[:, None, 1, :]) + maps[:, None, 2, :]


def affine_apply_rows(xy: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Point i (N, 2) mapped by map i (N, 3, 2): (N, 2), as :func:`affine_apply` rounds."""
    return (xy[:, 0, None] * maps[:, 0, :] + xy[:, 1, None] * maps[:, 1, :]) + maps[:, 2, :]


REFINED_MIN_PAIRS = 8  # seed + earlier rings' pairs needed before an affine fit predicts the next ring
REFINED_GAIN = 1.5     # ... tried only where a spot's seed radius is this much above the constant law
REFINED_K = 2.0        # a refined radius: seed_noise_k x the predicted error x this margin (perspective, blends)
RING_GROWTH = 1.25     # each ring reaches this much further from the seed quad than the one before
MAX_RINGS = 12


def ring_bounds(first: float, far: float) -> tuple[float, ...]:
    """Outer distances of the rings: ``first`` (band_lo: the seed's own ring), then RING_GROWTH x
    further each, the last one open. Each ring's map is fitted to the rings inside it and so
    extrapolates only a quarter further out: an affine map cannot follow a tilt's perspective
    (errors growing as the square of the distance) over a long lever arm, but it can from ring to
    ring (wild: three rings to 2 band_hi lost genuine spots 5-15 px off at the far side)."""
    out = [first]
    while out[-1] < far and len(out) < MAX_RINGS:
        out.append(out[-1] * RING_GROWTH)
    out[-1] = math.inf
    return tuple(out)


def _inside(w: np.ndarray, width: int, height: int, edges: np.ndarray | None) -> np.ndarray:
    """(...) mapped points (..., 2) inside the probe frame and (with ``edges``) its spot hull."""
    inside = (w[..., 0] >= 0) & (w[..., 0] < width) & (w[..., 1] >= 0) & (w[..., 1] < height)
    if edges is not None:
        # Only where the probe has spots does the density model hold: a reference spot mapped outside
        # the probe's spot hull (the coating dot) could not have matched by chance, nor is it a miss.
        dist = w[..., 0, None] * edges[:, 0] + w[..., 1, None] * edges[:, 1] + edges[:, 2]  # (..., K)
        inside &= dist.min(-1) >= -HULL_MARGIN
    return inside


def refined_maps(x: np.ndarray, probe_xy: np.ndarray, maps: np.ndarray, ref_seed: np.ndarray,
                 probe_seed: np.ndarray, near: np.ndarray, j: np.ndarray):
    """Least-squares affine maps (h, 3, 2) fitted to each seed's quad and the earlier rings' pairs;
    with the pairs' count (h,), centroid (h, 2) and rms spread about it (h,) in reference px."""
    h = len(maps)
    if not np.any(near.sum(1) + ref_seed.shape[1] >= REFINED_MIN_PAIRS):
        return None
    wgt = near.astype(np.float64)  # (h, N)
    wgt[np.arange(h)[:, None], ref_seed] = 1.0
    tgt = probe_xy.take(j, 0)  # (h, N, 2): probe_xy[j] (take: the same rows at a tenth of the cost)
    tgt[np.arange(h)[:, None], ref_seed] = probe_xy.take(probe_seed, 0)
    n_fit = wgt.sum(1)
    xw = x[None] * wgt[..., None]  # (h, N, 3)
    xtx = np.einsum("hni,nj->hij", xw, x)
    xty = np.einsum("hni,hnj->hij", xw, tgt)
    good = n_fit >= REFINED_MIN_PAIRS
    if not np.any(good):
        return None
    out = maps.copy()
    try:
        out[good] = solve(xtx[good], xty[good])
    except np.linalg.LinAlgError:
        return None
    cen = xtx[:, 2, :2] / np.maximum(n_fit, 1)[:, None]
    spread2 = (xtx[:, 0, 0] + xtx[:, 1, 1]) / np.maximum(n_fit, 1) - (cen * cen).sum(1)
    return out, np.where(good, n_fit, 0), cen, np.sqrt(np.maximum(spread2, 1.0))


def refined_radii(params: MatchParams, dist_seed: np.ndarray, dist_fit: np.ndarray, spread: np.ndarray,
                  n_fit: np.ndarray, noise: float) -> np.ndarray:
    """Radius within which an affine fit to the earlier rings (``n_fit`` pairs spread ``spread`` px rms about
    their centroid) predicts a spot ``dist_fit`` px from that centroid: the constant part of the seed's
    law (perspective an affine map does not model), or seed_noise_k x the spot's own noise plus the
    fit's prediction error (per axis S^2 (1 + (1 + (d / spread)^2) / n)), with a margin."""
    const = params.seed_radius + params.seed_slope * dist_seed
    nf = np.maximum(n_fit, 1.0)
    pred = np.sqrt(1.0 + (1.0 + (dist_fit / spread) ** 2) * REFINED_K ** 2 / nf)
    return np.maximum(const, params.seed_noise_k * noise * pred)


def mutual_pairs(src: np.ndarray, dst: np.ndarray, radius, right: np.ndarray | None = None,
                 radius2=None) -> np.ndarray:
    """Pairs (i, j) where src i and dst j are each other's nearest and within ``radius`` (scalar or (N,)).
    ``right``: sq_right(dst) and ``radius2``: radius squared, when made once for several calls."""
    d2 = sq_dist(src, dst, right)
    j = d2.argmin(1)
    i = d2.argmin(0)
    rows = _arange(len(src))
    # d2.min(1) is d2[rows, j] (the value at the argmin; NaN where the row has one), read by one flat take
    dmin = d2.reshape(-1).take(rows * d2.shape[1] + j)
    ok = (i.take(j) == rows) & (dmin <= (np.square(radius) if radius2 is None else radius2))
    idx = ok.nonzero()[0]
    out = np.empty((len(idx), 2), np.int64)
    out[:, 0] = idx
    out[:, 1] = j.take(idx)
    return out


_ARANGES: dict[int, np.ndarray] = {}


def _arange(n: int) -> np.ndarray:
    """np.arange(n) (int64), made once per n up to 4096 (read-only)."""
    a = _ARANGES.get(n)
    if a is None:
        a = np.arange(n)
        if n <= 4096:
            a.flags.writeable = False
            _ARANGES[n] = a
    return a


FIT_NORM = 0.01  # 1/px: centred coordinates scaled to about +-3 keep the 8 x 8 normal equations well conditioned


GN_ITERATIONS = 1  # Gauss-Newton steps on the geometric error after the DLT (close already: it converges quadratically)


def fit_homography(src: np.ndarray, dst: np.ndarray, polish: bool = False) -> np.ndarray | None:
    """Least-squares homography (3, 3) mapping ``src`` (N, 2) onto ``dst`` (N >= 4) in closed form:
    the DLT with h33 = 1 on centred, scaled coordinates, solved through its 8 x 8 normal equations.
    ``polish``: then minimise the geometric (reprojection) error with a few Gauss-Newton steps, as
    cv2.findHomography's Levenberg-Marquardt does, at a fraction of its cost. None when degenerate."""
    n = len(src)
    ms, md = np.add.reduce(src, 0) / n, np.add.reduce(dst, 0) / n
    sc = (src - ms) * FIT_NORM  # (n, 2): the columns x, y
    x, y = sc.T
    u, v = ((dst - md) * FIT_NORM).T
    # Column pairs written at once, each element the same product as written column by column
    # (-u * x: (-u_i) * x_i; -pu * x * iw: ((-pu_i) * x_i) * iw_i).
    a = np.zeros((2 * n, 8))
    a[:n, :2] = sc
    a[:n, 2] = 1.0
    a[n:, 3:5] = sc
    a[n:, 5] = 1.0
    a[:n, 6:] = (-u)[:, None] * sc
    a[n:, 6:] = (-v)[:, None] * sc
    at = a.T
    try:
        hv = solve(at @ a, at[:, :n] @ u + at[:, n:] @ v)
        if polish:
            jac = np.zeros((2 * n, 8))
            res = np.empty(2 * n)
            for _ in range(GN_ITERATIONS):
                w = hv[6] * x + hv[7] * y + 1.0
                pu = (hv[0] * x + hv[1] * y + hv[2]) / w
                pv = (hv[3] * x + hv[4] * y + hv[5]) / w
                iw = 1.0 / w
                iwc = iw[:, None]
                jac[:n, :2] = jac[n:, 3:5] = sc * iwc
                jac[:n, 2] = jac[n:, 5] = iw
                jac[:n, 6:] = (-pu)[:, None] * sc * iwc
                jac[n:, 6:] = (-pv)[:, None] * sc * iwc
                res[:n], res[n:] = u - pu, v - pv
                jt = jac.T
                hv = hv + solve(jt @ jac, jt @ res)
    except np.linalg.LinAlgError:
        return None
    hn = np.empty(9)
    hn[:8] = hv
    hn[8] = 1.0
    # Undo the normalisation: h = T_dst^-1 hn T_src with T = scale FIT_NORM after centring.
    msx, msy = float(ms[0]), float(ms[1])
    t_src = np.array([[FIT_NORM, 0.0, -FIT_NORM * msx], [0.0, FIT_NORM, -FIT_NORM * msy], [0.0, 0.0, 1.0]])
    t_dst_inv = np.array([[1.0 / FIT_NORM, 0.0, float(md[0])], [0.0, 1.0 / FIT_NORM, float(md[1])], [0.0, 0.0, 1.0]])
    h = t_dst_inv @ hn.reshape(3, 3) @ t_src
    if not math.isfinite(float(np.add.reduce(h, None))) or abs(h[2, 2]) < 1e-12:  # h.sum()
        return None
    return h / h[2, 2]


def median(v: np.ndarray) -> float:
    """np.median of a small 1-D array at a tenth of its overhead."""
    s = v.copy()  # np.sort(v), without its wrapper
    s.sort()
    n = len(s)
    return 0.5 * float(s[(n - 1) // 2] + s[n // 2])


def apply_homography(xy1: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Points (N, 3) in homogeneous form [x y 1] mapped by ``h``: (N, 2)."""
    w = xy1 @ h.T
    return w[:, :2] / w[:, 2:3]


AFFINE_ROUNDS = 4  # affine refits of the seed while they gain pairs (before any homography)


def grow_affine(ref1: np.ndarray, probe_xy: np.ndarray, seed_map: np.ndarray, radius: np.ndarray,
                start: np.ndarray | None = None, right: np.ndarray | None = None) -> np.ndarray:
    """The seed's affine map (3, 2) refitted to its pairs (within ``radius``) while that gains pairs.

    A seed from one quad predicts well only near it; a homography fitted to the pairs near the quad
    alone extrapolates its projective terms (unconstrained by a small patch) into errors of pixels
    across the coating, and the refit then keeps only that patch (harsh: 30 of 60 pairs, residual
    4.5 x the expected noise). An affine map cannot bend so: it is grown over the coating first,
    and the homography is fitted to the pairs it finds. ``right``: sq_right(probe_xy), when made."""
    m = seed_map
    right = sq_right(probe_xy) if right is None else right
    r2 = np.square(radius)
    pairs = mutual_pairs(ref1 @ m, probe_xy, radius, right, r2)
    if start is not None and len(start) > len(pairs):
        # The count's own pairs (its rings followed the coating outwards): the map fitted to them.
        a = ref1.take(start[:, 0], 0)
        try:
            m2 = solve(a.T @ a, a.T @ probe_xy.take(start[:, 1], 0))
            p2 = mutual_pairs(ref1 @ m2, probe_xy, radius, right, r2)
            if len(p2) > len(pairs):
                m, pairs = m2, p2
        except np.linalg.LinAlgError:
            pass
    for _ in range(AFFINE_ROUNDS):
        if len(pairs) < 6:
            break
        a = ref1.take(pairs[:, 0], 0)
        try:
            m2 = solve(a.T @ a, a.T @ probe_xy.take(pairs[:, 1], 0))
        except np.linalg.LinAlgError:
            break
        p2 = mutual_pairs(ref1 @ m2, probe_xy, radius, right, r2)
        if len(p2) <= len(pairs):
            break
        m, pairs = m2, p2
    return m


def refine(ref_xy: np.ndarray, probe_xy: np.ndarray, seed_map: np.ndarray, seed_radius: np.ndarray,
           params: MatchParams, refine_radius: np.ndarray | float | None = None, start: np.ndarray | None = None,
           ref1: np.ndarray | None = None):
    """Homography refit from a seed affine map (3, 2) whose per-spot radius is ``seed_radius`` (N,),
    then pairs within ``refine_radius`` (per reference spot; default params.refine_radius);
    returns (H, pairs, residual sigma in reference px). ``ref1``: ref_xy as [x y 1] rows, when made."""
    if ref1 is None:
        ref1 = np.concatenate([ref_xy, np.ones((len(ref_xy), 1))], axis=1)
    right = sq_right(probe_xy)
    h = np.empty((3, 3))  # np.vstack([m.T, [0, 0, 1]])
    h[:2] = grow_affine(ref1, probe_xy, seed_map, seed_radius, start, right).T
    h[2] = (0.0, 0.0, 1.0)
    rr = params.refine_radius if refine_radius is None else refine_radius
    rr2 = np.square(rr)
    radii = [(seed_radius, np.square(seed_radius))] + [(rr, rr2)] * REFINE_ROUNDS
    pairs = np.zeros((0, 2), np.int64)
    for rnd, (r, r2) in enumerate(radii):
        mapped = apply_homography(ref1, h)
        pairs = mutual_pairs(mapped, probe_xy, r, right, r2)
        if len(pairs) < 6:
            return h, pairs, None
        src, dst = ref_xy.take(pairs[:, 0], 0), probe_xy.take(pairs[:, 1], 0)  # rows: take, not [] (a tenth of the cost)
        # The final fit gives the residuals (the clone gate) and the map enrollment fuses captures
        # with: polished on the geometric error. The earlier rounds only choose pairs.
        hn = fit_homography(src, dst, polish=rnd == len(radii) - 1)
        used = len(pairs)
        if hn is None:
            break
        if rnd == 0:
            # The wide first radius can admit a few wrong pairs: drop the pairs far off the least-squares
            # fit and fit again (a trimmed fit; RANSAC costs ten times more for the same pairs).
            e = np.hypot(*(apply_homography(ref1.take(pairs[:, 0], 0), hn) - dst).T)
            keep = e <= max(RANSAC_PX, TRIM_FACTOR * median(e))
            if 6 <= np.count_nonzero(keep) < len(keep):
                hn2 = fit_homography(src.compress(keep, 0), dst.compress(keep, 0))
                hn = hn if hn2 is None else hn2
        h = hn
    mapped = apply_homography(ref1, h)
    pairs = mutual_pairs(mapped, probe_xy, rr, right, rr2)
    # A seed far from the truth (few of its spots matched) leaves the fit short of converged: it
    # still gains pairs with each round. Refit until it stops (a genuine probe whose last round
    # gained nothing costs nothing more).
    for _ in range(MAX_EXTRA_ROUNDS):
        if len(pairs) < 6 or len(pairs) <= used:
            break
        hn = fit_homography(ref_xy.take(pairs[:, 0], 0), probe_xy.take(pairs[:, 1], 0), polish=True)
        if hn is None:
            break
        h, used = hn, len(pairs)
        mapped = apply_homography(ref1, h)
        pairs = mutual_pairs(mapped, probe_xy, rr, right, rr2)
    if len(pairs) < 6:
        return h, pairs, None
    err = np.hypot(*(mapped.take(pairs[:, 0], 0) - probe_xy.take(pairs[:, 1], 0)).T)
    a = h[:2, :2] / h[2, 2]
    scale = math.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]))
    # Eight parameters were fitted to these pairs: inflate for the lost degrees of freedom.
    dof = math.sqrt(len(pairs) / max(1.0, len(pairs) - 4.0))
    sigma = median(err) / RAYLEIGH_MEDIAN * dof / max(scale, 1e-9)
    return h, pairs, sigma


@dataclass
class Score:
    """The chance-model half of verify (no refit): enough for the false-accept probability.

    ``hypotheses``: H; ``log10_tail``: log10 of the best seed's p-value P(K > k) + u P(K = k) of
    K ~ Binomial(n, p) (``log_u``: log u, calibrate.step_position);
    ``k``, ``n``, ``p``: that seed's matched spots, spots inside the probe's hull and mean chance
    probability; ``lam``: the pair's expected chance code matches (:func:`chance_codes`);
    ``log10_far``: the false-accept probability. The rest is for the refit."""

    hypotheses: int
    log10_tail: float
    log10_far: float
    k: int = 0
    n: int = 0
    p: float = 0.0
    lam: float = 0.0
    seed_map: np.ndarray | None = field(default=None, repr=False)
    seed_centre: np.ndarray | None = field(default=None, repr=False)
    seed_pairs: np.ndarray | None = field(default=None, repr=False)  # (K, 2) the pairs the best seed counted
    noise: np.ndarray | None = field(default=None, repr=False)  # pair_noise(ref, probe), for the refit
    log_u: float = LOG_MID  # the best seed's position inside its count's step (calibrate.step_position)


NO_HYPOTHESIS = Score(0, 0.0, 0.0)


def score_prepared(ref: Reference, probe: Probe) -> Score:
    """Hypotheses from the quad codes, the best seed's binomial tail and the calibrated log10 FAR."""
    p = ref.params
    rq, pq = ref.quads, probe.quads
    ri, pj = match_codes(rq, ref.boxes, probe.table, p)
    n_hyp = len(ri)
    if n_hyp == 0:
        return NO_HYPOTHESIS
    rseed, pseed = rq.idx.take(ri, 0), pq.idx_rows(pj)  # rows: take, not [] (a tenth of the cost)
    pxy = probe.spots.xy
    zp = probe.z.take(pseed)  # (x + 1j y)[pseed]: elementwise, so the same bits as computed on the rows
    cr, dr, den = ref_similarity(ref)  # similarity_batch(ref.z.take(rseed), zp), its reference side made once
    a, b = similarity_rows(cr.take(ri, 0), dr.take(ri, 0), den.take(ri), zp)
    cand = candidate_order(a, b, p.max_hypotheses)
    w, hgt = probe.spots.width, probe.spots.height
    rc, pc = rseed.take(cand, 0), pseed.take(cand, 0)
    maps = affine_batch(ref.xy.take(rc, 0), pxy.take(pc, 0), a.take(cand), b.take(cand))
    counted: dict = {}
    noise = pair_noise(ref, probe)
    n, k, pbar, log_u = score_seeds(ref.xy, pxy, maps, rc, pc, p, w, hgt, probe.area, probe.edges,
                                    median(noise) if len(noise) else 0.0, p.far_chance_scale, counted, ref.xy1)
    # Spots have different chance probabilities p_i (their radii differ); for k above the mean,
    # Binomial(n, mean p) bounds the tail of their sum (Hoeffding 1956). The p-value is
    # P(K > k) + u P(K = k), u where the coinciding spots' closeness puts the count inside its step
    # (calibrate.step_position): uniform under the null at every threshold, where P(K >= k) is
    # conservative by a step and the mid-p value (u = 1/2) is uniform only on average.
    tails = log10_binom_sf_many(k, n, np.minimum(1.0, p.far_chance_scale * pbar), log_u=log_u)
    best = int(tails.argmin())
    log10_tail = float(tails[best])
    near = counted["near"][best].nonzero()[0]
    nq = rc.shape[1]
    seed_pairs = np.empty((nq + len(near), 2), np.int64)  # the seed quad's pairs, then the counted ones
    seed_pairs[:nq, 0], seed_pairs[:nq, 1] = rc[best], pc[best]
    seed_pairs[nq:, 0], seed_pairs[nq:, 1] = near, counted["j"][best][near]
    centre = np.add.reduce(ref.xy.take(rc[best], 0), 0) / nq  # .mean(0), as it computes it
    lam = chance_codes(ref, probe)
    return Score(n_hyp, log10_tail, calibrated_far(lam, log10_tail, p), int(k[best]), int(n[best]),
                 float(pbar[best]), lam, maps[best], centre, seed_pairs, noise, float(log_u[best]))


def verify_prepared(ref: Reference, probe: Probe, score: Score | None = None) -> Result:
    """1:1 verify of a prepared probe against a reference (see the module docstring); ``score``:
    its :func:`score_prepared`, when already computed."""
    p = ref.params
    sc = score_prepared(ref, probe) if score is None else score
    # A score with hypotheses always carries its best seed (score_prepared); NO_HYPOTHESIS has none.
    if sc.hypotheses == 0 or sc.seed_map is None or sc.seed_centre is None:
        return Result(False, 0.0, 0, reason="no quad code in common" + poor_capture(probe.spots))
    pxy = probe.spots.xy
    noise = pair_noise(ref, probe) if sc.noise is None else sc.noise
    d = ref.xy - sc.seed_centre
    first = seed_radii(p, np.sqrt(np.add.reduce(d * d, axis=1)),  # np.linalg.norm(d, axis=1), as it computes it
                       median(noise) if len(noise) else 0.0)
    h, pairs, sigma = refine(ref.xy, pxy, sc.seed_map, first, p, np.maximum(p.refine_radius, p.refine_noise_k * noise),
                             sc.seed_pairs, ref.xy1)
    matched = len(pairs)
    log10_far = sc.log10_far
    res = Result(False, log10_far, matched, h, sigma, sc.hypotheses, sc.k, pairs=pairs, log10_tail=sc.log10_tail)
    if sigma is not None:
        residual_gate(res, ref, probe, h, pairs)
    if log10_far > p.log10_far_max:
        res.reason = (f"not beyond chance (log10 FAR {log10_far:.1f} > {p.log10_far_max:g}: {sc.k} of the {sc.n} "
                      f"reference spots in view coincide)" + poor_capture(probe.spots))
    elif matched < p.min_matched or sigma is None:
        res.reason = f"too few spots matched after refit ({matched} < {p.min_matched})" + poor_capture(probe.spots)
    elif res.residual_p is not None and res.residual_p < p.residual_alpha:
        res.reason = (f"positions do not repeat precisely enough (residual {sigma:.3f} px is "
                      f"{res.residual_ratio:.2f} x the expected {res.expected_noise:.3f} px; "
                      f"p = {res.residual_p:.1e} < {p.residual_alpha:g})" + poor_capture(probe.spots))
    else:
        res.match = True
        res.reason = "match"
    return res


def poor_capture(spots: SpotSet) -> str:
    """'; the probe capture is under-exposed: ...' when fewer than the guidance's MIN_SPOTS of its spots
    stand clear of its measured noise (an image the host detected: glint.match.spots.CLEAR_FACTOR) and the
    scanner's guidance says no more than "too few spots"; else '; the probe capture is poor: <the scanner's
    guidance>' when its detector said so; else ''."""
    from glint.imaging.twin import SUM_X16
    from glint.match.spots import CLEAR_FACTOR
    from glintcore.guidance import MIN_SPOTS
    from glintcore.proto import GD_OK, GD_TOO_FEW_SPOTS, GUIDANCE_TEXT

    g = spots.meta.get("guidance")
    q = spots.meta.get("quality") or {}
    found = q.get(0, q.get("0"))
    clear = spots.meta.get("clear")
    if (g is None or g in (GD_OK, GD_TOO_FEW_SPOTS)) and clear is not None and clear < MIN_SPOTS:
        return (f"; the probe capture is under-exposed: only {clear} of its {found} spots stand clear of its "
                f"measured noise (3x3 sum >= {CLEAR_FACTOR * SUM_X16 / 16:g} x the noise of a 3x3 sum; "
                f"{MIN_SPOTS} needed): retake it at a longer exposure")
    if g is None or g == GD_OK:
        return ""
    return f"; the probe capture is poor: {GUIDANCE_TEXT.get(g, f'guidance {g}')}" + (
        f" ({found} spots found)" if found is not None else "")


def residual_gate(res: Result, ref: Reference, probe: Probe, h: np.ndarray, pairs: np.ndarray) -> None:
    """Fill ``res``'s expected noise, observed / expected ratio and the clone gate's p-value
    (glint.match.noise.residual_test) for the refit ``h`` and its matched ``pairs``."""
    from glint.match.noise import residual_test

    ri, pj = pairs[:, 0], pairs[:, 1]
    ref1 = ref.xy1.take(ri, 0)
    err = np.hypot(*(apply_homography(ref1, h) - probe.spots.xy.take(pj, 0)).T)
    a = h[:2, :2] / h[2, 2]
    scale = max(1e-9, math.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])))
    ps = probe.sigma.take(pj) if probe.sigma is not None else np.zeros(len(pj))
    rs = ref.spot_sigma().take(ri) * scale
    var = (ref.noise_scale**2) * (rs * rs + ps * ps)  # probe px^2
    t = residual_test(err, var, ref.params.noise_margin)
    res.expected_noise = t["expected"] / scale
    res.residual_ratio = t["ratio"]
    res.residual_p = t["p_value"]
    res.residual_z2 = t["mean_z2"]


def verify(ref: Reference, probe: SpotSet | Probe) -> Result:
    """1:1 verify: does ``probe`` (a SpotSet or a prepared Probe) show the enrolled item ``ref``?"""
    if isinstance(probe, SpotSet):
        probe = prepare(probe, ref.params)
    return verify_prepared(ref, probe)
