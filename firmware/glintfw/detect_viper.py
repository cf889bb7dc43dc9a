"""Viper kernels of the spot detector: the per-pixel passes of glintfw.detect, compiled to machine code.

Imported only on ports with the viper emitter (ESP32, OpenMV); the pure-Python
twins in glintfw.detect are the specification. Each kernel has the same loops,
the same integer operations and the same results: every intermediate fits in
31 bits (block sums <= 64*255, frame totals <= 2047*2047*255 < 2**31 is NOT
guaranteed beyond VGA, so Detector limits frames to 2**23 pixels), so viper's
32-bit wrap-around never triggers. Arrays are array('i') (ptr32), frames are
bytes-like (ptr8). BLOCK_SHIFT and SAT_LEVEL must equal glintfw.detect's.
"""

import micropython
from micropython import const

_BLOCK_SHIFT = const(3)
_SAT_LEVEL = const(250)


@micropython.viper
def k_stats(frame, geom, dhist, bsum):
    f = ptr8(frame)
    g = ptr32(geom)
    dh = ptr32(dhist)
    bs = ptr32(bsum)
    w = g[0]
    h = g[1]
    nbx = g[2]
    total = 0
    sat = 0
    i = 0
    y = 0
    while y < h:
        brow = (y >> _BLOCK_SHIFT) * nbx
        x = 0
        while x < w:
            v = f[i]
            if x >= 2:
                d = v - f[i - 2]
                if d < 0:
                    d = 0 - d
                dh[d] += 1
            bs[brow + (x >> _BLOCK_SHIFT)] += v
            total += v
            if v >= _SAT_LEVEL:
                sat += 1
            i += 1
            x += 1
        y += 1
    g[3] = total
    g[4] = sat


@micropython.viper
def k_clip(frame, geom, lim, acc):
    f = ptr8(frame)
    g = ptr32(geom)
    lm = ptr32(lim)
    ac = ptr32(acc)
    w = g[0]
    h = g[1]
    nbx = g[2]
    i = 0
    y = 0
    while y < h:
        brow = (y >> _BLOCK_SHIFT) * nbx
        x = 0
        while x < w:
            v = f[i]
            b = brow + (x >> _BLOCK_SHIFT)
            if v <= lm[b]:
                ac[2 * b] += v
                ac[2 * b + 1] += 1
            i += 1
            x += 1
        y += 1


@micropython.viper
def k_cands(frame, geom, thr, cand):
    f = ptr8(frame)
    g = ptr32(geom)
    th = ptr32(thr)
    cd = ptr32(cand)
    w = g[0]
    h = g[1]
    nbx = g[2]
    maxc = g[6]
    n = 0
    y = 1
    while y < h - 1:
        brow = (y >> _BLOCK_SHIFT) * nbx
        i = y * w + 1
        x = 1
        while x < w - 1:
            v = f[i]
            if v > th[brow + (x >> _BLOCK_SHIFT)]:
                j = i - w
                if (
                    v > f[j - 1] and v > f[j] and v > f[j + 1] and v > f[i - 1]
                    and v >= f[i + 1] and v >= f[i + w - 1] and v >= f[i + w] and v >= f[i + w + 1]
                ):
                    if n < maxc:
                        cd[n] = i
                        n += 1
            i += 1
            x += 1
        y += 1
    g[5] = n
