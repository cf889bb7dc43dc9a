"""Spot detector: find the coating's bright particles in one grayscale frame.

``Detector(width, height, max_spots=64)`` allocates every buffer once;
``detect(frame)`` takes ``width*height`` bytes of 8-bit grayscale and returns
``(spots, quality, guidance)``: spot records exactly as the scan descriptor
carries them (x:u16be, y:u16be in 1/32 px, flux:u8, brightest = 255, sorted by
descending flux, ties by ascending y then x), the quality map (descriptor Q_*
keys) and a guidance code (glintcore.proto GD_*).

Integer arithmetic only, so the result is identical on every port and on the
host twin (glint.imaging.detect). The three per-pixel passes are kernels with
the same signatures as their viper versions in glintfw.detect_viper, which the
Detector uses when the port has the viper emitter (boards, not WebAssembly):

1. stats: frame total, saturated pixels, histogram of |v(x) - v(x-2)| (robust
   noise: its median is 0.954 sigma; distance 2 because JPEG smooths neighbours),
   per-block sums (16x16 blocks);
2. clip:  per block, the mean of pixels at most CLIP sigma above the block mean
   (the background with the particles left out);
3. cands: pixels above background + PEAK sigma that are the maximum of their
   3x3 neighbourhood (ties go to the first pixel in raster order).

Candidates then pass a 3x3-sum significance test and a hot-pixel test; the N
brightest (3x3 sum above background) are kept and located to sub-pixel
precision by Gaussian (log-parabola) interpolation of the 3x3 window's
column and row sums, with an integer log2 (table + linear interpolation).
The peak of a Gaussian spot is found without the bias of a windowed centroid.
"""

import glintcore  # noqa: F401  (const() shim on CPython)
import sys
from array import array

from micropython import const

from glintcore.proto import GD_NO_COATING, GD_OK, GD_OUT_OF_FOCUS, GD_SATURATED, GD_TOO_DARK, GD_TOO_FEW_SPOTS

SPOT_SCALE = const(32)
SPOT_RECORD = const(5)
MAX_SPOTS_DEFAULT = const(64)

# --- tuning (x16 = in 16ths of the noise sigma); glint.imaging mirrors these ---
BLOCK_SHIFT = const(3)  # background blocks of 8x8 pixels (follow vignetting and dust specks)
MARGIN = const(1)  # no candidates on the border row/column (3x3 neighbourhood)
SAT_LEVEL = const(250)  # a pixel at or above this level counts as saturated
CLIP_X16 = const(32)  # background: pixels <= block mean + 2 sigma
PEAK_X16 = const(40)  # candidate: peak > background + 2.5 sigma
SUM_X16 = const(88)  # accept: 3x3 sum above background >= 5.5 x (3 sigma)
SPIKE_X16 = const(6)  # accept: neighbours carry >= 6/16 of the peak (rejects hot pixels)
INTERP_MAX = const(32)  # sub-pixel offset clamp: +-1 px (in 1/SPOT_SCALE)
NOISE_MIN_X16 = const(16)  # noise floor: 1 DN
MAD_TO_SIGMA_X1000 = const(1048)  # sigma = median|d| / 0.954 for d = difference of two pixels
# --- guidance ---
DARK_MEAN = const(12)  # mean level below this: too dark
SAT_PERMILLE_MAX = const(20)  # more saturated pixels than 2 %: saturated
NO_COATING_SPOTS = const(6)  # fewer spots: no coating under the lens
FOCUS_MIN = const(800)  # focus = 1477 / sigma_psf**2 (log2 curvature); 800: PSF sigma > 1.36 px is out of focus
MIN_SPOTS = const(30)  # fewer spots: too few to identify the item

# geometry/result slots of the int32 ``geom`` array shared with the kernels
G_W = const(0)
G_H = const(1)
G_NBX = const(2)
G_TOTAL = const(3)
G_SAT = const(4)
G_NCAND = const(5)
G_MAXC = const(6)
G_SIZE = const(8)

MAX_CANDIDATES_MIN = const(1024)


# ----------------------------------------------------------------------------------
# Kernels: pure-Python twins of glintfw.detect_viper (same loops, same integer results).


def k_stats(frame, geom, dhist, bsum):
    """Pass 1: total and saturated count into geom, histogram of |v(x) - v(x-2)| into dhist, block sums into bsum."""
    w = geom[0]
    h = geom[1]
    nbx = geom[2]
    total = 0
    sat = 0
    i = 0
    y = 0
    while y < h:
        brow = (y >> BLOCK_SHIFT) * nbx
        x = 0
        while x < w:
            v = frame[i]
            if x >= 2:
                d = v - frame[i - 2]
                if d < 0:
                    d = -d
                dhist[d] += 1
            bsum[brow + (x >> BLOCK_SHIFT)] += v
            total += v
            if v >= SAT_LEVEL:
                sat += 1
            i += 1
            x += 1
        y += 1
    geom[3] = total
    geom[4] = sat


def k_clip(frame, geom, lim, acc):
    """Pass 2: per block b, sum (acc[2b]) and count (acc[2b+1]) of pixels <= lim[b]."""
    w = geom[0]
    h = geom[1]
    nbx = geom[2]
    i = 0
    y = 0
    while y < h:
        brow = (y >> BLOCK_SHIFT) * nbx
        x = 0
        while x < w:
            v = frame[i]
            b = brow + (x >> BLOCK_SHIFT)
            if v <= lim[b]:
                acc[2 * b] += v
                acc[2 * b + 1] += 1
            i += 1
            x += 1
        y += 1


def k_cands(frame, geom, thr, cand):
    """Pass 3: raster-order indices of pixels > thr[block] that win their 3x3 neighbourhood."""
    w = geom[0]
    h = geom[1]
    nbx = geom[2]
    maxc = geom[6]
    n = 0
    y = 1
    while y < h - 1:
        brow = (y >> BLOCK_SHIFT) * nbx
        i = y * w + 1
        x = 1
        while x < w - 1:
            v = frame[i]
            if v > thr[brow + (x >> BLOCK_SHIFT)]:
                # earlier pixels in raster order must be strictly lower, later ones not higher
                j = i - w
                if (
                    v > frame[j - 1] and v > frame[j] and v > frame[j + 1] and v > frame[i - 1]
                    and v >= frame[i + 1] and v >= frame[i + w - 1] and v >= frame[i + w] and v >= frame[i + w + 1]
                ):
                    if n < maxc:
                        cand[n] = i
                        n += 1
            i += 1
            x += 1
        y += 1
    geom[5] = n


def _load_kernels(use_viper):
    """Viper kernels when asked (True) or available (None, MicroPython only); else the pure twins."""
    if use_viper is False or (use_viper is None and sys.implementation.name != "micropython"):
        return k_stats, k_clip, k_cands
    try:
        from glintfw import detect_viper as kv

        return kv.k_stats, kv.k_clip, kv.k_cands
    except (ImportError, SyntaxError, ValueError, NotImplementedError, AttributeError):
        # the WebAssembly port (and CPython) have no viper emitter
        if use_viper:
            raise
        return k_stats, k_clip, k_cands


class Detector:
    """Spot detector for frames of ``width`` x ``height`` 8-bit pixels; buffers allocated here, once."""

    def __init__(self, width, height, max_spots=MAX_SPOTS_DEFAULT, use_viper=None):
        # x, y must fit u16 at SPOT_SCALE; the frame total must fit the kernels' 32-bit ints
        if width < 8 or height < 8 or width * SPOT_SCALE > 0xFFFF or height * SPOT_SCALE > 0xFFFF:
            raise ValueError("frame size out of range")
        self.width = width
        self.height = height
        self.max_spots = max_spots
        self.nbx = (width + (1 << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT
        self.nby = (height + (1 << BLOCK_SHIFT) - 1) >> BLOCK_SHIFT
        nb = self.nbx * self.nby
        self.maxc = max(MAX_CANDIDATES_MIN, (width * height) >> 7)
        self.geom = array("i", [0] * G_SIZE)
        self.dhist = array("i", [0] * 256)
        self.bsum = array("i", [0] * nb)
        self.bcount = array("i", [0] * nb)
        self.lim = array("i", [0] * nb)
        self.acc = array("i", [0] * (2 * nb))
        self.bg = array("i", [0] * nb)
        self.thr = array("i", [0] * nb)
        self.cand = array("i", [0] * self.maxc)
        n = max_spots
        # kept spots, in descending flux order: flux (3x3 sum), amplitude, x_q, y_q, focus curvature
        self.kf = array("i", [0] * n)
        self.ka = array("i", [0] * n)
        self.kx = array("i", [0] * n)
        self.ky = array("i", [0] * n)
        self.kc = array("i", [0] * n)
        self.order = array("i", [0] * n)
        self.out = bytearray(n * SPOT_RECORD)
        self.quality = {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0}
        for by in range(self.nby):
            bh = min(height - (by << BLOCK_SHIFT), 1 << BLOCK_SHIFT)
            for bx in range(self.nbx):
                bw = min(width - (bx << BLOCK_SHIFT), 1 << BLOCK_SHIFT)
                self.bcount[by * self.nbx + bx] = bw * bh
        self._stats, self._clip, self._cands = _load_kernels(use_viper)
        self.focus = 0
        self.n_found = 0  # spots that passed every test (before keeping the N brightest)
        self.n_cands = 0

    def detect(self, frame):
        """Detect spots in ``frame`` (width*height bytes) -> (spots bytes, quality dict, guidance)."""
        w = self.width
        h = self.height
        if len(frame) < w * h:
            raise ValueError("frame smaller than width*height")
        geom = self.geom
        geom[G_W] = w
        geom[G_H] = h
        geom[G_NBX] = self.nbx
        geom[G_MAXC] = self.maxc
        dhist = self.dhist
        bsum = self.bsum
        acc = self.acc
        nb = len(bsum)
        for k in range(256):
            dhist[k] = 0
        for k in range(nb):
            bsum[k] = 0
            acc[2 * k] = 0
            acc[2 * k + 1] = 0
        self._stats(frame, geom, dhist, bsum)
        noise = noise_x16(dhist, h * (w - 2))
        clip = (CLIP_X16 * noise) >> 8
        lim = self.lim
        bcount = self.bcount
        for k in range(nb):
            lim[k] = bsum[k] // bcount[k] + clip
        self._clip(frame, geom, lim, acc)
        bg = self.bg
        thr = self.thr
        peak = (PEAK_X16 * noise) >> 8
        csum = 0
        ccount = 0
        for k in range(nb):
            c = acc[2 * k + 1]
            if c:
                bg[k] = acc[2 * k] // c
            else:
                bg[k] = bsum[k] // bcount[k]
            csum += acc[2 * k]
            ccount += c
            thr[k] = bg[k] + peak
        self._cands(frame, geom, thr, self.cand)
        self.n_cands = geom[G_NCAND]
        n = self._measure(frame, noise)
        npix = w * h
        q = self.quality
        q[0] = self.n_found
        q[1] = (self.ka[self.order[n >> 1]] * 256) // noise if n else 0
        q[2] = self.focus
        q[3] = (geom[G_SAT] * 1000) // npix
        q[4] = geom[G_TOTAL] // npix
        q[5] = csum // ccount if ccount else q[4]
        q[6] = noise
        return bytes(memoryview(self.out)[: n * SPOT_RECORD]), q, guidance(q)

    def _measure(self, frame, noise):
        """Test and centroid the candidates; keep the N brightest; pack records; return N."""
        w = self.width
        nbx = self.nbx
        bg = self.bg
        cand = self.cand
        kf = self.kf
        ka = self.ka
        kx = self.kx
        ky = self.ky
        kc = self.kc
        nmax = self.max_spots
        sum_min = 3 * SUM_X16 * noise  # compared with 256 x (3x3 sum above background)
        kept = 0
        found = 0
        for ci in range(self.n_cands):
            i = cand[ci]
            y = i // w
            x = i - y * w
            b = bg[(y >> BLOCK_SHIFT) * nbx + (x >> BLOCK_SHIFT)]
            amp = frame[i] - b
            j = i - w - 1
            s9 = (
                frame[j] + frame[j + 1] + frame[j + 2]
                + frame[j + w] + frame[j + w + 1] + frame[j + w + 2]
                + frame[j + 2 * w] + frame[j + 2 * w + 1] + frame[j + 2 * w + 2]
                - 9 * b
            )
            if s9 * 256 < sum_min or (s9 - amp) * 16 < SPIKE_X16 * amp:
                continue
            found += 1
            # keep the N largest 3x3 sums; earlier candidates win ties (strict >)
            if kept == nmax and s9 <= kf[kept - 1]:
                continue
            pos = kept if kept < nmax else nmax - 1
            while pos > 0 and kf[pos - 1] < s9:
                kf[pos] = kf[pos - 1]
                ka[pos] = ka[pos - 1]
                kx[pos] = kx[pos - 1]
                ky[pos] = ky[pos - 1]
                kc[pos] = kc[pos - 1]
                pos -= 1
            if kept < nmax:
                kept += 1
            # Gaussian interpolation on the 3x3 column and row sums (background removed)
            j = i - w - 1
            c0 = frame[j] + frame[j + w] + frame[j + 2 * w] - 3 * b
            c2 = frame[j + 2] + frame[j + w + 2] + frame[j + 2 * w + 2] - 3 * b
            r0 = frame[j] + frame[j + 1] + frame[j + 2] - 3 * b
            r2 = frame[j + 2 * w] + frame[j + 2 * w + 1] + frame[j + 2 * w + 2] - 3 * b
            kf[pos] = s9
            ka[pos] = amp
            la = ilog2_q10(c0)
            lb = ilog2_q10(s9 - c0 - c2)
            lc = ilog2_q10(c2)
            kx[pos] = SPOT_SCALE * x + interp(la, lb, lc)
            curv = 2 * lb - la - lc
            la = ilog2_q10(r0)
            lb = ilog2_q10(s9 - r0 - r2)
            lc = ilog2_q10(r2)
            ky[pos] = SPOT_SCALE * y + interp(la, lb, lc)
            # focus evidence: log2 curvature (x + y) of unsaturated spots; -1 marks a saturated peak
            kc[pos] = -1 if frame[i] >= SAT_LEVEL else curv + 2 * lb - la - lc
        self.n_found = found
        # focus: mean log2 curvature per axis of the unsaturated kept spots, = 1477 / sigma_psf**2
        sc = 0
        nc = 0
        for k in range(kept):
            if kc[k] >= 0:
                sc += kc[k]
                nc += 1
        self.focus = sc // (2 * nc) if nc else 0
        self._pack(kept)
        return kept

    def _pack(self, n):
        """Records sorted by (flux u8 desc, y asc, x asc) into self.out; flux scaled to brightest = 255."""
        kf = self.kf
        kx = self.kx
        ky = self.ky
        order = self.order
        out = self.out
        fmax = kf[0] if n else 1
        for k in range(n):
            f = (kf[k] * 510 + fmax) // (2 * fmax)
            kf[k] = f if f > 0 else 1  # kf now holds the u8 flux
        for k in range(n):  # insertion sort of indices (n <= max_spots)
            m = k
            while m > 0:
                a = order[m - 1]
                if kf[a] > kf[k] or (kf[a] == kf[k] and (ky[a] < ky[k] or (ky[a] == ky[k] and kx[a] <= kx[k]))):
                    break
                order[m] = a
                m -= 1
            order[m] = k
        o = 0
        for k in range(n):
            a = order[k]
            out[o] = kx[a] >> 8
            out[o + 1] = kx[a] & 0xFF
            out[o + 2] = ky[a] >> 8
            out[o + 3] = ky[a] & 0xFF
            out[o + 4] = kf[a]
            o += SPOT_RECORD


def noise_x16(dhist, count):
    """Noise sigma x16 from the histogram of |v(x) - v(x-2)| (interpolated median / 0.954)."""
    half = count >> 1
    cum = 0
    k = 0
    while k < 255 and cum + dhist[k] <= half:
        cum += dhist[k]
        k += 1
    nk = dhist[k]
    if nk == 0:
        med = 16 * k
    elif k == 0:
        med = (8 * (half - cum)) // nk
    else:
        med = 16 * k - 8 + (16 * (half - cum)) // nk
    sigma = (med * MAD_TO_SIGMA_X1000) // 1000
    return sigma if sigma > NOISE_MIN_X16 else NOISE_MIN_X16


# round(1024 * log2(1 + i / 32)) for i = 0..32
LOG2_FRAC = (
    0, 45, 90, 132, 174, 214, 254, 292, 330, 366, 402, 436, 470, 504, 536, 568, 599,
    629, 659, 689, 717, 745, 773, 800, 827, 853, 879, 904, 929, 953, 977, 1001, 1024,
)


def ilog2_q10(v):
    """Integer log2(v) in 1/1024 units (v < 1 counts as 1): exponent, then a 33-entry table, linearly interpolated."""
    if v < 1:
        v = 1
    k = 0
    while v >> (k + 1):
        k += 1
    if k < 5:
        return 1024 * k + LOG2_FRAC[(v << (5 - k)) - 32]
    sh = k - 5
    t = v >> sh
    i = t - 32
    rem = v - (t << sh)
    lo = LOG2_FRAC[i]
    hi = LOG2_FRAC[i + 1] if i < 32 else LOG2_FRAC[32]
    return 1024 * k + lo + (((hi - lo) * rem) >> sh)


def interp(la, lb, lc):
    """Sub-pixel offset (1/SPOT_SCALE px) of the peak through three samples at -1, 0, +1, given their ilog2_q10."""
    den = 2 * (2 * lb - la - lc)
    if den <= 0:
        return 0
    d = (2 * SPOT_SCALE * (lc - la) + den) // (2 * den)
    if d > INTERP_MAX:
        return INTERP_MAX
    if d < -INTERP_MAX:
        return -INTERP_MAX
    return d


def guidance(q):
    """Operator guidance (GD_*) from the quality map; the first problem found wins."""
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
