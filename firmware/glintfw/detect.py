"""Spot detector: find the coating's bright particles in one grayscale frame.

``Detector(width, height, max_spots=64)`` allocates every buffer once;
``detect(frame)`` takes ``width*height`` bytes of 8-bit grayscale and returns
``(spots, quality, guidance)``: spot records exactly as the scan descriptor
carries them (x:u16be, y:u16be in 1/32 px, pixel centres at multiples of 32,
flux:u8, brightest = 255, sorted by descending flux, ties by ascending y then x),
the quality map (descriptor Q_* keys) and a guidance code (glintcore.proto GD_*).

Integer arithmetic only, so the result is identical on every port and on the
host twin (glint.imaging.twin). The stages are kernels with the same
signatures as their viper versions in glintfw.detect_viper, which the Detector
uses when the port has the viper emitter (boards and the Unix port, not WebAssembly);
k_blocks does the per-block bookkeeping between the pixel passes:

1. stats: frame total, saturated pixels, histogram of |v(x) - v(x-2)| and of
   |v(y) - v(y-2)| (robust noise: the median is 0.954 sigma; distance 2 because
   JPEG smooths neighbours), per-block sums;
   noise9: the noise of a 3x3 sum, measured, not assumed white (JPEG and
   demosaicing correlate neighbours: 3 sigma underestimates it up to 1.7x): the
   histogram of differences between neighbouring disjoint 3x3 tiles;
2. clip:  per block, the mean of pixels at most CLIP sigma above the block mean
   (the background with the particles left out);
3. cands: pixels above background + PEAK sigma whose (value, 3x3 sum) is strictly
   larger than that of each of their 8 neighbours (a tie on both, e.g. on a saturated
   plateau: the 5x5 sums decide, strictly, at least TIE25_MARGIN px inside), and with no brighter pixel at
   distance 2 unless the pixel between dips below 3/4 of the amplitude (one
   candidate per broad spot, not one per noise bump on its top; a faint spot
   beside a bright one keeps its own);
4. select: the 3x3-sum significance test (SUM sigma of the measured 3x3-sum
   noise, at least 3x the 1 DN floor) and the hot-pixel test (the 8 neighbours
   carry >= 12/16 of the peak: optics of PSF sigma >= 0.5 px give >= 1.5, real
   stars >= 0.9, JPEG-smeared hot pixels 0.4-1.4); the N brightest
   (3x3 sum above background, then peak amplitude) are kept;
5. centroid: sub-pixel position by Gaussian (log-parabola) interpolation of the
   3x3 window's column and row sums, with an integer log2 (table + linear
   interpolation); the peak of a Gaussian spot without a windowed centroid's bias;
   a spot wider than the window (3x3 curvature x + y < BROAD_CV, sigma > ~1.5 px)
   is interpolated on the 5x5 window's column and row sums at -2, 0, +2, and its
   curvature (for Q_FOCUS) is that one / 4; a saturated peak (a clipped top, which no
   log-parabola fits) is placed by the first moment of the 5x5 window's squared excess over
   the background;
6. pack: flux byte, descriptor record order, median amplitude, focus sums.

Every orientation alike: the result on a frame rotated by 90/180/270 degrees or
mirrored is exactly the moved result (in fixed point; tests/host/test_equivariance.py).
So no rule may depend on scan order or on the side of the frame: the background
blocks and the noise tiles are laid out symmetrically about the frame centre
(``block_edges``, ``tile_grid``); the noise histograms take both axes; the local-maximum test is strict on a key that
does not depend on position, so a tie (a plateau with equal sums) yields no
candidate rather than the first pixel in raster order; sub-pixel offsets round
half away from zero; when the N-th and the (N+1)-th brightest tie, all spots of
that key are left out (fewer than N rather than a scan-order choice); the median
amplitude is a median of values. Only the record order (the descriptor's) is
positional, and it is a total order on what the spots are.

Quality (descriptor Q_*): Q_SPOTS spots that passed every test (before keeping
N); Q_SNR the median peak amplitude of the kept spots over the noise sigma, x16;
Q_FOCUS the mean log2 curvature per axis of unsaturated kept spots, 1024 *
(log2 e) / sigma_psf**2 ~ 1477 / sigma**2; Q_SAT saturated pixels per mille;
Q_MEAN frame mean; Q_BG background (clipped) mean; Q_NOISE noise sigma x16.
"""

import glintcore  # noqa: F401  (const() shim on CPython)
import sys
from array import array

from micropython import const

from glintcore.guidance import guidance

SPOT_SCALE = const(32)
SPOT_RECORD = const(5)
MAX_SPOTS_DEFAULT = const(64)
MAX_DIM = const(2047)  # x, y * SPOT_SCALE fit u16; the frame total fits 31 bits

# --- tuning (x16 = in 16ths of the noise sigma); glint.imaging.twin mirrors these ---
BLOCK = const(8)  # background blocks of about 8x8 pixels (follow vignetting and dust specks)
MARGIN = const(2)  # no candidates within 2 px of the border (the tie key is a 3x3 sum around a neighbour)
SAT_LEVEL = const(250)  # a pixel at or above this level counts as saturated
CLIP_X16 = const(32)  # background: pixels <= block mean + 2 sigma
PEAK_X16 = const(40)  # candidate: peak > background + 2.5 sigma
SUM_X16 = const(88)  # accept: 3x3 sum above background >= 5.5 sigma of a 3x3 sum (measured: noise9)
SPIKE_X16 = const(12)  # accept: neighbours carry >= 12/16 of the peak (rejects hot pixels, JPEG-smeared ones too)
INTERP_MAX = const(32)  # sub-pixel offset clamp: +-1 px (in 1/SPOT_SCALE)
BROAD_CV = const(1312)  # 3x3 log2 curvature x + y below this (sigma > ~1.5 px): centroid from the 5x5 window
NOISE_MIN_X16 = const(16)  # noise floor: 1 DN
MAD_TO_SIGMA_X1000 = const(1048)  # sigma = median|d| / 0.954 for d = difference of two pixels
CAND_RETRIES = const(16)  # candidate list full: raise the threshold by PEAK/4 sigma, at most this often
TIE25_MARGIN = const(3)  # a (value, 3x3 sum) tie is broken on the 5x5 sums this far inside (every 5x5 in the frame)

# slots of the int32 ``work`` array shared with the kernels: a header, the noise histogram, the candidates
G_W = const(0)
G_H = const(1)
G_TOTAL = const(2)
G_SAT = const(3)
G_NCAND = const(4)  # candidates found (may exceed G_MAXC: then only G_MAXC are stored)
G_MAXC = const(5)
G_NMAX = const(6)  # spots to keep
G_SUMMIN = const(7)  # 256 x the least 3x3 sum above background
G_FOUND = const(8)
G_KEPT = const(9)
G_AMED = const(10)  # median amplitude of the kept spots
G_CSUM = const(11)  # focus: sum of the log2 curvatures of unsaturated kept spots
G_CN = const(12)  # focus: their count
G_TOX = const(13)  # noise tiles: first column, tiles across, first row, tiles down
G_TNX = const(14)
G_TOY = const(15)
G_TNY = const(16)
G_NB = const(17)  # blocks
G_ADD = const(18)  # k_blocks: what to add (clip margin, peak threshold, threshold step)
G_BGSUM = const(19)  # background: sum and count of the clipped pixels of every block
G_BGCNT = const(20)
G_SCR = const(24)  # 12 scratch slots (centroid: six sums, six logs)
G_HIST = const(40)  # 256 bins: |pixel differences|
G_HIST9 = const(296)  # 256 bins: |3x3 tile sum differences| (clamped to 255)
G_CAND = const(552)  # candidate pairs (pixel index, block offset)
# per-block records of the ``blocks`` array (stride 4)
B_SUM = const(0)  # block sum (stats), then the background (after clip)
B_LIM = const(1)  # clip limit (clip), then the candidate threshold (cands)
B_CSUM = const(2)
B_CCNT = const(3)
B_STRIDE = const(4)
# kept-spot records of the ``kept`` array (stride 8), in descending key order
K_KEY = const(0)  # 256 x (3x3 sum) + amplitude; after pack: the flux byte
K_S9 = const(1)
K_AMP = const(2)
K_I = const(3)
K_BG = const(4)
K_X = const(5)
K_Y = const(6)
K_CURV = const(7)  # 1 + log2 curvature x + y; 0: saturated peak or negative curvature (no focus evidence)
K_STRIDE = const(8)

MAX_CANDIDATES_MIN = const(1024)

# round(1024 * log2(1 + i / 32)) for i = 0..32
LOG2_FRAC = (
    0, 45, 90, 132, 174, 214, 254, 292, 330, 366, 402, 436, 470, 504, 536, 568, 599,
    629, 659, 689, 717, 745, 773, 800, 827, 853, 879, 904, 929, 953, 977, 1001, 1024,
)
KERNELS = ("blocks", "stats", "noise9", "clip", "cands", "select", "centroid", "pack")
BK_ZERO = const(0)  # k_blocks modes
BK_LIM = const(1)
BK_BG = const(2)
BK_RAISE = const(3)


def block_edges(n):
    """Block index of each of ``n`` pixels along one axis, and the block count.

    About BLOCK pixels a block, laid out symmetrically about the centre (pixel p and
    pixel n-1-p sit in mirrored blocks), so mirrored or rotated frames see mirrored
    blocks; a multiple of BLOCK gives the plain grid from the corner.
    """
    nb = (n + BLOCK // 2) // BLOCK
    if nb < 1:
        nb = 1
    if n & 1 and not nb & 1:
        nb += 1  # an odd length has a centre pixel: it needs a centre block
    edges = [0] * (nb + 1)
    for k in range(nb + 1):
        if 2 * k <= nb:
            edges[k] = (2 * k * n + nb) // (2 * nb)
    for k in range(nb + 1):
        if 2 * k > nb:
            edges[k] = n - edges[nb - k]
    idx = [0] * n
    k = 0
    for p in range(n):
        while p >= edges[k + 1]:
            k += 1
        idx[p] = k
    return idx, nb


def tile_grid(n):
    """(first pixel, tile count) of the disjoint 3-pixel tiles along an axis of ``n`` pixels, centred
    (the margins on both sides are equal, so mirrored frames see mirrored tiles)."""
    nt = n // 3
    if (n - 3 * nt) & 1:
        nt -= 1
    return (n - 3 * nt) >> 1, nt


# ----------------------------------------------------------------------------------
# Kernels: pure-Python twins of glintfw.detect_viper (same loops, same integer results).


def k_blocks(work, blocks, bcount, mode):
    """Per-block bookkeeping between the pixel passes (G_NB blocks; ``mode`` BK_*; G_ADD the value to add).

    BK_ZERO: clear the blocks, the histograms and the background totals; BK_LIM: clip limit = block
    mean + G_ADD; BK_BG: background = mean of the clipped pixels (the block mean if none), threshold =
    background + G_ADD, totals into G_BGSUM/G_BGCNT; BK_RAISE: threshold += G_ADD.
    """
    nb = work[G_NB]
    add = work[G_ADD]
    if mode == BK_ZERO:
        k = 0
        while k < B_STRIDE * nb:
            blocks[k] = 0
            k += 1
        k = G_HIST
        while k < G_CAND:
            work[k] = 0
            k += 1
        work[G_BGSUM] = 0
        work[G_BGCNT] = 0
        return
    r = 0
    k = 0
    while k < nb:
        if mode == BK_LIM:
            blocks[r + B_LIM] = blocks[r + B_SUM] // bcount[k] + add
        elif mode == BK_BG:
            c = blocks[r + B_CCNT]
            s = blocks[r + B_CSUM]
            if c > 0:
                bg = s // c
            else:
                bg = blocks[r + B_SUM] // bcount[k]
            work[G_BGSUM] += s
            work[G_BGCNT] += c
            blocks[r + B_SUM] = bg
            blocks[r + B_LIM] = bg + add
        else:
            blocks[r + B_LIM] += add
        r += B_STRIDE
        k += 1


def k_stats(frame, work, bidx, blocks):
    """Total and saturated count, histogram of |v(x) - v(x-2)| and |v(y) - v(y-2)|, block sums (B_SUM)."""
    w = work[G_W]
    h = work[G_H]
    w2 = 2 * w
    total = 0
    sat = 0
    i = 0
    y = 0
    while y < h:
        brow = bidx[w + y]
        x = 0
        while x < w:
            v = frame[i]
            if x >= 2:
                d = v - frame[i - 2]
                if d < 0:
                    d = -d
                work[G_HIST + d] += 1
            if y >= 2:
                d = v - frame[i - w2]
                if d < 0:
                    d = -d
                work[G_HIST + d] += 1
            blocks[brow + bidx[x]] += v
            total += v
            if v >= SAT_LEVEL:
                sat += 1
            i += 1
            x += 1
        y += 1
    work[G_TOTAL] = total
    work[G_SAT] = sat


def k_noise9(frame, work, tbuf):
    """Histogram (G_HIST9) of |difference| between neighbouring 3x3 tile sums, across and down; ``tbuf``: a tile row."""
    w = work[G_W]
    ox = work[G_TOX]
    nx = work[G_TNX]
    oy = work[G_TOY]
    ny = work[G_TNY]
    ty = 0
    while ty < ny:
        i = (oy + 3 * ty) * w + ox
        left = 0
        tx = 0
        while tx < nx:
            j = i + w
            k = j + w
            s = (
                frame[i] + frame[i + 1] + frame[i + 2] + frame[j] + frame[j + 1] + frame[j + 2]
                + frame[k] + frame[k + 1] + frame[k + 2]
            )
            if tx > 0:
                d = s - left
                if d < 0:
                    d = -d
                if d > 255:
                    d = 255
                work[G_HIST9 + d] += 1
            if ty > 0:
                d = s - tbuf[tx]
                if d < 0:
                    d = -d
                if d > 255:
                    d = 255
                work[G_HIST9 + d] += 1
            tbuf[tx] = s
            left = s
            i += 3
            tx += 1
        ty += 1


def k_clip(frame, work, bidx, blocks):
    """Per block, sum (B_CSUM) and count (B_CCNT) of pixels <= its B_LIM."""
    w = work[G_W]
    h = work[G_H]
    i = 0
    y = 0
    while y < h:
        brow = bidx[w + y]
        x = 0
        while x < w:
            v = frame[i]
            b = brow + bidx[x]
            if v <= blocks[b + B_LIM]:
                blocks[b + B_CSUM] += v
                blocks[b + B_CCNT] += 1
            i += 1
            x += 1
        y += 1


def k_cands(frame, work, bidx, blocks):
    """Pixels > their block's B_LIM whose (value, 3x3 sum) beats each neighbour's strictly, in raster order."""
    w = work[G_W]
    h = work[G_H]
    maxc = work[G_MAXC]
    n = 0
    y = MARGIN
    while y < h - MARGIN:
        brow = bidx[w + y]
        i = y * w + MARGIN
        x = MARGIN
        while x < w - MARGIN:
            v = frame[i]
            b = brow + bidx[x]
            if v > blocks[b + B_LIM]:
                j = i - w
                k = i + w
                if (
                    v >= frame[j - 1] and v >= frame[j] and v >= frame[j + 1] and v >= frame[i - 1]
                    and v >= frame[i + 1] and v >= frame[k - 1] and v >= frame[k] and v >= frame[k + 1]
                ):
                    ok = 1
                    if (
                        v == frame[j - 1] or v == frame[j] or v == frame[j + 1] or v == frame[i - 1]
                        or v == frame[i + 1] or v == frame[k - 1] or v == frame[k] or v == frame[k + 1]
                    ):
                        # a tie on the value: the 3x3 sum decides, strictly; a tie on that too (a plateau,
                        # e.g. a saturated top): the 5x5 sum, strictly, TIE25_MARGIN px inside (a full
                        # tie, or nearer the border: no candidate)
                        s = (
                            frame[j - 1] + frame[j] + frame[j + 1] + frame[i - 1] + v + frame[i + 1]
                            + frame[k - 1] + frame[k] + frame[k + 1]
                        )
                        inner = TIE25_MARGIN <= x < w - TIE25_MARGIN and TIE25_MARGIN <= y < h - TIE25_MARGIN
                        s25 = -1
                        dy = -1
                        while dy <= 1:
                            dx = -1
                            while dx <= 1:
                                m = i + dy * w + dx
                                if m != i and frame[m] == v:
                                    p = m - w
                                    q = m + w
                                    t = (
                                        frame[p - 1] + frame[p] + frame[p + 1] + frame[m - 1] + v + frame[m + 1]
                                        + frame[q - 1] + frame[q] + frame[q + 1]
                                    )
                                    if t > s or (t == s and not inner):
                                        ok = 0
                                    elif t == s:
                                        if s25 < 0:
                                            s25 = 0
                                            p = i - 2 * w - 2
                                            ey = 0
                                            while ey < 5:
                                                s25 += frame[p] + frame[p + 1] + frame[p + 2] + frame[p + 3] + frame[p + 4]
                                                p += w
                                                ey += 1
                                        t = 0
                                        p = m - 2 * w - 2
                                        ey = 0
                                        while ey < 5:
                                            t += frame[p] + frame[p + 1] + frame[p + 2] + frame[p + 3] + frame[p + 4]
                                            p += w
                                            ey += 1
                                        if t >= s25:
                                            ok = 0
                                dx += 1
                            dy += 1
                    if ok:
                        # and no brighter pixel at distance 2 without a dip on the way (the pixel between keeps
                        # 3/4 of the amplitude): a broad spot's noise makes no second candidate, while a faint
                        # spot beside a bright one still is one
                        bg = blocks[b + B_SUM]
                        a3 = 3 * (v - bg)
                        dy = -2
                        while dy <= 2:
                            dx = -2
                            while dx <= 2:
                                if (dy == 2 or dy == -2 or dx == 2 or dx == -2) and frame[i + dy * w + dx] > v:
                                    my = dy >> 1 if dy == 2 or dy == -2 else 0
                                    mx = dx >> 1 if dx == 2 or dx == -2 else 0
                                    if 4 * (frame[i + my * w + mx] - bg) >= a3:
                                        ok = 0
                                dx += 1
                            dy += 1
                    if ok:
                        if n < maxc:
                            work[G_CAND + 2 * n] = i
                            work[G_CAND + 2 * n + 1] = b
                        n += 1
            i += 1
            x += 1
        y += 1
    work[G_NCAND] = n


def k_select(frame, work, blocks, kept):
    """Significance and hot-pixel tests; keep the G_NMAX largest keys, none of a key tied across the cut."""
    w = work[G_W]
    nc = work[G_NCAND]
    if nc > work[G_MAXC]:
        nc = work[G_MAXC]
    nmax = work[G_NMAX]
    summin = work[G_SUMMIN]
    found = 0
    n = 0
    cut = 0  # the largest key left out (every key is > 0)
    c = 0
    while c < nc:
        i = work[G_CAND + 2 * c]
        bg = blocks[work[G_CAND + 2 * c + 1] + B_SUM]
        c += 1
        amp = frame[i] - bg
        j = i - w
        k = i + w
        s9 = (
            frame[j - 1] + frame[j] + frame[j + 1] + frame[i - 1] + frame[i] + frame[i + 1]
            + frame[k - 1] + frame[k] + frame[k + 1] - 9 * bg
        )
        if s9 * 256 < summin or (s9 - amp) * 16 < SPIKE_X16 * amp:
            continue
        found += 1
        key = s9 * 256 + amp
        if n == nmax:
            last = kept[(nmax - 1) * K_STRIDE]
            if key <= last:
                if key > cut:
                    cut = key
                continue
            if last > cut:
                cut = last
            pos = nmax - 1
        else:
            pos = n
            n += 1
        r = pos * K_STRIDE
        while pos > 0 and kept[r - K_STRIDE] < key:
            kept[r] = kept[r - K_STRIDE]
            kept[r + 1] = kept[r - K_STRIDE + 1]
            kept[r + 2] = kept[r - K_STRIDE + 2]
            kept[r + 3] = kept[r - K_STRIDE + 3]
            kept[r + 4] = kept[r - K_STRIDE + 4]
            r -= K_STRIDE
            pos -= 1
        kept[r + K_KEY] = key
        kept[r + K_S9] = s9
        kept[r + K_AMP] = amp
        kept[r + K_I] = i
        kept[r + K_BG] = bg
    while n > 0 and kept[(n - 1) * K_STRIDE] == cut:
        n -= 1
    work[G_FOUND] = found
    work[G_KEPT] = n


def k_centroid(frame, work, kept, tab):
    """Sub-pixel x, y (1/SPOT_SCALE px) and log2 curvature of each kept spot; ``tab`` is LOG2_FRAC."""
    w = work[G_W]
    n = work[G_KEPT]
    r = 0
    while r < n * K_STRIDE:
        i = kept[r + K_I]
        bg3 = 3 * kept[r + K_BG]
        s9 = kept[r + K_S9]
        y = i // w
        x = i - y * w
        j = i - w
        k = i + w
        c0 = frame[j - 1] + frame[i - 1] + frame[k - 1] - bg3
        c2 = frame[j + 1] + frame[i + 1] + frame[k + 1] - bg3
        r0 = frame[j - 1] + frame[j] + frame[j + 1] - bg3
        r2 = frame[k - 1] + frame[k] + frame[k + 1] - bg3
        # the six sums (values < 1 count as 1, as in ilog2_q10; nothing negative goes into an array)
        c1 = s9 - c0 - c2
        work[G_SCR] = c0 if c0 > 0 else 1
        work[G_SCR + 1] = c1 if c1 > 0 else 1
        work[G_SCR + 2] = c2 if c2 > 0 else 1
        c1 = s9 - r0 - r2
        work[G_SCR + 3] = r0 if r0 > 0 else 1
        work[G_SCR + 4] = c1 if c1 > 0 else 1
        work[G_SCR + 5] = r2 if r2 > 0 else 1
        m = 0
        while m < 6:  # ilog2_q10, inline as in the viper kernel
            v = work[G_SCR + m]
            e = 0
            while v >> (e + 1):
                e += 1
            if e < 5:
                lg = 1024 * e + tab[(v << (5 - e)) - 32]
            else:
                sh = e - 5
                t = v >> sh
                lo = tab[t - 32]
                lg = 1024 * e + lo + (((tab[t - 31] - lo) * (v - (t << sh))) >> sh)
            work[G_SCR + 6 + m] = lg
            m += 1
        curv = 0
        m = 0
        while m < 2:
            la = work[G_SCR + 6 + 3 * m]
            lb = work[G_SCR + 7 + 3 * m]
            lc = work[G_SCR + 8 + 3 * m]
            cv = 2 * lb - la - lc
            d = 0
            if cv > 0:  # offset = 32 (lc - la) / (2 cv), rounded half away from zero, clamped to +-1 px
                num = SPOT_SCALE * (lc - la)
                if num < 0:
                    d = -((-2 * num + 2 * cv) // (4 * cv))
                else:
                    d = (2 * num + 2 * cv) // (4 * cv)
                if d > INTERP_MAX:
                    d = INTERP_MAX
                if d < -INTERP_MAX:
                    d = -INTERP_MAX
            if m == 0:
                kept[r + K_X] = SPOT_SCALE * x + d
            else:
                kept[r + K_Y] = SPOT_SCALE * y + d
            curv += cv
            m += 1
        if curv < BROAD_CV:
            # a spot wider than the 3x3 window: the same interpolation on the 5x5 window's column and row
            # sums two pixels apart (at -2, 0, +2), which see the spot's fall-off; curvature / 4 (per px^2)
            pa = i - 2 * w
            pe = i + 2 * w
            bg5 = 5 * kept[r + K_BG]
            m = 0
            while m < 3:  # column sums at x-2, x, x+2 and row sums at y-2, y, y+2, five pixels each
                o = 2 * m - 2
                c0 = frame[pa + o] + frame[j + o] + frame[i + o] + frame[k + o] + frame[pe + o] - bg5
                q = i + o * w
                r0 = frame[q - 2] + frame[q - 1] + frame[q] + frame[q + 1] + frame[q + 2] - bg5
                work[G_SCR + m] = c0 if c0 > 0 else 1
                work[G_SCR + 3 + m] = r0 if r0 > 0 else 1
                m += 1
            m = 0
            while m < 6:  # ilog2_q10, inline
                v = work[G_SCR + m]
                e = 0
                while v >> (e + 1):
                    e += 1
                if e < 5:
                    lg = 1024 * e + tab[(v << (5 - e)) - 32]
                else:
                    sh = e - 5
                    t = v >> sh
                    lo = tab[t - 32]
                    lg = 1024 * e + lo + (((tab[t - 31] - lo) * (v - (t << sh))) >> sh)
                work[G_SCR + 6 + m] = lg
                m += 1
            curv = 0
            m = 0
            while m < 2:
                la = work[G_SCR + 6 + 3 * m]
                lb = work[G_SCR + 7 + 3 * m]
                lc = work[G_SCR + 8 + 3 * m]
                cv = 2 * lb - la - lc
                d = 0
                if cv > 0:  # offset = 2 x 32 (lc - la) / (2 cv), rounded half away from zero, clamped to +-1 px
                    num = SPOT_SCALE * (lc - la)
                    if num < 0:
                        d = -((cv - 2 * num) // (2 * cv))
                    else:
                        d = (2 * num + cv) // (2 * cv)
                    if d > INTERP_MAX:
                        d = INTERP_MAX
                    if d < -INTERP_MAX:
                        d = -INTERP_MAX
                if m == 0:
                    kept[r + K_X] = SPOT_SCALE * x + d
                else:
                    kept[r + K_Y] = SPOT_SCALE * y + d
                curv += cv
                m += 1
            curv = curv >> 2 if curv >= 0 else -1
        if frame[i] >= SAT_LEVEL:
            # a saturated peak (a clipped top, no log-parabola fits it): the first moment of the 5x5 window's
            # squared excess over the background, rounded half away from zero, clamped to +-1 px
            bg = kept[r + K_BG]
            ws = 0
            mx = 0
            my = 0
            p = i - 2 * w - 2
            ey = -2
            while ey <= 2:
                ex = -2
                while ex <= 2:
                    a = frame[p + ex + 2] - bg
                    if a > 0:
                        a = a * a
                        ws += a
                        mx += ex * a
                        my += ey * a
                    ex += 1
                p += w
                ey += 1
            m = 0
            while m < 2 and ws > 0:
                num = mx if m == 0 else my
                if num < 0:
                    d = -((ws - 2 * SPOT_SCALE * num) // (2 * ws))
                else:
                    d = (2 * SPOT_SCALE * num + ws) // (2 * ws)
                if d > INTERP_MAX:
                    d = INTERP_MAX
                if d < -INTERP_MAX:
                    d = -INTERP_MAX
                if m == 0:
                    kept[r + K_X] = SPOT_SCALE * x + d
                else:
                    kept[r + K_Y] = SPOT_SCALE * y + d
                m += 1
        kept[r + K_CURV] = curv + 1 if curv >= 0 and frame[i] < SAT_LEVEL else 0
        r += K_STRIDE


def k_pack(work, kept, order, out):
    """Flux bytes (brightest = 255), records in descriptor order into ``out``, median amplitude, focus sums."""
    n = work[G_KEPT]
    fmax = kept[K_S9] if n else 1
    r = 0
    while r < n * K_STRIDE:
        f = (kept[r + K_S9] * 510 + fmax) // (2 * fmax)
        kept[r + K_KEY] = f if f > 0 else 1
        r += K_STRIDE
    k = 0
    while k < n:  # insertion sort of record indices by (flux desc, y asc, x asc)
        rk = k * K_STRIDE
        fk = kept[rk]
        yk = kept[rk + K_Y]
        xk = kept[rk + K_X]
        m = k
        while m > 0:
            ra = order[m - 1] * K_STRIDE
            fa = kept[ra]
            if fa > fk or (fa == fk and (kept[ra + K_Y] < yk or (kept[ra + K_Y] == yk and kept[ra + K_X] <= xk))):
                break
            order[m] = order[m - 1]
            m -= 1
        order[m] = k
        k += 1
    o = 0
    k = 0
    while k < n:
        r = order[k] * K_STRIDE
        xq = kept[r + K_X]
        yq = kept[r + K_Y]
        out[o] = xq >> 8
        out[o + 1] = xq & 0xFF
        out[o + 2] = yq >> 8
        out[o + 3] = yq & 0xFF
        out[o + 4] = kept[r]
        o += SPOT_RECORD
        k += 1
    # the amplitude ranked n // 2 in descending order (a median of values, whatever the positions)
    med = 0
    half = n >> 1
    k = 0
    while k < n:
        a = kept[k * K_STRIDE + K_AMP]
        gt = 0
        ge = 0
        m = 0
        while m < n:
            b = kept[m * K_STRIDE + K_AMP]
            if b > a:
                gt += 1
            if b >= a:
                ge += 1
            m += 1
        if gt <= half and half < ge:
            med = a
            break
        k += 1
    work[G_AMED] = med
    sc = 0
    nc = 0
    r = 0
    while r < n * K_STRIDE:
        if kept[r + K_CURV] > 0:
            sc += kept[r + K_CURV] - 1
            nc += 1
        r += K_STRIDE
    work[G_CSUM] = sc
    work[G_CN] = nc


_PURE = (k_blocks, k_stats, k_noise9, k_clip, k_cands, k_select, k_centroid, k_pack)


def _load_kernels(use_viper):
    """Viper kernels when asked (True) or available (None, MicroPython only); else the pure twins."""
    if use_viper is False or (use_viper is None and sys.implementation.name != "micropython"):
        return _PURE
    try:
        from glintfw import detect_viper as kv

        return (kv.k_blocks, kv.k_stats, kv.k_noise9, kv.k_clip, kv.k_cands, kv.k_select, kv.k_centroid, kv.k_pack)
    except (ImportError, SyntaxError, ValueError, NotImplementedError, AttributeError):
        # the WebAssembly port (and CPython) have no viper emitter
        if use_viper:
            raise
        return _PURE


class Detector:
    """Spot detector for frames of ``width`` x ``height`` 8-bit pixels; buffers allocated here, once."""

    def __init__(self, width, height, max_spots=MAX_SPOTS_DEFAULT, use_viper=None):
        if max_spots is None:
            max_spots = MAX_SPOTS_DEFAULT
        if width < 8 or height < 8 or width > MAX_DIM or height > MAX_DIM:
            raise ValueError("frame size %dx%d out of range (8..%d)" % (width, height, MAX_DIM))
        if max_spots < 1 or max_spots > 4096:
            raise ValueError("max_spots %d out of range (1..4096)" % max_spots)
        self.width = width
        self.height = height
        self.max_spots = max_spots
        bx, nbx = block_edges(width)
        by, nby = block_edges(height)
        self.nbx = nbx
        self.nby = nby
        nb = nbx * nby
        # block offsets into ``blocks``: bidx[x] for a column, bidx[width + y] for a row
        self.bidx = array("i", [B_STRIDE * b for b in bx] + [B_STRIDE * nbx * b for b in by])
        bw = [0] * nbx
        for b in bx:
            bw[b] += 1
        bh = [0] * nby
        for b in by:
            bh[b] += 1
        self.bcount = array("i", [bh[k // nbx] * bw[k % nbx] for k in range(nb)])
        self.maxc = max(MAX_CANDIDATES_MIN, (width * height) >> 7)
        self.tiles = tile_grid(width) + tile_grid(height)
        self.tbuf = array("i", [0] * self.tiles[1])
        self.work = array("i", [0] * (G_CAND + 2 * self.maxc))
        self.blocks = array("i", [0] * (B_STRIDE * nb))
        self.kept = array("i", [0] * (K_STRIDE * max_spots))
        self.order = array("i", [0] * max_spots)
        self.log2 = array("i", LOG2_FRAC)
        self.out = bytearray(max_spots * SPOT_RECORD)
        self.quality = {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0}
        k = _load_kernels(use_viper)
        (self._blocks, self._stats, self._noise9, self._clip, self._cands, self._select, self._centroid,
         self._pack) = k
        self.n_found = 0  # spots that passed every test (before keeping the N brightest)
        self.n_cands = 0
        self.focus = 0
        self.noise9 = 0  # noise of a 3x3 sum, x16

    def detect(self, frame):
        """Detect spots in ``frame`` (width*height bytes) -> (spots bytes, quality dict, guidance)."""
        w = self.width
        h = self.height
        if len(frame) < w * h:
            raise ValueError("frame smaller than width*height")
        work = self.work
        blocks = self.blocks
        bcount = self.bcount
        bidx = self.bidx
        work[G_W] = w
        work[G_H] = h
        work[G_MAXC] = self.maxc
        work[G_NMAX] = self.max_spots
        work[G_TOX], work[G_TNX], work[G_TOY], work[G_TNY] = self.tiles
        work[G_NB] = len(bcount)
        self._blocks(work, blocks, bcount, BK_ZERO)
        self._stats(frame, work, bidx, blocks)
        noise = noise_x16(work, G_HIST, h * (w - 2) + w * (h - 2))
        self._noise9(frame, work, self.tbuf)
        t = self.tiles
        noise9 = noise_x16(work, G_HIST9, t[3] * (t[1] - 1) + t[1] * (t[3] - 1))
        if noise9 < 3 * NOISE_MIN_X16:
            noise9 = 3 * NOISE_MIN_X16
        self.noise9 = noise9
        work[G_ADD] = (CLIP_X16 * noise) >> 8
        self._blocks(work, blocks, bcount, BK_LIM)
        self._clip(frame, work, bidx, blocks)
        peak = (PEAK_X16 * noise) >> 8
        work[G_ADD] = peak
        self._blocks(work, blocks, bcount, BK_BG)
        csum = work[G_BGSUM]
        ccount = work[G_BGCNT]
        self._cands(frame, work, bidx, blocks)
        tries = 0
        work[G_ADD] = peak >> 2 if peak >= 4 else 1
        while work[G_NCAND] > self.maxc and tries < CAND_RETRIES:
            # too many candidates to keep (a noisy or textured frame): raise the threshold everywhere,
            # rather than keep the first ones in scan order
            self._blocks(work, blocks, bcount, BK_RAISE)
            self._cands(frame, work, bidx, blocks)
            tries += 1
        self.n_cands = work[G_NCAND]
        work[G_SUMMIN] = SUM_X16 * noise9
        self._select(frame, work, blocks, self.kept)
        self._centroid(frame, work, self.kept, self.log2)
        self._pack(work, self.kept, self.order, self.out)
        n = work[G_KEPT]
        self.n_found = work[G_FOUND]
        self.focus = work[G_CSUM] // (2 * work[G_CN]) if work[G_CN] else 0
        npix = w * h
        q = self.quality
        q[0] = self.n_found
        q[1] = (work[G_AMED] * 256) // noise if n else 0
        q[2] = self.focus
        q[3] = (work[G_SAT] * 1000) // npix
        q[4] = work[G_TOTAL] // npix
        q[5] = csum // ccount if ccount else q[4]
        q[6] = noise
        return bytes(memoryview(self.out)[: n * SPOT_RECORD]), q, guidance(q)


def noise_x16(hist, off, count):
    """Noise sigma x16 from the histogram hist[off:off+256] of |pixel differences| (interpolated median / 0.954)."""
    half = count >> 1
    cum = 0
    k = 0
    while k < 255 and cum + hist[off + k] <= half:
        cum += hist[off + k]
        k += 1
    nk = hist[off + k]
    if nk == 0:
        med = 16 * k
    elif k == 0:
        med = (8 * (half - cum)) // nk
    else:
        med = 16 * k - 8 + (16 * (half - cum)) // nk
    sigma = (med * MAD_TO_SIGMA_X1000) // 1000
    return sigma if sigma > NOISE_MIN_X16 else NOISE_MIN_X16


def ilog2_q10(v):
    """Integer log2(v) in 1/1024 units (v < 1 counts as 1): exponent, then a 33-entry table, linearly interpolated."""
    if v < 1:
        v = 1
    e = 0
    while v >> (e + 1):
        e += 1
    if e < 5:
        return 1024 * e + LOG2_FRAC[(v << (5 - e)) - 32]
    sh = e - 5
    t = v >> sh
    lo = LOG2_FRAC[t - 32]
    return 1024 * e + lo + (((LOG2_FRAC[t - 31] - lo) * (v - (t << sh))) >> sh)
