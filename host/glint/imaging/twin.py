"""Host twin of the firmware spot detector (firmware/glintfw/detect.py), vectorised with numpy.

Same integer arithmetic, same constants, same tie rules, so the spot records,
quality map and guidance are bit-identical to what a scanner computes from the
same frame (tests/host/test_imaging.py checks it frame by frame). What both sides
share is imported from glintcore (the descriptor's fixed point, the guidance rules).
The tuning constants below mirror the firmware's ``const()`` values, which a board
inlines at compile time and so cannot import from another module; a test
(tests/firmware/test_detect.py) fails if the two ever differ.
"""

from __future__ import annotations

import numpy as np

# the spot records' fixed point (the wire contract); MAX_DIM and SPOT_RECORD are listed in TUNING, whose test
# compares each with the firmware's const() copy
from glintcore.descriptor import MAX_DIM, SPOT_RECORD, SPOT_SCALE  # noqa: F401
from glintcore.guidance import guidance  # one definition for scanner and twin

MAX_SPOTS_DEFAULT = 64
BLOCK = 8
MARGIN = 2
SAT_LEVEL = 250
CLIP_X16 = 32
PEAK_X16 = 40
SUM_X16 = 88
SPIKE_X16 = 12
INTERP_MAX = 32  # sub-pixel offset clamp: +-1 px
BROAD_CV = 1312  # 3x3 log2 curvature x + y below this: the centroid from the 5x5 window
NOISE_MIN_X16 = 16
MAD_TO_SIGMA_X1000 = 1048
CAND_RETRIES = 16
TIE25_MARGIN = 3  # candidates this far inside may break a (value, 3x3 sum) tie on their 5x5 sums
MAX_CANDIDATES_MIN = 1024

TUNING = (
    "SPOT_SCALE", "SPOT_RECORD", "MAX_SPOTS_DEFAULT", "MAX_DIM", "BLOCK", "MARGIN", "SAT_LEVEL", "CLIP_X16",
    "PEAK_X16", "SUM_X16", "SPIKE_X16", "INTERP_MAX", "NOISE_MIN_X16", "MAD_TO_SIGMA_X1000", "CAND_RETRIES",
    "MAX_CANDIDATES_MIN", "BROAD_CV", "TIE25_MARGIN",
)

_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
_RING = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]


def noise_x16(dhist: np.ndarray, count: int) -> int:
    """Same as glintfw.detect.noise_x16 (interpolated median of |d| / 0.954, x16, floored at 1 DN)."""
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
    """(sub-pixel offset in 1/SPOT_SCALE px, rounded half away from zero, clamped to +-1 px; log2 curvature)."""
    la, lb, lc = ilog2_q10(a), ilog2_q10(b), ilog2_q10(c)
    cv = 2 * lb - la - lc
    num = SPOT_SCALE * (lc - la)
    safe = np.where(cv > 0, cv, 1)
    d = np.where(cv > 0, np.sign(num) * ((2 * np.abs(num) + 2 * safe) // (4 * safe)), 0)
    return np.clip(d, -INTERP_MAX, INTERP_MAX), cv


def _interp2(a, b, c):
    """_interp for samples two pixels apart: (offset in 1/SPOT_SCALE px, rounded half away from zero, clamped
    to +-1 px; log2 curvature over the 2 px spacing, 4 x the per-pixel one)."""
    la, lb, lc = ilog2_q10(a), ilog2_q10(b), ilog2_q10(c)
    cv = 2 * lb - la - lc
    num = SPOT_SCALE * (lc - la)
    safe = np.where(cv > 0, cv, 1)
    d = np.where(cv > 0, np.sign(num) * ((2 * np.abs(num) + safe) // (2 * safe)), 0)
    return np.clip(d, -INTERP_MAX, INTERP_MAX), cv


def block_edges(n: int) -> np.ndarray:
    """Block index of each of ``n`` pixels along one axis (glintfw.detect.block_edges: symmetric about the centre)."""
    nb = max(1, (n + BLOCK // 2) // BLOCK)
    if n & 1 and not nb & 1:
        nb += 1
    k = np.arange(nb + 1)
    lo = (2 * k * n + nb) // (2 * nb)
    edges = np.where(2 * k <= nb, lo, n - lo[::-1])
    return np.searchsorted(edges, np.arange(n), side="right") - 1


def tile_grid(n: int) -> tuple[int, int]:
    """(first pixel, count) of the centred disjoint 3-pixel noise tiles (glintfw.detect.tile_grid)."""
    nt = n // 3
    if (n - 3 * nt) & 1:
        nt -= 1
    return (n - 3 * nt) >> 1, nt


def noise9_x16(f: np.ndarray) -> int:
    """Noise of a 3x3 sum x16, from |differences| of neighbouring disjoint 3x3 tiles (clamped at 255)."""
    h, w = f.shape
    ox, nx = tile_grid(w)
    oy, ny = tile_grid(h)
    t = f[oy : oy + 3 * ny, ox : ox + 3 * nx].astype(np.int64).reshape(ny, 3, nx, 3).sum(axis=(1, 3))
    hist = np.bincount(np.minimum(np.abs(np.diff(t, axis=1)), 255).ravel(), minlength=256)
    hist = hist + np.bincount(np.minimum(np.abs(np.diff(t, axis=0)), 255).ravel(), minlength=256)
    return max(noise_x16(hist, ny * (nx - 1) + nx * (ny - 1)), 3 * NOISE_MIN_X16)


def _block_sums(a: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    ry = np.flatnonzero(np.diff(by, prepend=-1))
    rx = np.flatnonzero(np.diff(bx, prepend=-1))
    return np.add.reduceat(np.add.reduceat(a.astype(np.int64), ry, axis=0), rx, axis=1)


def detect_raw(img: np.ndarray, max_spots: int = MAX_SPOTS_DEFAULT):
    """The firmware algorithm on an (H, W) uint8 array -> (spots, quality, guidance, (x, y, flux, significance)
    of the spots in record order; significance: the 3x3 sum over the measured 3x3-sum noise, host only)."""
    h, w = img.shape
    f = img.astype(np.int32)
    by, bx = block_edges(h), block_edges(w)
    maxc = max(MAX_CANDIDATES_MIN, (w * h) >> 7)

    # stats
    total = int(f.sum())
    sat = int(np.count_nonzero(img >= SAT_LEVEL))
    dhist = np.bincount(np.abs(f[:, 2:] - f[:, :-2]).ravel(), minlength=256)
    dhist = dhist + np.bincount(np.abs(f[2:, :] - f[:-2, :]).ravel(), minlength=256)
    bsum = _block_sums(f, by, bx)
    bcount = _block_sums(np.ones_like(f), by, bx)
    noise = noise_x16(dhist, h * (w - 2) + w * (h - 2))
    noise9 = noise9_x16(f)

    # clip: clipped block means
    lim = bsum // bcount + ((CLIP_X16 * noise) >> 8)
    below = f <= lim[by][:, bx]
    csum = _block_sums(np.where(below, f, 0), by, bx)
    ccnt = _block_sums(below.astype(np.int32), by, bx)
    bg = np.where(ccnt > 0, csum // np.maximum(ccnt, 1), bsum // bcount)
    csum_t, ccnt_t = int(csum.sum()), int(ccnt.sum())

    # cands: above threshold, (value, 3x3 sum) strictly above every neighbour's
    peak = (PEAK_X16 * noise) >> 8
    m = MARGIN
    s9_all = np.zeros_like(f)
    s9_all[1:-1, 1:-1] = sum(f[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    # 5x5 sums (the second tie key: a plateau, e.g. a saturated top, whose 3x3 sums tie), defined 2 px in
    s25_all = np.zeros_like(f)
    r5 = f[:, 0 : w - 4] + f[:, 1 : w - 3] + f[:, 2 : w - 2] + f[:, 3 : w - 1] + f[:, 4:w]  # separable: rows of 5
    s25_all[2:-2, 2:-2] = r5[0 : h - 4] + r5[1 : h - 3] + r5[2 : h - 2] + r5[3 : h - 1] + r5[4:h]
    core = f[m : h - m, m : w - m]
    s_core = s9_all[m : h - m, m : w - m]
    s25_core = s25_all[m : h - m, m : w - m]
    # the 5x5 sums decide a tie of value and 3x3 sum only >= TIE25_MARGIN px inside (every neighbour's 5x5 inside)
    yy, xx = np.arange(m, h - m), np.arange(m, w - m)
    inner = (((yy >= TIE25_MARGIN) & (yy < h - TIE25_MARGIN))[:, None]
             & ((xx >= TIE25_MARGIN) & (xx < w - TIE25_MARGIN))[None, :])
    ok = np.ones_like(core, dtype=bool)
    for dy, dx in _NEIGHBOURS:
        u = f[m + dy : h - m + dy, m + dx : w - m + dx]
        su = s9_all[m + dy : h - m + dy, m + dx : w - m + dx]
        s25u = s25_all[m + dy : h - m + dy, m + dx : w - m + dx]
        ok &= (core > u) | ((core == u) & ((s_core > su) | ((s_core == su) & inner & (s25_core > s25u))))
    bg_core = bg[by][:, bx][m : h - m, m : w - m]
    # no brighter pixel at distance 2 with no dip on the way (the pixel between it and the candidate keeps 3/4 of
    # the candidate's amplitude): a broad spot's noise makes no second candidate, a faint spot beside a bright one
    # still is one. Evaluated at the pixels that can be candidates (above the first threshold; retries only raise it).
    cy, cx = np.nonzero(ok & (core > bg_core + peak))
    py, px = cy + m, cx + m
    v = f[py, px]
    bgp = bg_core[cy, cx]
    amp4 = 3 * (v - bgp)
    keep = np.ones(len(cy), dtype=bool)
    for dy, dx in _RING:
        my, mx = (dy // 2 if abs(dy) == 2 else 0), (dx // 2 if abs(dx) == 2 else 0)
        keep &= (v >= f[py + dy, px + dx]) | (4 * (f[py + my, px + mx] - bgp) < amp4)
    ok[cy[~keep], cx[~keep]] = False
    step = peak >> 2 if peak >= 4 else 1
    for _ in range(CAND_RETRIES + 1):
        sel = ok & (core > bg_core + peak)
        ys, xs = np.nonzero(sel)
        if len(ys) <= maxc:
            break
        peak += step
    ys, xs = ys[:maxc] + m, xs[:maxc] + m

    # select: tests, then the N largest keys; a key tied across the cut is left out entirely
    bgc = bg[by[ys], bx[xs]].astype(np.int64)
    amp = f[ys, xs] - bgc
    s9 = s9_all[ys, xs].astype(np.int64) - 9 * bgc
    good = (s9 * 256 >= SUM_X16 * noise9) & ((s9 - amp) * 16 >= SPIKE_X16 * amp)
    found = int(np.count_nonzero(good))
    idx = np.flatnonzero(good)
    key = s9[idx] * 256 + amp[idx]
    srt = np.argsort(-key, kind="stable")
    top = idx[srt[:max_spots]]
    if len(idx) > max_spots:
        cut = key[srt[max_spots]]
        top = top[s9[top] * 256 + amp[top] > cut]
    ys, xs, bgc, amp, s9 = ys[top], xs[top], bgc[top], amp[top], s9[top]

    # centroid: Gaussian (log-parabola) interpolation on the 3x3 window's column and row sums
    def tap(dy, dx):
        return f[ys + dy, xs + dx].astype(np.int64) - bgc

    col = [tap(-1, dx) + tap(0, dx) + tap(1, dx) for dx in (-1, 0, 1)]
    row = [tap(dy, -1) + tap(dy, 0) + tap(dy, 1) for dy in (-1, 0, 1)]
    col[1] = s9 - col[0] - col[2]
    row[1] = s9 - row[0] - row[2]
    dx, cx = _interp(*col)
    dy, cy = _interp(*row)
    # spots wider than the 3x3 window: the 5x5 window's column / row sums at -2, 0, +2 (curvature / 4)
    col5 = [sum(tap(t, o) for t in (-2, -1, 0, 1, 2)) for o in (-2, 0, 2)]
    row5 = [sum(tap(o, t) for t in (-2, -1, 0, 1, 2)) for o in (-2, 0, 2)]
    dx5, cx5 = _interp2(*col5)
    dy5, cy5 = _interp2(*row5)
    c5 = cx5 + cy5
    broad = cx + cy < BROAD_CV
    dx = np.where(broad, dx5, dx)
    dy = np.where(broad, dy5, dy)
    curv = np.where(broad, np.where(c5 >= 0, c5 >> 2, -1), cx + cy)
    # a saturated peak (a clipped top: no log-parabola fits it): the first moment of the 5x5 window's squared
    # excess over the background, rounded half away from zero, clamped to +-1 px
    sat_pk = f[ys, xs] >= SAT_LEVEL
    if sat_pk.any():
        a2 = [[np.maximum(tap(t, o), 0) ** 2 for o in range(-2, 3)] for t in range(-2, 3)]
        wsum = sum(a2[t][o] for t in range(5) for o in range(5))
        mx = sum((o - 2) * a2[t][o] for t in range(5) for o in range(5))
        my = sum((t - 2) * a2[t][o] for t in range(5) for o in range(5))
        safe = np.maximum(wsum, 1)
        sx = np.clip(np.sign(mx) * ((2 * SPOT_SCALE * np.abs(mx) + safe) // (2 * safe)), -INTERP_MAX, INTERP_MAX)
        sy = np.clip(np.sign(my) * ((2 * SPOT_SCALE * np.abs(my) + safe) // (2 * safe)), -INTERP_MAX, INTERP_MAX)
        dx = np.where(sat_pk & (wsum > 0), sx, dx)
        dy = np.where(sat_pk & (wsum > 0), sy, dy)
    xq = SPOT_SCALE * xs + dx
    yq = SPOT_SCALE * ys + dy
    # focus evidence: unsaturated spots with a non-negative curvature
    unsat = (f[ys, xs] < SAT_LEVEL) & (curv >= 0)

    # pack
    n = len(ys)
    nc = int(unsat.sum())
    focus = int(curv[unsat].sum()) // (2 * nc) if nc else 0
    fmax = int(s9.max()) if n else 1
    fu8 = np.maximum((s9 * 510 + fmax) // (2 * fmax), 1)
    rec_order = np.lexsort((xq, yq, -fu8))
    recs = np.zeros((n, 5), dtype=np.uint8)
    xo, yo, fo = xq[rec_order], yq[rec_order], fu8[rec_order]
    recs[:, 0], recs[:, 1] = xo >> 8, xo & 0xFF
    recs[:, 2], recs[:, 3] = yo >> 8, yo & 0xFF
    recs[:, 4] = fo
    amed = int(np.sort(amp)[::-1][n >> 1]) if n else 0
    npix = w * h
    q = {
        0: found,
        1: amed * 256 // noise if n else 0,
        2: focus,
        3: sat * 1000 // npix,
        4: total // npix,
        5: csum_t // ccnt_t if ccnt_t else total // npix,
        6: noise,
    }
    # each spot's 3x3 sum over the measured noise of a 3x3 sum (the significance test's statistic; host only)
    sig = s9[rec_order] * 16.0 / noise9
    return recs.tobytes(), q, guidance(q), (xo / SPOT_SCALE, yo / SPOT_SCALE, fo, sig)
