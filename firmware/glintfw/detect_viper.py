"""Viper kernels of the spot detector: the eight stages of glintfw.detect, compiled to machine code.

Imported on ports with the viper emitter (ESP32, OpenMV, the Unix port); the
pure-Python twins in glintfw.detect are the specification, and each kernel here
is the same loop with the same integer operations (tests compare them on real
MicroPython and under tests/firmware/viper_shim.py). Viper rules kept: at most
four arguments, arrays as array('i') (ptr32) and bytes-like frames (ptr8), no
closures, no unary minus on native ints (``0 - x``), ``//`` only on
non-negative operands. Every intermediate fits 31 bits: the frame total is at
most 2047 * 2047 * 255 < 2**31 (Detector refuses larger frames), block sums are
at most 11 * 11 * 255 (blocks of 4..11 pixels a side), keys 256 * 9 * 255 + 255. The constants
below must equal glintfw.detect's (a test compares them).
"""

import micropython
from micropython import const

_B_CCNT = const(3)
_B_CSUM = const(2)
_B_LIM = const(1)
_B_STRIDE = const(4)
_B_SUM = const(0)
_BK_BG = const(2)
_BROAD_CV = const(1312)
_BK_LIM = const(1)
_BK_ZERO = const(0)
_G_ADD = const(18)
_G_AMED = const(10)
_G_BGCNT = const(20)
_G_BGSUM = const(19)
_G_CAND = const(552)
_G_CN = const(12)
_G_CSUM = const(11)
_G_FOUND = const(8)
_G_H = const(1)
_G_HIST = const(40)
_G_HIST9 = const(296)
_G_KEPT = const(9)
_G_MAXC = const(5)
_G_NB = const(17)
_G_NCAND = const(4)
_G_NMAX = const(6)
_G_SAT = const(3)
_G_SCR = const(24)
_G_SUMMIN = const(7)
_G_TNX = const(14)
_G_TNY = const(16)
_G_TOX = const(13)
_G_TOY = const(15)
_G_TOTAL = const(2)
_G_W = const(0)
_INTERP_MAX = const(32)
_K_AMP = const(2)
_K_BG = const(4)
_K_CURV = const(7)
_K_I = const(3)
_K_KEY = const(0)
_K_S9 = const(1)
_K_STRIDE = const(8)
_K_X = const(5)
_K_Y = const(6)
_MARGIN = const(2)
_SAT_LEVEL = const(250)
_SPIKE_X16 = const(12)
_SPOT_RECORD = const(5)
_SPOT_SCALE = const(32)
_TIE25_MARGIN = const(3)


@micropython.viper
def k_blocks(work, blocks, bcount, mode):
    g = ptr32(work)
    bk = ptr32(blocks)
    bc = ptr32(bcount)
    md = int(mode)
    nb = g[_G_NB]
    add = g[_G_ADD]
    if md == _BK_ZERO:
        k = 0
        while k < _B_STRIDE * nb:
            bk[k] = 0
            k += 1
        k = _G_HIST
        while k < _G_CAND:
            g[k] = 0
            k += 1
        g[_G_BGSUM] = 0
        g[_G_BGCNT] = 0
        return
    r = 0
    k = 0
    while k < nb:
        if md == _BK_LIM:
            bk[r + _B_LIM] = bk[r + _B_SUM] // bc[k] + add
        elif md == _BK_BG:
            c = bk[r + _B_CCNT]
            s = bk[r + _B_CSUM]
            if c > 0:
                bg = s // c
            else:
                bg = bk[r + _B_SUM] // bc[k]
            g[_G_BGSUM] += s
            g[_G_BGCNT] += c
            bk[r + _B_SUM] = bg
            bk[r + _B_LIM] = bg + add
        else:
            bk[r + _B_LIM] += add
        r += _B_STRIDE
        k += 1


@micropython.viper
def k_stats(frame, work, bidx, blocks):
    f = ptr8(frame)
    g = ptr32(work)
    bx = ptr32(bidx)
    bk = ptr32(blocks)
    w = g[_G_W]
    h = g[_G_H]
    w2 = 2 * w
    total = 0
    sat = 0
    i = 0
    y = 0
    while y < h:
        brow = bx[w + y]
        x = 0
        while x < w:
            v = f[i]
            if x >= 2:
                d = v - f[i - 2]
                if d < 0:
                    d = 0 - d
                g[_G_HIST + d] += 1
            if y >= 2:
                d = v - f[i - w2]
                if d < 0:
                    d = 0 - d
                g[_G_HIST + d] += 1
            bk[brow + bx[x]] += v
            total += v
            if v >= _SAT_LEVEL:
                sat += 1
            i += 1
            x += 1
        y += 1
    g[_G_TOTAL] = total
    g[_G_SAT] = sat


@micropython.viper
def k_noise9(frame, work, tbuf):
    f = ptr8(frame)
    g = ptr32(work)
    tb = ptr32(tbuf)
    w = g[_G_W]
    ox = g[_G_TOX]
    nx = g[_G_TNX]
    oy = g[_G_TOY]
    ny = g[_G_TNY]
    ty = 0
    while ty < ny:
        i = (oy + 3 * ty) * w + ox
        left = 0
        tx = 0
        while tx < nx:
            j = i + w
            k = j + w
            s = f[i] + f[i + 1] + f[i + 2] + f[j] + f[j + 1] + f[j + 2] + f[k] + f[k + 1] + f[k + 2]
            if tx > 0:
                d = s - left
                if d < 0:
                    d = 0 - d
                if d > 255:
                    d = 255
                g[_G_HIST9 + d] += 1
            if ty > 0:
                d = s - tb[tx]
                if d < 0:
                    d = 0 - d
                if d > 255:
                    d = 255
                g[_G_HIST9 + d] += 1
            tb[tx] = s
            left = s
            i += 3
            tx += 1
        ty += 1


@micropython.viper
def k_clip(frame, work, bidx, blocks):
    f = ptr8(frame)
    g = ptr32(work)
    bx = ptr32(bidx)
    bk = ptr32(blocks)
    w = g[_G_W]
    h = g[_G_H]
    i = 0
    y = 0
    while y < h:
        brow = bx[w + y]
        x = 0
        while x < w:
            v = f[i]
            b = brow + bx[x]
            if v <= bk[b + _B_LIM]:
                bk[b + _B_CSUM] += v
                bk[b + _B_CCNT] += 1
            i += 1
            x += 1
        y += 1


@micropython.viper
def k_cands(frame, work, bidx, blocks):
    f = ptr8(frame)
    g = ptr32(work)
    bx = ptr32(bidx)
    bk = ptr32(blocks)
    w = g[_G_W]
    h = g[_G_H]
    maxc = g[_G_MAXC]
    n = 0
    y = _MARGIN
    while y < h - _MARGIN:
        brow = bx[w + y]
        i = y * w + _MARGIN
        x = _MARGIN
        while x < w - _MARGIN:
            v = f[i]
            b = brow + bx[x]
            if v > bk[b + _B_LIM]:
                j = i - w
                k = i + w
                if (
                    v >= f[j - 1] and v >= f[j] and v >= f[j + 1] and v >= f[i - 1]
                    and v >= f[i + 1] and v >= f[k - 1] and v >= f[k] and v >= f[k + 1]
                ):
                    ok = 1
                    if (
                        v == f[j - 1] or v == f[j] or v == f[j + 1] or v == f[i - 1]
                        or v == f[i + 1] or v == f[k - 1] or v == f[k] or v == f[k + 1]
                    ):
                        # a tie on the value: the 3x3 sum decides, strictly (a full tie: no candidate)
                        s = (
                            f[j - 1] + f[j] + f[j + 1] + f[i - 1] + v + f[i + 1]
                            + f[k - 1] + f[k] + f[k + 1]
                        )
                        inner = 0
                        if x >= _TIE25_MARGIN and x < w - _TIE25_MARGIN and y >= _TIE25_MARGIN and y < h - _TIE25_MARGIN:
                            inner = 1
                        s25 = 0 - 1
                        dy = -1
                        while dy <= 1:
                            dx = -1
                            while dx <= 1:
                                m = i + dy * w + dx
                                if m != i and f[m] == v:
                                    p = m - w
                                    q = m + w
                                    t = (
                                        f[p - 1] + f[p] + f[p + 1] + f[m - 1] + v + f[m + 1]
                                        + f[q - 1] + f[q] + f[q + 1]
                                    )
                                    if t > s:
                                        ok = 0
                                    elif t == s:
                                        if inner == 0:
                                            ok = 0
                                        else:
                                            if s25 < 0:  # the 5x5 sums (glintfw.detect)
                                                s25 = 0
                                                p = i - 2 * w - 2
                                                ey = 0
                                                while ey < 5:
                                                    s25 += f[p] + f[p + 1] + f[p + 2] + f[p + 3] + f[p + 4]
                                                    p += w
                                                    ey += 1
                                            t = 0
                                            p = m - 2 * w - 2
                                            ey = 0
                                            while ey < 5:
                                                t += f[p] + f[p + 1] + f[p + 2] + f[p + 3] + f[p + 4]
                                                p += w
                                                ey += 1
                                            if t >= s25:
                                                ok = 0
                                dx += 1
                            dy += 1
                    if ok:
                        # and no brighter pixel at distance 2 without a dip on the way (glintfw.detect)
                        bg = bk[b + _B_SUM]
                        a3 = 3 * (v - bg)
                        dy = 0 - 2
                        while dy <= 2:
                            dx = 0 - 2
                            while dx <= 2:
                                if (dy == 2 or dy == -2 or dx == 2 or dx == -2) and f[i + dy * w + dx] > v:
                                    my = 0
                                    if dy == 2:
                                        my = 1
                                    elif dy == -2:
                                        my = 0 - 1
                                    mx = 0
                                    if dx == 2:
                                        mx = 1
                                    elif dx == -2:
                                        mx = 0 - 1
                                    if 4 * (f[i + my * w + mx] - bg) >= a3:
                                        ok = 0
                                dx += 1
                            dy += 1
                    if ok:
                        if n < maxc:
                            g[_G_CAND + 2 * n] = i
                            g[_G_CAND + 2 * n + 1] = b
                        n += 1
            i += 1
            x += 1
        y += 1
    g[_G_NCAND] = n


@micropython.viper
def k_select(frame, work, blocks, kept):
    f = ptr8(frame)
    g = ptr32(work)
    bk = ptr32(blocks)
    kp = ptr32(kept)
    w = g[_G_W]
    nc = g[_G_NCAND]
    if nc > g[_G_MAXC]:
        nc = g[_G_MAXC]
    nmax = g[_G_NMAX]
    summin = g[_G_SUMMIN]
    found = 0
    n = 0
    cut = 0  # the largest key left out (every key is > 0)
    c = 0
    while c < nc:
        i = g[_G_CAND + 2 * c]
        bg = bk[g[_G_CAND + 2 * c + 1] + _B_SUM]
        c += 1
        amp = f[i] - bg
        j = i - w
        k = i + w
        s9 = (
            f[j - 1] + f[j] + f[j + 1] + f[i - 1] + f[i] + f[i + 1]
            + f[k - 1] + f[k] + f[k + 1] - 9 * bg
        )
        if s9 * 256 < summin or (s9 - amp) * 16 < _SPIKE_X16 * amp:
            continue
        found += 1
        key = s9 * 256 + amp
        if n == nmax:
            last = kp[(nmax - 1) * _K_STRIDE]
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
        r = pos * _K_STRIDE
        while pos > 0 and kp[r - _K_STRIDE] < key:
            kp[r] = kp[r - _K_STRIDE]
            kp[r + 1] = kp[r - _K_STRIDE + 1]
            kp[r + 2] = kp[r - _K_STRIDE + 2]
            kp[r + 3] = kp[r - _K_STRIDE + 3]
            kp[r + 4] = kp[r - _K_STRIDE + 4]
            r -= _K_STRIDE
            pos -= 1
        kp[r + _K_KEY] = key
        kp[r + _K_S9] = s9
        kp[r + _K_AMP] = amp
        kp[r + _K_I] = i
        kp[r + _K_BG] = bg
    while n > 0 and kp[(n - 1) * _K_STRIDE] == cut:
        n -= 1
    g[_G_FOUND] = found
    g[_G_KEPT] = n


@micropython.viper
def k_centroid(frame, work, kept, tab):
    f = ptr8(frame)
    g = ptr32(work)
    kp = ptr32(kept)
    tb = ptr32(tab)
    w = g[_G_W]
    n = g[_G_KEPT]
    r = 0
    while r < n * _K_STRIDE:
        i = kp[r + _K_I]
        bg3 = 3 * kp[r + _K_BG]
        s9 = kp[r + _K_S9]
        y = i // w
        x = i - y * w
        j = i - w
        k = i + w
        c0 = f[j - 1] + f[i - 1] + f[k - 1] - bg3
        c2 = f[j + 1] + f[i + 1] + f[k + 1] - bg3
        r0 = f[j - 1] + f[j] + f[j + 1] - bg3
        r2 = f[k - 1] + f[k] + f[k + 1] - bg3
        # the six sums (values < 1 count as 1, as in ilog2_q10; nothing negative goes into an array)
        c1 = s9 - c0 - c2
        if c0 < 1:
            c0 = 1
        if c1 < 1:
            c1 = 1
        if c2 < 1:
            c2 = 1
        g[_G_SCR] = c0
        g[_G_SCR + 1] = c1
        g[_G_SCR + 2] = c2
        c1 = s9 - r0 - r2
        if r0 < 1:
            r0 = 1
        if c1 < 1:
            c1 = 1
        if r2 < 1:
            r2 = 1
        g[_G_SCR + 3] = r0
        g[_G_SCR + 4] = c1
        g[_G_SCR + 5] = r2
        m = 0
        while m < 6:  # glintfw.detect.ilog2_q10, inline
            v = g[_G_SCR + m]
            e = 0
            while (v >> (e + 1)) != 0:
                e += 1
            if e < 5:
                lg = 1024 * e + tb[(v << (5 - e)) - 32]
            else:
                sh = e - 5
                t = v >> sh
                lo = tb[t - 32]
                lg = 1024 * e + lo + (((tb[t - 31] - lo) * (v - (t << sh))) >> sh)
            g[_G_SCR + 6 + m] = lg
            m += 1
        curv = 0
        m = 0
        while m < 2:
            la = g[_G_SCR + 6 + 3 * m]
            lb = g[_G_SCR + 7 + 3 * m]
            lc = g[_G_SCR + 8 + 3 * m]
            cv = 2 * lb - la - lc
            d = 0
            if cv > 0:  # offset = 32 (lc - la) / (2 cv), rounded half away from zero, clamped to +-1 px
                num = _SPOT_SCALE * (lc - la)
                if num < 0:
                    d = 0 - ((2 * cv - 2 * num) // (4 * cv))
                else:
                    d = (2 * num + 2 * cv) // (4 * cv)
                if d > _INTERP_MAX:
                    d = _INTERP_MAX
                if d < -_INTERP_MAX:
                    d = 0 - _INTERP_MAX
            if m == 0:
                kp[r + _K_X] = _SPOT_SCALE * x + d
            else:
                kp[r + _K_Y] = _SPOT_SCALE * y + d
            curv += cv
            m += 1
        if curv < _BROAD_CV:
            # wider than the 3x3 window: the 5x5 window's column / row sums at -2, 0, +2 (glintfw.detect)
            pa = i - 2 * w
            pe = i + 2 * w
            bg5 = 5 * kp[r + _K_BG]
            m = 0
            while m < 3:
                o = 2 * m - 2
                c0 = f[pa + o] + f[j + o] + f[i + o] + f[k + o] + f[pe + o] - bg5
                q = i + o * w
                r0 = f[q - 2] + f[q - 1] + f[q] + f[q + 1] + f[q + 2] - bg5
                if c0 < 1:
                    c0 = 1
                if r0 < 1:
                    r0 = 1
                g[_G_SCR + m] = c0
                g[_G_SCR + 3 + m] = r0
                m += 1
            m = 0
            while m < 6:  # glintfw.detect.ilog2_q10, inline
                v = g[_G_SCR + m]
                e = 0
                while (v >> (e + 1)) != 0:
                    e += 1
                if e < 5:
                    lg = 1024 * e + tb[(v << (5 - e)) - 32]
                else:
                    sh = e - 5
                    t = v >> sh
                    lo = tb[t - 32]
                    lg = 1024 * e + lo + (((tb[t - 31] - lo) * (v - (t << sh))) >> sh)
                g[_G_SCR + 6 + m] = lg
                m += 1
            curv = 0
            m = 0
            while m < 2:
                la = g[_G_SCR + 6 + 3 * m]
                lb = g[_G_SCR + 7 + 3 * m]
                lc = g[_G_SCR + 8 + 3 * m]
                cv = 2 * lb - la - lc
                d = 0
                if cv > 0:  # offset = 2 x 32 (lc - la) / (2 cv), rounded half away from zero, clamped to +-1 px
                    num = _SPOT_SCALE * (lc - la)
                    if num < 0:
                        d = 0 - ((cv - 2 * num) // (2 * cv))
                    else:
                        d = (2 * num + cv) // (2 * cv)
                    if d > _INTERP_MAX:
                        d = _INTERP_MAX
                    if d < -_INTERP_MAX:
                        d = 0 - _INTERP_MAX
                if m == 0:
                    kp[r + _K_X] = _SPOT_SCALE * x + d
                else:
                    kp[r + _K_Y] = _SPOT_SCALE * y + d
                curv += cv
                m += 1
            if curv >= 0:
                curv = curv >> 2
            else:
                curv = -1
        if f[i] >= _SAT_LEVEL:
            # a saturated peak: the first moment of the 5x5 window's squared excess (glintfw.detect)
            bg = kp[r + _K_BG]
            ws = 0
            mx = 0
            my = 0
            p = i - 2 * w - 2
            ey = 0 - 2
            while ey <= 2:
                ex = 0 - 2
                while ex <= 2:
                    a = f[p + ex + 2] - bg
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
                num = mx
                if m == 1:
                    num = my
                if num < 0:
                    d = 0 - ((ws - 2 * _SPOT_SCALE * num) // (2 * ws))
                else:
                    d = (2 * _SPOT_SCALE * num + ws) // (2 * ws)
                if d > _INTERP_MAX:
                    d = _INTERP_MAX
                if d < -_INTERP_MAX:
                    d = 0 - _INTERP_MAX
                if m == 0:
                    kp[r + _K_X] = _SPOT_SCALE * x + d
                else:
                    kp[r + _K_Y] = _SPOT_SCALE * y + d
                m += 1
        if curv >= 0 and f[i] < _SAT_LEVEL:
            kp[r + _K_CURV] = curv + 1
        else:
            kp[r + _K_CURV] = 0
        r += _K_STRIDE


@micropython.viper
def k_pack(work, kept, order, out):
    g = ptr32(work)
    kp = ptr32(kept)
    od = ptr32(order)
    ob = ptr8(out)
    n = g[_G_KEPT]
    fmax = 1
    if n > 0:
        fmax = kp[_K_S9]
    r = 0
    while r < n * _K_STRIDE:
        fl = (kp[r + _K_S9] * 510 + fmax) // (2 * fmax)
        if fl < 1:
            fl = 1
        kp[r + _K_KEY] = fl
        r += _K_STRIDE
    k = 0
    while k < n:  # insertion sort of record indices by (flux desc, y asc, x asc)
        rk = k * _K_STRIDE
        fk = kp[rk]
        yk = kp[rk + _K_Y]
        xk = kp[rk + _K_X]
        m = k
        while m > 0:
            ra = od[m - 1] * _K_STRIDE
            fa = kp[ra]
            if fa > fk or (fa == fk and (kp[ra + _K_Y] < yk or (kp[ra + _K_Y] == yk and kp[ra + _K_X] <= xk))):
                break
            od[m] = od[m - 1]
            m -= 1
        od[m] = k
        k += 1
    o = 0
    k = 0
    while k < n:
        r = od[k] * _K_STRIDE
        xq = kp[r + _K_X]
        yq = kp[r + _K_Y]
        ob[o] = xq >> 8
        ob[o + 1] = xq & 0xFF
        ob[o + 2] = yq >> 8
        ob[o + 3] = yq & 0xFF
        ob[o + 4] = kp[r]
        o += _SPOT_RECORD
        k += 1
    # the amplitude ranked n // 2 in descending order (a median of values, whatever the positions)
    med = 0
    half = n >> 1
    k = 0
    while k < n:
        a = kp[k * _K_STRIDE + _K_AMP]
        gt = 0
        ge = 0
        m = 0
        while m < n:
            b = kp[m * _K_STRIDE + _K_AMP]
            if b > a:
                gt += 1
            if b >= a:
                ge += 1
            m += 1
        if gt <= half and half < ge:
            med = a
            break
        k += 1
    g[_G_AMED] = med
    sc = 0
    nc = 0
    r = 0
    while r < n * _K_STRIDE:
        if kp[r + _K_CURV] > 0:
            sc += kp[r + _K_CURV] - 1
            nc += 1
        r += _K_STRIDE
    g[_G_CSUM] = sc
    g[_G_CN] = nc
