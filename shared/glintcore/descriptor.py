"""Scan descriptor v1: what one capture of a coating is, as deterministic CBOR.

A CBOR map with unsigned-integer keys (docs/formats.md has the CDDL):

    0 version   1
    1 device    bstr .size 8          device id
    2 counter   uint                  monotonic scan counter of the device
    3 nonce     bstr .size (8..32)    host nonce; absent for offline (spooled) scans
    4 fw        tstr                  firmware version
    5 board     tstr                  board id (boards/<id>)
    6 geom      [width, height]       frame size in pixels
    7 quality   {* uint => uint}      Q_* keys below
    8 spots     bstr                  N records of SPOT_RECORD bytes (see below)
    9 guidance  uint                  glintcore.proto GD_*

A spot record is x:u16be, y:u16be in 1/SPOT_SCALE pixel, flux:u8 (brightest =
255), sorted by descending flux. Fixed point keeps the bytes identical on every
platform; the signed bytes are the deterministic encoding, so ``decode`` insists
on it.
"""

from micropython import const

from glintcore import cbor
from glintcore.errors import DecodeError

VERSION = const(1)

K_VERSION = const(0)
K_DEVICE = const(1)
K_COUNTER = const(2)
K_NONCE = const(3)
K_FW = const(4)
K_BOARD = const(5)
K_GEOM = const(6)
K_QUALITY = const(7)
K_SPOTS = const(8)
K_GUIDANCE = const(9)

Q_SPOTS = const(0)  # spots found (before keeping the N brightest)
Q_SNR = const(1)  # median spot SNR x16
Q_FOCUS = const(2)  # focus: mean log2 curvature of unsaturated spots (~1477/sigma^2 px; < 800 is out of focus)
Q_SATURATION = const(3)  # saturated pixels, per mille
Q_MEAN = const(4)  # mean frame level 0..255
Q_BACKGROUND = const(5)  # background level 0..255
Q_NOISE = const(6)  # background noise x16

SPOT_SCALE = const(32)
SPOT_RECORD = const(5)
MAX_SPOTS = const(128)
DEVICE_ID_LEN = const(8)
NONCE_MIN = const(8)
NONCE_MAX = const(32)
MAX_DIM = const(2047)  # x, y must fit u16 at SPOT_SCALE

_REQUIRED = (K_VERSION, K_DEVICE, K_COUNTER, K_FW, K_BOARD, K_GEOM, K_QUALITY, K_SPOTS, K_GUIDANCE)
_KNOWN = _REQUIRED + (K_NONCE,)


def _fail(what):
    raise DecodeError("descriptor: " + what)


def validate(d):
    """Check a descriptor map's fields and types; return it. Raises DecodeError."""
    if type(d) is not dict:
        _fail("not a map")
    for k in d:
        if k not in _KNOWN:
            _fail("unknown field %r" % (k,))
    for k in _REQUIRED:
        if k not in d:
            _fail("missing field %d" % k)
    if d[K_VERSION] != VERSION:
        _fail("unsupported version %r" % (d[K_VERSION],))
    dev = d[K_DEVICE]
    if type(dev) is not bytes or len(dev) != DEVICE_ID_LEN:
        _fail("device id must be %d bytes" % DEVICE_ID_LEN)
    c = d[K_COUNTER]
    if type(c) is not int or c < 0 or c >= 1 << 63:
        _fail("counter must be an unsigned integer")
    if K_NONCE in d:
        n = d[K_NONCE]
        if type(n) is not bytes or not NONCE_MIN <= len(n) <= NONCE_MAX:
            _fail("nonce must be %d..%d bytes" % (NONCE_MIN, NONCE_MAX))
    if type(d[K_FW]) is not str or not 0 < len(d[K_FW]) <= 32:
        _fail("firmware version must be a short text")
    if type(d[K_BOARD]) is not str or not 0 < len(d[K_BOARD]) <= 32:
        _fail("board must be a short text")
    g = d[K_GEOM]
    if type(g) is not list or len(g) != 2 or type(g[0]) is not int or type(g[1]) is not int:
        _fail("geometry must be [width, height]")
    if not (0 < g[0] <= MAX_DIM and 0 < g[1] <= MAX_DIM):
        _fail("frame size out of range")
    q = d[K_QUALITY]
    if type(q) is not dict:
        _fail("quality must be a map")
    for k in q:
        if type(k) is not int or type(q[k]) is not int or k < 0 or q[k] < 0:
            _fail("quality entries must be unsigned integers")
    s = d[K_SPOTS]
    if type(s) is not bytes or len(s) % SPOT_RECORD:
        _fail("spots must be a byte string of %d-byte records" % SPOT_RECORD)
    n = len(s) // SPOT_RECORD
    if n > MAX_SPOTS:
        _fail("more than %d spots" % MAX_SPOTS)
    wmax = g[0] * SPOT_SCALE
    hmax = g[1] * SPOT_SCALE
    if not _spots_plainly_valid(s, wmax, hmax):
        _check_spots(s, wmax, hmax)
    if type(d[K_GUIDANCE]) is not int or d[K_GUIDANCE] < 0:
        _fail("guidance must be an unsigned integer")
    return d


def _spots_plainly_valid(s, wmax, hmax):
    """True when every spot is inside the frame and the fluxes descend, told from the records'
    high bytes and fluxes (C loops on CPython); False when that does not settle it (then
    ``_check_spots`` decides, and names the spot). MicroPython has no stepped byte slices."""
    try:
        xh, yh, f = s[0::SPOT_RECORD], s[2::SPOT_RECORD], s[4::SPOT_RECORD]
    except NotImplementedError:
        return False
    # x < (high byte + 1) * 256 <= wmax when the high byte is below wmax // 256 (so for y)
    if xh and (max(xh) >= wmax >> 8 or max(yh) >= hmax >> 8):
        return False
    return f == bytes(sorted(f, reverse=True))


def _check_spots(s, wmax, hmax):
    prev = 256
    for i in range(0, len(s), SPOT_RECORD):
        x = (s[i] << 8) | s[i + 1]
        y = (s[i + 2] << 8) | s[i + 3]
        f = s[i + 4]
        if x >= wmax or y >= hmax:
            _fail("spot %d outside the frame" % (i // SPOT_RECORD))
        if f > prev:
            _fail("spots not sorted by descending flux")
        prev = f


def encode(d):
    """Validate and encode a descriptor map (keys K_*) to deterministic CBOR bytes."""
    return cbor.dumps(validate(d))


def make(device_id, counter, fw, board, width, height, quality, spots, guidance, nonce=None):
    """Build a descriptor map from its parts (``spots``: bytes of SPOT_RECORD records)."""
    d = {
        K_VERSION: VERSION,
        K_DEVICE: bytes(device_id),
        K_COUNTER: counter,
        K_FW: fw,
        K_BOARD: board,
        K_GEOM: [width, height],
        K_QUALITY: quality,
        K_SPOTS: bytes(spots),
        K_GUIDANCE: guidance,
    }
    if nonce is not None:
        d[K_NONCE] = bytes(nonce)
    return d


def decode(data):
    """Decode descriptor bytes; they must be deterministic CBOR and a valid descriptor."""
    d = _layout(data)
    return validate(cbor.canonical(data, 8) if d is None else d)


def _layout(data):
    """The descriptor map read without the general decoder, for the one layout a scanner writes:
    a map of 9 or 10 pairs whose keys are 0..9 in order (3, the nonce, may be absent), unsigned
    integers, byte and text strings, [width, height] and the quality map of unsigned integers in
    ascending key order, every head in its shortest form, nothing after. Exactly the bytes that
    ``cbor.canonical`` accepts for that layout, read as the same map; None for any other bytes
    (the general decoder and its re-encoding check then decide, and name what is wrong)."""
    if type(data) is not bytes:
        return None
    n = len(data)
    if n < 2 or (data[0] != 0xA9 and data[0] != 0xAA):
        return None
    d = {}
    i = 1
    for k in _KEYS_NONCE if data[0] == 0xAA else _KEYS:
        if i >= n or data[i] != k:
            return None
        i += 1
        if k == K_GEOM:
            if i >= n or data[i] != 0x82:
                return None
            w, i = _uint(data, i + 1, n)
            h, i = _uint(data, i, n)
            if h is None:
                return None
            v = [w, h]
        elif k == K_QUALITY:
            if i >= n or data[i] >> 5 != 5 or (data[i] & 0x1F) >= 24:
                return None
            v = {}
            last = -1
            i += 1
            for _ in range(data[i - 1] & 0x1F):
                q, i = _uint(data, i, n)
                if q is None or q <= last:  # ascending: the deterministic order, no key twice
                    return None
                x, i = _uint(data, i, n)
                if x is None:
                    return None
                v[q] = x
                last = q
        elif k == K_DEVICE or k == K_NONCE or k == K_SPOTS:
            v, i = cbor.short_string(data, i, n, 2)
        elif k == K_FW or k == K_BOARD:
            v, i = cbor.short_string(data, i, n, 3)
            if v is not None:
                try:
                    v = str(v, "utf-8")
                except UnicodeError:
                    return None
        else:
            v, i = _uint(data, i, n)
        if v is None:
            return None
        d[k] = v
    return d if i == n else None


_KEYS = (K_VERSION, K_DEVICE, K_COUNTER, K_FW, K_BOARD, K_GEOM, K_QUALITY, K_SPOTS, K_GUIDANCE)
_KEYS_NONCE = (K_VERSION, K_DEVICE, K_COUNTER, K_NONCE, K_FW, K_BOARD, K_GEOM, K_QUALITY, K_SPOTS, K_GUIDANCE)


def _uint(data, i, n):
    """(value, end) of an unsigned integer at ``i`` with its head in shortest form, else (None, i)."""
    if i >= n:
        return None, i
    ib = data[i]
    if ib < 24:
        return ib, i + 1
    if ib == 24 and i + 1 < n and data[i + 1] >= 24:
        return data[i + 1], i + 2
    if ib == 25 and i + 2 < n and data[i + 1]:
        return (data[i + 1] << 8) | data[i + 2], i + 3
    if ib == 26 and i + 4 < n and (data[i + 1] or data[i + 2]):
        return (data[i + 1] << 24) | (data[i + 2] << 16) | (data[i + 3] << 8) | data[i + 4], i + 5
    if ib == 27 and i + 8 < n and (data[i + 1] or data[i + 2] or data[i + 3] or data[i + 4]):
        return int.from_bytes(data[i + 1:i + 9], "big"), i + 9
    return None, i


def spots_list(spots):
    """Spot records as a list of (x_q, y_q, flux) integer tuples (x_px = x_q / SPOT_SCALE)."""
    out = []
    for i in range(0, len(spots) - SPOT_RECORD + 1, SPOT_RECORD):
        out.append(((spots[i] << 8) | spots[i + 1], (spots[i + 2] << 8) | spots[i + 3], spots[i + 4]))
    return out


def pack_spots(records):
    """Pack (x_q, y_q, flux) tuples into spot-record bytes."""
    out = bytearray(len(records) * SPOT_RECORD)
    j = 0
    for x, y, f in records:
        out[j] = x >> 8
        out[j + 1] = x & 0xFF
        out[j + 2] = y >> 8
        out[j + 3] = y & 0xFF
        out[j + 4] = f
        j += SPOT_RECORD
    return bytes(out)
