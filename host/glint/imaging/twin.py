"""Host twin of the firmware spot detector (firmware/glintfw/detect.py), vectorised with numpy.

Same integer arithmetic, same constants, same tie rules, so the spot records,
quality map and guidance are bit-identical to what a scanner computes from the
same frame (tests/host/test_imaging.py checks it frame by frame). Keep the
constants below in step with the firmware: a test compares them.
"""

from __future__ import annotations

import numpy as np

from glintcore.proto import GD_NO_COATING, GD_OK, GD_OUT_OF_FOCUS, GD_SATURATED, GD_TOO_DARK, GD_TOO_FEW_SPOTS

SPOT_SCALE = 32
SPOT_RECORD = 5
MAX_SPOTS_DEFAULT = 64
BLOCK_SHIFT = 3
MARGIN = 1
SAT_LEVEL = 250
CLIP_X16 = 32
PEAK_X16 = 40
SUM_X16 = 88
SPIKE_X16 = 6
INTERP_MAX = 32  # sub-pixel offset clamp: +-1 px
NOISE_MIN_X16 = 16
MAD_TO_SIGMA_X1000 = 1048
DARK_MEAN = 12
SAT_PERMILLE_MAX = 20
NO_COATING_SPOTS = 6
FOCUS_MIN = 800
MIN_SPOTS = 30
MAX_CANDIDATES_MIN = 1024

TUNING = (
    "SPOT_SCALE", "SPOT_RECORD", "MAX_SPOTS_DEFAULT", "BLOCK_SHIFT", "MARGIN", "SAT_LEVEL", "CLIP_X16",
    "PEAK_X16", "SUM_X16", "SPIKE_X16", "INTERP_MAX", "NOISE_MIN_X16", "MAD_TO_SIGMA_X1000",
    "DARK_MEAN", "SAT_PERMILLE_MAX", "NO_COATING_SPOTS", "FOCUS_MIN", "MIN_SPOTS", "MAX_CANDIDATES_MIN",
)

# 3x3 neighbourhood offsets: earlier in raster order must be strictly lower, later ones not higher.
_NMS = [(dy, dx, (dy < 0) or (dy == 0 and dx < 0)) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def noise_x16(dhist: np.ndarray, count: int) -> int:
    """Same as glintfw.detect.noise_x16 (interpolated median of |dx| / 0.954, x16, floored at 1 DN)."""
    half = count >> 1
    cum = np.cumsum(dhist)
    k = int(np.searchsorted(cum, half, side="right"))  # first bin whose cumulative count exceeds half
    k = min(k, 255)
    before = int(cum[k - 1]) if k > 0 else 0
    nk = int(dhist[k])
    if nk == 0:
        med = 16 * k
    elif k == 0:
        med = (8 * (half - before)) // nk
    else:
        med = 16 * k - 8 + (16 * (half - before)) // nk
    sigma = (med * MAD_TO_SIGMA_X1000) // 1000
    return max(sigma, NOISE_MIN_X16)


LOG2_FRAC = tuple(round(1024 * __import__("math").log2(1 + i / 32)) for i in range(33))


def ilog2_q10(v: np.ndarray) -> np.ndarray:
    """Integer log2(v) in 1/1024 units for v >= 1 (values < 1 count as 1); same as glintfw.detect.ilog2_q10."""
    v = np.maximum(np.asarray(v, dtype=np.int64), 1)
    k = np.zeros_like(v)
    for s in range(1, 31):
        k += (v >> s) > 0
    tab = np.asarray(LOG2_FRAC, dtype=np.int64)
    small = k < 5
    t = np.where(small, v << np.maximum(5 - k, 0), v >> np.maximum(k - 5, 0))
    i = t - 32
    sh = np.maximum(k - 5, 0)
    rem = np.where(small, 0, v - (t << sh))
    frac = tab[i] + (((tab[np.minimum(i + 1, 32)] - tab[i]) * rem) >> sh)
    return 1024 * k + frac


def _interp(a, b, c):
    """(sub-pixel offset in 1/SPOT_SCALE px clamped to +-1 px, log2 curvature) of three samples."""
    la, lb, lc = ilog2_q10(a), ilog2_q10(b), ilog2_q10(c)
    den = 2 * (2 * lb - la - lc)
    num = SPOT_SCALE * (lc - la)
    safe = np.where(den > 0, den, 1)
    d = np.where(den > 0, (2 * num + safe) // (2 * safe), 0)
    return np.clip(d, -INTERP_MAX, INTERP_MAX), 2 * lb - la - lc


def guidance(q: dict) -> int:
    if q[4] < DARK_MEAN:
        return GD_TOO_DARK
    if q[3] > SAT_PERMILLE_MAX:
        return GD_SATURATED
    if q[0] < NO_COATING_SPOTS:
        return GD_NO_COATING
    if q[2] < FOCUS_MIN:
        return GD_OUT_OF_FOCUS
    if q[0] < MIN_SPOTS:
        return GD_TOO_FEW_SPOTS
    return GD_OK


def _block_sums(a: np.ndarray, nby: int, nbx: int) -> np.ndarray:
    h, w = a.shape
    b = 1 << BLOCK_SHIFT
    pad = np.zeros((nby * b, nbx * b), dtype=np.int64)
    pad[:h, :w] = a
    return pad.reshape(nby, b, nbx, b).sum(axis=(1, 3))


def detect_raw(img: np.ndarray, max_spots: int = MAX_SPOTS_DEFAULT):
    """The firmware algorithm on an (H, W) uint8 array -> (spots, quality, guidance, kept arrays)."""
    h, w = img.shape
    f = img.astype(np.int32)
    b = 1 << BLOCK_SHIFT
    nbx, nby = (w + b - 1) >> BLOCK_SHIFT, (h + b - 1) >> BLOCK_SHIFT
    maxc = max(MAX_CANDIDATES_MIN, (w * h) >> 7)

    # pass 1: stats
    total = int(f.sum())
    sat = int(np.count_nonzero(img >= SAT_LEVEL))
    dhist = np.bincount(np.abs(f[:, 2:] - f[:, :-2]).ravel(), minlength=256)
    bsum = _block_sums(f, nby, nbx)
    bcount = _block_sums(np.ones_like(f), nby, nbx)
    noise = noise_x16(dhist, h * (w - 2))

    # pass 2: clipped block means
    lim = bsum // bcount + ((CLIP_X16 * noise) >> 8)
    lim_px = np.repeat(np.repeat(lim, b, axis=0), b, axis=1)[:h, :w]
    below = f <= lim_px
    csum = _block_sums(np.where(below, f, 0), nby, nbx)
    ccnt = _block_sums(below.astype(np.int32), nby, nbx)
    bg = np.where(ccnt > 0, csum // np.maximum(ccnt, 1), bsum // bcount)
    csum_t, ccnt_t = int(csum.sum()), int(ccnt.sum())

    # pass 3: candidates (threshold + 5x5 raster-tie maximum)
    thr = bg + ((PEAK_X16 * noise) >> 8)
    thr_px = np.repeat(np.repeat(thr, b, axis=0), b, axis=1)[:h, :w]
    m = MARGIN
    core = f[m : h - m, m : w - m]
    ok = core > thr_px[m : h - m, m : w - m]
    for dy, dx, earlier in _NMS:
        nb = f[m + dy : h - m + dy, m + dx : w - m + dx]
        ok &= (core > nb) if earlier else (core >= nb)
    ys, xs = np.nonzero(ok)
    ys, xs = ys[:maxc] + m, xs[:maxc] + m

    # candidate tests
    bgc = bg[ys >> BLOCK_SHIFT, xs >> BLOCK_SHIFT].astype(np.int64)
    amp = f[ys, xs] - bgc
    s9 = sum(f[ys + dy, xs + dx].astype(np.int64) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - 9 * bgc
    good = (s9 * 256 >= 3 * SUM_X16 * noise) & ((s9 - amp) * 16 >= SPIKE_X16 * amp)
    found = int(np.count_nonzero(good))
    idx = np.flatnonzero(good)
    # N largest 3x3 sums, earlier (raster) candidates first among equals
    order = idx[np.lexsort((idx, -s9[idx]))][:max_spots]
    ys, xs, bgc, amp, s9 = ys[order], xs[order], bgc[order], amp[order], s9[order]

    # sub-pixel position: Gaussian (log-parabola) interpolation on the 3x3 window's column and row sums
    def tap(dy, dx):
        return f[ys + dy, xs + dx].astype(np.int64) - bgc

    col = [tap(-1, dx) + tap(0, dx) + tap(1, dx) for dx in (-1, 0, 1)]
    row = [tap(dy, -1) + tap(dy, 0) + tap(dy, 1) for dy in (-1, 0, 1)]
    dx, cx = _interp(*col)
    dy, cy = _interp(*row)
    xq = SPOT_SCALE * xs + dx
    yq = SPOT_SCALE * ys + dy
    unsat = f[ys, xs] < SAT_LEVEL

    n = len(ys)
    nc = int(unsat.sum())
    focus = int((cx + cy)[unsat].sum()) // (2 * nc) if nc else 0
    fmax = int(s9[0]) if n else 1
    fu8 = np.maximum((s9 * 510 + fmax) // (2 * fmax), 1)
    rec_order = np.lexsort((xq, yq, -fu8))
    recs = np.zeros((n, 5), dtype=np.uint8)
    xo, yo, fo = xq[rec_order], yq[rec_order], fu8[rec_order]
    recs[:, 0], recs[:, 1] = xo >> 8, xo & 0xFF
    recs[:, 2], recs[:, 3] = yo >> 8, yo & 0xFF
    recs[:, 4] = fo
    npix = w * h
    q = {
        0: found,
        1: int(amp[rec_order[n >> 1]]) * 256 // noise if n else 0,
        2: focus,
        3: sat * 1000 // npix,
        4: total // npix,
        5: csum_t // ccnt_t if ccnt_t else total // npix,
        6: noise,
    }
    return recs.tobytes(), q, guidance(q), (xo / SPOT_SCALE, yo / SPOT_SCALE, fo)
