"""ECDSA on NIST P-256 with SHA-256 and RFC 6979 deterministic nonces (ES256).

Portable (MicroPython >= 1.22 and CPython); signatures are byte-identical on both.

    d = private_key_from_entropy(board.entropy(32))
    pub = public_key(d)                      # 65 bytes, SEC1 uncompressed 04||X||Y
    sig = sign(d, msg)                       # 64 bytes r||s, RFC 6979 nonce, s NOT normalised
    ok = verify(pub, msg, sig)               # bool; fails closed on any malformed input

Speed: k*G uses a fixed-base signed comb over a small precomputed table of
affine points (glintcore.p256_table, a bytes constant) with Jacobian mixed
additions and a = -3 doublings, then one inversion.  Verification adds a
signed 4-bit fixed-window product for the variable point, whose multiples are
made affine with one shared inversion, and compares in Jacobian coordinates
(no inversion mod p).  Degenerate additions (equal or opposite points, which
honest scalars never produce but crafted signatures might) are detected and
redone on a slow, complete code path, so results are always correct.

Not constant-time: Python integers leak timing; keep keys on devices whose
timing an attacker cannot measure finely, or accept that risk knowingly.
"""

import glintcore  # noqa: F401  (installs micropython.const on CPython)
from glintcore import p256_table
from glintcore.errors import CryptoError
from glintcore.hmac256 import hmac_sha256, sha256

# Curve y^2 = x^3 + A*x + B over GF(P), base point (GX, GY) of prime order N (cofactor 1).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

SCALAR_SIZE = 32
PUBLIC_KEY_SIZE = 65
SIGNATURE_SIZE = 64
MIN_ENTROPY = 32  # bytes of seed private_key_from_entropy insists on
_KEYGEN_LABEL = b"glint/p256/keygen/v1"
_KEYGEN_TRIES = 64  # each try fails with probability ~2^-32

_INF = (1, 1, 0)  # Jacobian point at infinity (Z = 0)

# Comb layout, derived from the table module: 2 tables of 2^(TEETH-1) points; in column j,
# tooth a (0 <= a < 2*TEETH; table a // TEETH) reads signed-digit bit a*SPACING + j.
_TEETH = p256_table.TEETH
_SPACING = p256_table.SPACING
_HALF = 1 << (_TEETH - 1)
_LOW = _HALF - 1
_WMASK = (1 << _TEETH) - 1
_NT = 2 * _TEETH
_L = _NT * _SPACING  # digit count; >= 256
_TOOTH_MASK = 0
_GATHER = 0
_GATHER_SHIFT = (_NT - 1) * (_SPACING - 1)
for _a in range(_NT):
    _TOOTH_MASK |= 1 << (_a * _SPACING)
    # Multiplying the masked teeth by this gathers tooth a's bit at _GATHER_SHIFT + a: partial
    # product (a, b) lands on bit SPACING*a - (SPACING-1)*b + shift, distinct for all pairs while
    # 2*TEETH <= SPACING, so nothing carries into the gathered bits.
    _GATHER |= 1 << (_GATHER_SHIFT - (_SPACING - 1) * _a)
del _a
if _NT > _SPACING or _L < 256:
    raise ImportError("p256_table layout unusable")
_T1_OFFSET = _HALF << 6  # byte offset of the second table
_COMB = memoryview(p256_table.COMB)
_ALL_ONES = (1 << _L) - 1

try:  # CPython >= 3.8 inverts in C; MicroPython returns a wrong 0 for pow(x, -1, m), so test it.
    _POW_INVERSE = pow(3, -1, 7) == 5
except (ValueError, TypeError):
    _POW_INVERSE = False


def _inv_euclid(a, m):
    """Inverse of a modulo the prime m (a not divisible by m)."""
    # Extended Euclid, two half-steps per turn so no tuple swaps (allocations) are needed;
    # invariants: a*u = x and a*v = y (mod m).
    y, x = m, a % m
    v, u = 0, 1
    while True:
        if not x:
            return v % m
        q, y = divmod(y, x)
        v -= q * u
        if not y:
            return u % m
        q, x = divmod(x, y)
        u -= q * v


def _inv_pow(a, m):
    return pow(a, -1, m)


_inv = _inv_pow if _POW_INVERSE else _inv_euclid


# ---- Complete (slow) Jacobian arithmetic: infinity, doubling and opposite points handled ----


def _jdbl(X, Y, Z):
    p = P
    if not Z or not Y:
        return _INF
    zz = Z * Z % p
    yy = Y * Y % p
    al = 3 * (X - zz) * (X + zz) % p
    s = 4 * X * yy % p
    X3 = (al * al - 2 * s) % p
    return X3, (al * (s - X3) - 8 * yy * yy) % p, 2 * Y * Z % p


def _jadd(X1, Y1, Z1, X2, Y2, Z2):
    p = P
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    z1z1 = Z1 * Z1 % p
    z2z2 = Z2 * Z2 % p
    u1 = X1 * z2z2 % p
    s1 = Y1 * Z2 * z2z2 % p
    h = (X2 * z1z1 - u1) % p
    r = (Y2 * Z1 * z1z1 - s1) % p
    if not h:
        if not r:
            return _jdbl(X1, Y1, Z1)
        return _INF
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    X3 = (r * r - hhh - 2 * v) % p
    return X3, (r * (v - X3) - s1 * hhh) % p, Z1 * Z2 * h % p


def _mul_complete(k, x, y):
    """k*(x, y) by double-and-add on the complete formulas: slow, correct for any k."""
    R = _INF
    for i in range(255, -1, -1):  # MicroPython ints have no bit_length(); doubling infinity is free
        R = _jdbl(*R)
        if (k >> i) & 1:
            R = _jadd(R[0], R[1], R[2], x, y, 1)
    return R


def _to_affine(X, Y, Z):
    p = P
    zi = _inv(Z, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 * zi % p


# ---- Fast fixed-base product k*G: signed all-odd comb ----


def _comb(k):
    """k*G in Jacobian coordinates for 1 <= k < N, or None on a degenerate addition.

    An odd k has the all-nonzero signed-binary form k = sum s_i 2^i, s_i = 2*t_i - 1
    where t = (k + 2^L - 1) / 2, so no column is ever zero (no point at infinity in the
    loop); an even k is replaced by the odd N - k and the result negated.
    """
    p = P
    fb = int.from_bytes
    T = _COMB
    neg = not k & 1
    if neg:
        k = N - k
    t = (k + _ALL_ONES) >> 1
    mask = _TOOTH_MASK
    gather = _GATHER
    gshift = _GATHER_SHIFT
    tbits = _TEETH
    half = _HALF
    low = _LOW
    wmask = _WMASK
    t1 = _T1_OFFSET
    X = Y = Z = 0  # Z = 0: no point yet
    for j in range(_SPACING - 1, -1, -1):
        u = ((t >> j) & mask) * gather >> gshift
        if Z:  # double (a = -3)
            zz = Z * Z % p
            yy = Y * Y % p
            al = 3 * (X - zz) * (X + zz) % p
            s = 4 * X * yy % p
            X = (al * al - 2 * s) % p
            Z = 2 * Y * Z % p
            Y = (al * (s - X) - 8 * yy * yy) % p
        # Table 0: the low TEETH gathered bits; the top tooth's bit gives the sign.
        c = u & wmask
        if c & half:
            o = (c & low) << 6
            x2 = fb(T[o:o + 32], "big")
            y2 = fb(T[o + 32:o + 64], "big")
        else:
            o = (low - c) << 6
            x2 = fb(T[o:o + 32], "big")
            y2 = p - fb(T[o + 32:o + 64], "big")
        if Z:
            zz = Z * Z % p
            H = (x2 * zz - X) % p
            if not H:
                return None
            r = (y2 * zz % p * Z - Y) % p
            HH = H * H % p
            HHH = H * HH % p
            V = X * HH % p
            X = (r * r - HHH - 2 * V) % p
            Y = (r * (V - X) - Y * HHH) % p
            Z = Z * H % p
        else:
            X = x2
            Y = y2
            Z = 1
        # Table 1 (the scalar's upper half): same steps.
        c = (u >> tbits) & wmask
        if c & half:
            o = t1 + ((c & low) << 6)
            x2 = fb(T[o:o + 32], "big")
            y2 = fb(T[o + 32:o + 64], "big")
        else:
            o = t1 + ((low - c) << 6)
            x2 = fb(T[o:o + 32], "big")
            y2 = p - fb(T[o + 32:o + 64], "big")
        zz = Z * Z % p
        H = (x2 * zz - X) % p
        if not H:
            return None
        r = (y2 * zz % p * Z - Y) % p
        HH = H * H % p
        HHH = H * HH % p
        V = X * HH % p
        X = (r * r - HHH - 2 * V) % p
        Y = (r * (V - X) - Y * HHH) % p
        Z = Z * H % p
    if neg:
        Y = p - Y
    return X, Y, Z


def _mul_g(k):
    """k*G (Jacobian) for 1 <= k < N."""
    R = _comb(k)
    if R is None:
        R = _mul_complete(k, GX, GY)
    return R


# ---- Variable-base product k*Q for verification: signed 4-bit fixed window ----

_WINDOW_DIGITS = 65  # 64 nibbles of a 256-bit scalar plus a final carry


def _window_digits(k):
    """Digits d_i in [-8, 8] (stored + 8) with k = sum d_i 16^i, least significant first."""
    out = bytearray(_WINDOW_DIGITS)
    i = 0
    c = 0
    for byte in k.to_bytes(32, "little"):
        v = (byte & 15) + c
        c = v > 8
        out[i] = v - (c << 4) + 8
        v = (byte >> 4) + c
        c = v > 8
        out[i + 1] = v - (c << 4) + 8
        i += 2
    out[64] = c + 8
    return out


def _multiples(x, y):
    """[(x_m, y_m) for m = 1..8]: affine m*Q, sharing one inversion (Montgomery's trick)."""
    J = [None] * 9
    J[1] = (x, y, 1)
    J[2] = _jdbl(x, y, 1)
    for m in (3, 5, 7):
        J[m] = _jadd(J[m - 1][0], J[m - 1][1], J[m - 1][2], x, y, 1)
        J[m + 1] = _jdbl(*J[(m + 1) >> 1])
    p = P
    acc = [1] * 9
    run = 1
    for m in range(2, 9):
        if not J[m][2]:
            return None  # m*Q = infinity: Q is not a point of order N
        run = run * J[m][2] % p
        acc[m] = run
    inv = _inv(run, p)
    out = [None] * 9
    out[1] = (x, y)
    for m in range(8, 1, -1):
        zi = inv * acc[m - 1] % p
        inv = inv * J[m][2] % p
        zi2 = zi * zi % p
        out[m] = (J[m][0] * zi2 % p, J[m][1] * zi2 * zi % p)
    return out


def _mul_var(k, x, y):
    """k*(x, y) (Jacobian) for 1 <= k < N; falls back to the complete formulas if needed."""
    tab = _multiples(x, y)
    if tab is None:
        return _mul_complete(k, x, y)
    digits = _window_digits(k)
    p = P
    X = Y = Z = 0  # Z = 0: no point yet
    for i in range(_WINDOW_DIGITS - 1, -1, -1):
        if Z:
            for _ in range(4):
                zz = Z * Z % p
                yy = Y * Y % p
                al = 3 * (X - zz) * (X + zz) % p
                s = 4 * X * yy % p
                X = (al * al - 2 * s) % p
                Z = 2 * Y * Z % p
                Y = (al * (s - X) - 8 * yy * yy) % p
        dg = digits[i] - 8
        if not dg:
            continue
        if dg > 0:
            x2, y2 = tab[dg]
        else:
            x2, y2 = tab[-dg]
            y2 = p - y2
        if not Z:
            X = x2
            Y = y2
            Z = 1
            continue
        zz = Z * Z % p
        H = (x2 * zz - X) % p
        if not H:
            return _mul_complete(k, x, y)
        r = (y2 * zz % p * Z - Y) % p
        HH = H * H % p
        HHH = H * HH % p
        V = X * HH % p
        X = (r * r - HHH - 2 * V) % p
        Y = (r * (V - X) - Y * HHH) % p
        Z = Z * H % p
    return X, Y, Z


# ---- Keys and points ----


def _check_scalar(d):
    if not isinstance(d, int) or not 0 < d < N:
        raise CryptoError("private key out of range", "a P-256 private key is an integer in [1, n-1]")


def private_key_from_entropy(seed):
    """Map >= 32 bytes of entropy to a private key in [1, N-1] (HMAC rejection sampling)."""
    if len(seed) < MIN_ENTROPY:
        raise CryptoError("key seed too short: %d bytes, need >= %d" % (len(seed), MIN_ENTROPY))
    for i in range(_KEYGEN_TRIES):
        d = int.from_bytes(hmac_sha256(seed, _KEYGEN_LABEL + bytes((i,))), "big")
        if 0 < d < N:
            return d
    raise CryptoError("key derivation failed", "the entropy source looks broken")


def private_key_to_bytes(d):
    """32-byte big-endian encoding of a private key."""
    _check_scalar(d)
    return d.to_bytes(SCALAR_SIZE, "big")


def private_key_from_bytes(data):
    """Private key from its 32-byte big-endian encoding (range-checked)."""
    if len(data) != SCALAR_SIZE:
        raise CryptoError("private key must be 32 bytes, got %d" % len(data))
    d = int.from_bytes(bytes(data), "big")
    _check_scalar(d)
    return d


def encode_point(x, y):
    """SEC1 uncompressed encoding 04||X||Y (65 bytes)."""
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def _point_or_none(pub):
    """(x, y) of a valid SEC1 uncompressed key, else None; the reason is decode_point's job."""
    if not isinstance(pub, (bytes, bytearray, memoryview)) or len(pub) != PUBLIC_KEY_SIZE or pub[0] != 4:
        return None
    x = int.from_bytes(bytes(pub[1:33]), "big")
    y = int.from_bytes(bytes(pub[33:65]), "big")
    p = P
    if x >= p or y >= p or (y * y - (x * x * x - 3 * x + B)) % p:
        return None  # (0, 0), the usual stand-in for infinity, is not on the curve either
    return x, y


def decode_point(pub):
    """(x, y) of a SEC1 uncompressed public key; CryptoError unless it is a curve point."""
    pt = _point_or_none(pub)
    if pt is not None:
        return pt
    if not isinstance(pub, (bytes, bytearray, memoryview)):
        raise CryptoError("public key must be bytes")
    if len(pub) != PUBLIC_KEY_SIZE or pub[0] != 4:
        raise CryptoError("public key must be 65 bytes 04||X||Y", "compressed and infinity encodings are refused")
    if int.from_bytes(bytes(pub[1:33]), "big") >= P or int.from_bytes(bytes(pub[33:65]), "big") >= P:
        raise CryptoError("public key coordinate out of range")
    raise CryptoError("public key is not a point on P-256")


def public_key(d):
    """65-byte SEC1 uncompressed public key of private key d."""
    _check_scalar(d)
    x, y = _to_affine(*_mul_g(d))
    return encode_point(x, y)


# ---- ECDSA ----


def _bits2int(h):
    z = int.from_bytes(bytes(h), "big")
    excess = len(h) * 8 - 256
    if excess > 0:
        z >>= excess
    return z


def _rfc6979_nonces(d, h):
    """RFC 6979 section 3.2 candidates k for key d and digest h (HMAC-SHA256 DRBG)."""
    x = d.to_bytes(32, "big")
    h1 = (_bits2int(h) % N).to_bytes(32, "big")
    V = b"\x01" * 32
    K = bytes(32)
    K = hmac_sha256(K, V + b"\x00" + x + h1)
    V = hmac_sha256(K, V)
    K = hmac_sha256(K, V + b"\x01" + x + h1)
    V = hmac_sha256(K, V)
    while True:
        V = hmac_sha256(K, V)  # qlen = hlen = 256: one block per candidate
        k = int.from_bytes(V, "big")
        if 0 < k < N:
            yield k
        K = hmac_sha256(K, V + b"\x00")
        V = hmac_sha256(K, V)


def rfc6979_k(d, h):
    """The RFC 6979 nonce for private key d and message digest h (first valid candidate)."""
    _check_scalar(d)
    for k in _rfc6979_nonces(d, h):
        return k


def sign_digest(d, h):
    """ECDSA signature r||s (64 bytes) of digest h; deterministic nonce (RFC 6979), s as computed."""
    _check_scalar(d)
    if not len(h):
        raise CryptoError("empty digest")
    e = _bits2int(h)
    for k in _rfc6979_nonces(d, h):
        X, Y, Z = _mul_g(k)
        zi = _inv(Z, P)
        r = X * (zi * zi % P) % P % N
        if not r:
            continue
        s = _inv(k, N) * (e + r * d) % N
        if s:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_digest(pub, h, sig):
    """True iff sig (64 bytes r||s) is a valid signature of digest h under pub (65 bytes).

    Fails closed: a malformed key, signature or digest gives False, never an exception.
    """
    q = _point_or_none(pub)
    if q is None:
        return False
    qx, qy = q
    buf = (bytes, bytearray, memoryview)
    if not isinstance(sig, buf) or len(sig) != SIGNATURE_SIZE or not isinstance(h, buf) or not len(h):
        return False
    n = N
    p = P
    r = int.from_bytes(bytes(sig[:32]), "big")
    s = int.from_bytes(bytes(sig[32:]), "big")
    if not (0 < r < n and 0 < s < n):
        return False
    w = _inv(s, n)
    u1 = _bits2int(h) * w % n
    u2 = r * w % n
    R2 = _mul_var(u2, qx, qy)
    if u1:
        R1 = _mul_g(u1)
        X, Y, Z = _jadd(R1[0], R1[1], R1[2], R2[0], R2[1], R2[2])
    else:
        X, Y, Z = R2
    if not Z:
        return False
    # x(R) mod n == r  <=>  X == r'*Z^2 (mod p) for r' in {r, r + n} below p: no inversion.
    zz = Z * Z % p
    if (X - r * zz) % p == 0:
        return True
    return r + n < p and (X - (r + n) * zz) % p == 0


def sign(d, msg):
    """ES256 signature (64 bytes r||s) of msg: SHA-256, then sign_digest."""
    return sign_digest(d, sha256(msg))


def verify(pub, msg, sig):
    """True iff sig is a valid ES256 signature of msg under pub; fails closed."""
    if not isinstance(msg, (bytes, bytearray, memoryview)):
        return False
    return verify_digest(pub, sha256(msg), sig)
