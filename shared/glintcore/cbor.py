"""Deterministic CBOR (RFC 8949), portable to MicroPython.

Encoding follows the core deterministic encoding requirements of RFC 8949
section 4.2.1: preferred (shortest) integer, length and float encodings, map keys
sorted by the bytewise order of their encodings, definite lengths only.
Integers beyond 64 bits become bignums (tags 2 and 3).

Decoding accepts every well-formed item (indefinite lengths included) and rejects
ill-formed or unsupported input with DecodeError: truncation, reserved additional
information (28-30), two-byte simple values below 32, lengths beyond the buffer,
nesting deeper than ``max_depth``, trailing bytes, invalid UTF-8, duplicate or
unhashable map keys. No allocation exceeds what the input bytes justify: every
announced length is checked against the bytes that remain before anything is built.

``canonical(data)`` tells whether bytes are already in deterministic form, which
is how signed structures are checked (decode, re-encode, compare).
"""

import struct

from glintcore.errors import DecodeError

try:
    import math

    _frexp = math.frexp
    _copysign = math.copysign
except (ImportError, AttributeError):  # pragma: no cover - every glint port has math
    _frexp = None  # type: ignore[assignment]  # floats are then encoded without math's help
    _copysign = None  # type: ignore[assignment]

DEFAULT_MAX_DEPTH = 32
_INF = float("inf")
_FLT_MAX = 3.4028234663852886e38


class Tag:
    """A tagged item: tag number and content."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and other.tag == self.tag and other.value == self.value

    def __hash__(self):
        return hash((self.tag, repr(self.value)))

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


class Simple:
    """A simple value other than false, true, null and undefined."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Simple) and other.value == self.value

    def __hash__(self):
        return hash(("simple", self.value))

    def __repr__(self):
        return "simple(%d)" % self.value


class _Undefined:
    def __repr__(self):
        return "undefined"


undefined = _Undefined()


# --------------------------------------------------------------------------- encoding

def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(struct.pack(">I", n))
    else:
        out.append(mt | 27)
        out.extend(struct.pack(">Q", n))


def _half_bits(x):
    """The binary16 bits of x if x is exactly representable as a half float, else None."""
    if x != x:
        return 0x7E00
    sign = 0x8000 if _copysign(1.0, x) < 0 else 0
    a = -x if sign else x
    if a == _INF:
        return sign | 0x7C00
    if a == 0.0:
        return sign
    m, e = _frexp(a)  # a = m * 2**e, 0.5 <= m < 1
    exp = e + 14
    if exp >= 31:
        return None
    if exp >= 1:
        f = (m * 2.0 - 1.0) * 1024.0
        fi = int(f)
        if fi == f:
            return sign | (exp << 10) | fi
        return None
    f = a * 16777216.0  # subnormal: a = f * 2**-24
    fi = int(f)
    if fi == f and fi < 1024:
        return sign | fi
    return None


def _encode_float(out, x):
    h = _half_bits(x)
    if h is not None:
        out.append(0xF9)
        out.extend(struct.pack(">H", h))
        return
    if -_FLT_MAX <= x <= _FLT_MAX:
        b = struct.pack(">f", x)
        if struct.unpack(">f", b)[0] == x:
            out.append(0xFA)
            out.extend(b)
            return
    out.append(0xFB)
    out.extend(struct.pack(">d", x))


def _encode_int(out, v):
    if v >= 0:
        if v < 0x10000000000000000:
            _head(out, 0, v)
            return
        tag, n = 2, v
    else:
        n = -1 - v
        if n < 0x10000000000000000:
            _head(out, 1, n)
            return
        tag = 3
    nbytes = (len("%x" % n) + 1) // 2  # MicroPython ints have no bit_length()
    _head(out, 6, tag)
    _head(out, 2, nbytes)
    out.extend(n.to_bytes(nbytes, "big"))


def _encode(out, obj, depth):
    if depth > DEFAULT_MAX_DEPTH:
        raise ValueError("cbor: nesting deeper than %d" % DEFAULT_MAX_DEPTH)
    t = type(obj)
    if t is bool:
        out.append(0xF5 if obj else 0xF4)
    elif t is int:
        if 0 <= obj < 24:
            out.append(obj)
        else:
            _encode_int(out, obj)
    elif t is bytes or t is bytearray or t is memoryview:
        _head(out, 2, len(obj))
        out.extend(obj)
    elif t is str:
        b = obj.encode("utf-8")
        _head(out, 3, len(b))
        out.extend(b)
    elif t is list or t is tuple:
        _head(out, 4, len(obj))
        for item in obj:
            _encode(out, item, depth + 1)
    elif t is dict:
        _head(out, 5, len(obj))
        items = []
        for k in obj:
            if type(k) is int and 0 <= k < 24:  # the common key: one byte, its own encoding
                kb = _ONE_BYTE[k]
            else:
                kb = bytearray()
                _encode(kb, k, depth + 1)
                kb = bytes(kb)
            items.append((kb, k))
        items.sort(key=_first)
        prev = None
        for kb, k in items:
            if kb == prev:
                raise ValueError("cbor: duplicate map key after encoding")
            prev = kb
            out.extend(kb)
            _encode(out, obj[k], depth + 1)
    elif obj is None:
        out.append(0xF6)
    elif obj is undefined:
        out.append(0xF7)
    elif t is float:
        _encode_float(out, obj)
    elif isinstance(obj, Tag):
        _head(out, 6, obj.tag)
        _encode(out, obj.value, depth + 1)
    elif isinstance(obj, Simple):
        v = obj.value
        if v < 20:
            out.append(0xE0 | v)
        elif 32 <= v < 256:
            out.append(0xF8)
            out.append(v)
        else:
            raise ValueError("cbor: simple value %d cannot be encoded" % v)
    elif isinstance(obj, int):  # int subclasses (e.g. IntEnum on CPython)
        _encode_int(out, int(obj))
    else:
        raise ValueError("cbor: cannot encode " + t.__name__)


_ONE_BYTE = [bytes([i]) for i in range(24)]  # the encodings of the integers 0..23


def _first(pair):
    return pair[0]


def dumps(obj):
    """Encode ``obj`` in deterministic CBOR (RFC 8949 section 4.2.1)."""
    out = bytearray()
    _encode(out, obj, 0)
    return bytes(out)


def encode_into(out, obj):
    """Append the deterministic encoding of ``obj`` to the bytearray ``out``."""
    _encode(out, obj, 0)


# --------------------------------------------------------------------------- decoding

_BREAK = object()


def _half_value(h):
    sign = h & 0x8000
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = m / 16777216.0
    elif e == 31:
        v = float("nan") if m else _INF
    else:
        v = (1024 + m) * (2.0 ** (e - 25))
    return -v if sign else v


class _Decoder:
    def __init__(self, data, max_depth):
        self.data = data
        self.n = len(data)
        self.i = 0
        self.max_depth = max_depth

    def fail(self, what):
        raise DecodeError("cbor: " + what + " at offset " + str(self.i))

    def take(self, n):
        i = self.i
        if n > self.n - i:
            self.fail("truncated: need %d bytes, %d left" % (n, self.n - i))
        self.i = i + n
        return self.data[i:i + n]

    def argument(self, ai):
        if ai < 24:
            return ai
        if ai == 24:
            return self.take(1)[0]
        if ai == 25:
            return struct.unpack(">H", self.take(2))[0]
        if ai == 26:
            return struct.unpack(">I", self.take(4))[0]
        if ai == 27:
            return struct.unpack(">Q", self.take(8))[0]
        self.fail("reserved additional information %d" % ai)

    def need(self, count, per_item):
        # Every item takes at least one byte: refuse counts the remaining input cannot hold.
        if count * per_item > self.n - self.i:
            self.fail("length %d beyond the end of the input" % count)

    def item(self, depth):
        if depth > self.max_depth:
            self.fail("nesting deeper than %d" % self.max_depth)
        if self.i >= self.n:
            self.fail("truncated: expected a data item")
        ib = self.data[self.i]
        self.i += 1
        major = ib >> 5
        ai = ib & 0x1F
        if major == 7:
            return self.simple(ai)
        if ai == 31:
            if major == 2 or major == 3:
                return self.indefinite_string(major)
            if major == 4:
                return self.indefinite_array(depth)
            if major == 5:
                return self.indefinite_map(depth)
            self.fail("indefinite length not allowed for major type %d" % major)
        arg = ai if ai < 24 else self.argument(ai)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return bytes(self.take(arg))
        if major == 3:
            return self.text(bytes(self.take(arg)))
        if major == 4:
            self.need(arg, 1)
            out = []
            for _ in range(arg):
                out.append(self.value(depth + 1))
            return out
        if major == 5:
            self.need(arg, 2)
            out = {}
            for _ in range(arg):
                self.map_entry(out, depth)
            return out
        # major 6: tag
        value = self.value(depth + 1)
        if arg == 2 or arg == 3:
            if type(value) is not bytes:
                self.fail("bignum tag %d needs a byte string" % arg)
            n = int.from_bytes(value, "big") if value else 0
            return n if arg == 2 else -1 - n
        return Tag(arg, value)

    def value(self, depth):
        """A data item that is not a break."""
        v = self.item(depth)
        if v is _BREAK:
            self.i -= 1
            self.fail("unexpected break")
        return v

    def map_entry(self, out, depth):
        key = self.value(depth + 1)
        if type(key) is list or type(key) is dict:
            self.fail("unsupported map key type " + type(key).__name__)
        if type(key) is float and key != key:
            # NaN != NaN: duplicates could not be detected, nor the keys ordered.
            self.fail("NaN map key")
        if key in out:
            self.fail("duplicate map key")
        out[key] = self.value(depth + 1)

    def text(self, b):
        try:
            return str(b, "utf-8")
        except UnicodeError:
            self.fail("invalid UTF-8 in text string")

    def simple(self, ai):
        if ai < 20:
            return Simple(ai)
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 23:
            return undefined
        if ai == 24:
            v = self.take(1)[0]
            if v < 32:
                self.fail("two-byte simple value %d below 32" % v)
            return Simple(v)
        if ai == 25:
            return _half_value(struct.unpack(">H", self.take(2))[0])
        if ai == 26:
            return struct.unpack(">f", self.take(4))[0]
        if ai == 27:
            return struct.unpack(">d", self.take(8))[0]
        if ai == 31:
            return _BREAK
        self.fail("reserved additional information %d" % ai)

    def indefinite_string(self, major):
        chunks = []
        while True:
            if self.i >= self.n:
                self.fail("truncated: unterminated indefinite-length string")
            ib = self.data[self.i]
            if ib == 0xFF:
                self.i += 1
                break
            self.i += 1
            if ib >> 5 != major or (ib & 0x1F) == 31:
                self.fail("bad chunk in indefinite-length string")
            chunks.append(bytes(self.take(self.argument(ib & 0x1F))))
        b = b"".join(chunks)
        return b if major == 2 else self.text(b)

    def indefinite_array(self, depth):
        out = []
        while True:
            v = self.item(depth + 1)
            if v is _BREAK:
                return out
            out.append(v)

    def indefinite_map(self, depth):
        out = {}
        while True:
            if self.i < self.n and self.data[self.i] == 0xFF:
                self.i += 1
                return out
            self.map_entry(out, depth)


def loads(data, max_depth=DEFAULT_MAX_DEPTH):
    """Decode exactly one CBOR item from ``data``; raise DecodeError if ill-formed or followed by bytes."""
    dec = _Decoder(data, max_depth)
    value = dec.value(0)
    if dec.i != dec.n:
        dec.fail("%d trailing bytes" % (dec.n - dec.i))
    return value


def loads_prefix(data, max_depth=DEFAULT_MAX_DEPTH):
    """Decode one item from the start of ``data``; return (value, bytes consumed)."""
    dec = _Decoder(data, max_depth)
    value = dec.value(0)
    return value, dec.i


def canonical(data, max_depth=DEFAULT_MAX_DEPTH):
    """Decode ``data`` and insist that it is already in deterministic encoding; return the value."""
    value = loads(data, max_depth)
    try:
        again = dumps(value)
    except (ValueError, TypeError) as e:  # keys that collide once encoded (1 and 1.0), unencodable values
        raise DecodeError("cbor: cannot be re-encoded deterministically: %s" % e) from None
    if again != bytes(data):
        raise DecodeError("cbor: not in deterministic encoding (RFC 8949 section 4.2)")
    return value


def short_string(data, i, n, major):
    """(bytes, end) of a definite byte (major 2) or text (3) string at ``i`` whose head is in shortest
    form with a length below 65536, else (None, i): the one head check of the fast readers of fixed
    layouts (glintcore.cose.decode1's envelope, glintcore.descriptor.decode's fields). Longer lengths,
    indefinite lengths and non-shortest heads give None: those readers then leave the bytes to
    :func:`canonical`, which accepts or refuses them."""
    if i >= n or data[i] >> 5 != major:
        return None, i
    ai = data[i] & 0x1F
    if ai < 24:
        ln, j = ai, i + 1
    elif ai == 24 and i + 1 < n and data[i + 1] >= 24:
        ln, j = data[i + 1], i + 2
    elif ai == 25 and i + 2 < n and data[i + 1]:
        ln, j = (data[i + 1] << 8) | data[i + 2], i + 3
    else:
        return None, i
    if ln > n - j:
        return None, i
    return data[j:j + ln], j + ln
