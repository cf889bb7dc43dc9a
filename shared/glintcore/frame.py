"""Link framing: SOF + COBS(payload || CRC-32) + 0x00, sans-IO.

Wire layout of one frame (docs/formats.md):

    0x47 ('G')  COBS( payload || crc32(payload) little-endian )  0x00

* COBS removes every 0x00 from the body, so 0x00 only ever ends a frame and a
  receiver resynchronises on the next one after line noise.
* The start byte marks "inside a frame". Bytes that arrive between frames and do
  not start one are noise and are dropped, except mpremote's interrupt sequence
  ``\\r\\x03`` (CR, Ctrl-C), which the deframer reports as INTERRUPT so a device
  can hand its console over to the MicroPython REPL. Inside a frame any byte
  value is data, so the link is binary-safe. (Random line noise that happens to
  contain CR then Ctrl-C between frames therefore reaches the REPL; USB has its
  own CRC, and a host that gets no reply wakes the scanner again with Ctrl-B,
  Ctrl-D, see docs/protocol.md.)
* ``max_payload`` bounds memory: the receive buffer is allocated once, and an
  over-long frame is skipped up to its delimiter and reported, never buffered.

* Stray output cannot swallow a frame (``recover``, on by default, off on the
  device): a driver's print that contains 'G' (0x47, e.g. OpenMV's
  ``"\x1b[31mWARNING: Auto Gain ..."``) opens a false frame that runs into the next
  real one, and an ESP-IDF log line or a traceback written by another task can land
  inside a frame. A frame that fails to decode is searched, bounded by
  RECOVERY_TRIES: from each later start byte in it, as it is and with one run of
  text bytes that ends in a newline cut out. A candidate counts only if its CRC-32
  matches, so a false recovery has odds of about 2**-32 per candidate. See
  docs/protocol.md "A link nothing else can desync".

``Deframer.feed(data)`` returns a list of events: ``bytes`` (a good payload),
a FrameError (``.status`` is a glintcore.proto status code), or INTERRUPT.
"""

from micropython import const

from glintcore.errors import FrameError
from glintcore.proto import MAX_PAYLOAD, ST_BAD_CRC, ST_MALFORMED, ST_OVERSIZE

try:
    from binascii import crc32
except ImportError:  # pragma: no cover - ports without binascii.crc32
    crc32 = None  # type: ignore[assignment]  # the pure-Python CRC below takes over

SOF = const(0x47)
DELIM = const(0x00)
CRC_LEN = const(4)
INTERRUPT = "interrupt"

_CR = const(0x0D)
_CTRL_C = const(0x03)
_LF = const(0x0A)
RECOVERY_TRIES = const(4096)  # decode attempts per damaged frame (host CPU bound, ~ms on CPython)
NOISE_HEADROOM = const(4096)  # bytes of stray output a recovering receiver buffers beyond the largest frame


def _is_text(b):
    """A byte a print, a log line or a traceback is made of: printable ASCII, ESC, TAB, CR, LF."""
    return 0x20 <= b <= 0x7E or b == 0x1B or b == 0x09 or b == _CR or b == _LF


def crc32_soft(data):
    """CRC-32 (IEEE 802.3, as binascii.crc32) bit by bit: for ports built without binascii.crc32."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    return c ^ 0xFFFFFFFF


def crc32_of(data):
    """CRC-32 of ``data`` as an unsigned int: binascii.crc32 where the port has it, else crc32_soft.

    The one CRC of glint: frames here, and the store's records (glintfw.store) import it."""
    if crc32 is not None:
        return crc32(data) & 0xFFFFFFFF
    return crc32_soft(data)


_crc32 = crc32_of


def max_encoded_len(payload_len):
    """Bytes on the wire for a payload of ``payload_len`` bytes (worst case)."""
    n = payload_len + CRC_LEN
    return 1 + n + n // 254 + 1 + 1


def _cobs_encode_into(out, data):
    # Runs of non-zero bytes are found with find() and copied as slices: C speed on
    # MicroPython instead of a bytecode loop per byte. A run of 254 bytes becomes a
    # 0xFF block with no implied zero, exactly as the per-byte COBS definition.
    n = len(data)
    i = 0
    while i <= n:
        j = data.find(b"\x00", i)
        if j < 0:
            j = n
        while j - i >= 254:
            out.append(0xFF)
            out.extend(data[i:i + 254])
            i += 254
        out.append(j - i + 1)
        out.extend(data[i:j])
        i = j + 1


def encode_frame(payload):
    """Frame one message payload for the wire (start byte through delimiter)."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise FrameError("frame payload of %d bytes exceeds the %d-byte limit" % (n, MAX_PAYLOAD))
    body = bytearray(payload)
    body.extend(_crc32(payload).to_bytes(4, "little"))
    out = bytearray()
    out.append(SOF)
    _cobs_encode_into(out, body)
    out.append(DELIM)
    return bytes(out)


def _cobs_decode(src, n, dst):
    """Decode COBS from src[0:n] into dst; return the decoded length or -1 if malformed."""
    i = 0
    o = 0
    while i < n:
        code = src[i]
        if code == 0:
            return -1
        i += 1
        run = code - 1
        if i + run > n:
            return -1
        dst[o:o + run] = src[i:i + run]
        o += run
        i += run
        if code != 0xFF and i < n:
            dst[o] = 0
            o += 1
    return o


def decode_frame(frame):
    """Decode one complete frame (with or without the trailing delimiter) to its payload."""
    d = Deframer()
    events = d.feed(frame if frame[-1:] == b"\x00" else bytes(frame) + b"\x00")
    if len(events) != 1:
        raise FrameError("expected exactly one frame, got %d events" % len(events), )
    ev = events[0]
    if isinstance(ev, FrameError):
        raise ev
    if ev == INTERRUPT:
        raise FrameError("no frame: interrupt sequence")
    return ev


# Deframer states
_IDLE = const(0)  # between frames
_IN = const(1)  # inside a frame, buffering
_SKIP = const(2)  # inside an over-long frame, discarding to the delimiter


class Deframer:
    """Incremental frame decoder: feed bytes in any chunking, get payloads out."""

    def __init__(self, max_payload=MAX_PAYLOAD, recover=True):
        self.max_payload = max_payload
        self.recover = recover  # search a damaged frame for the real one (host); the device sets False
        # COBS body only; a recovering receiver also holds the stray output inside a frame
        self._cap = max_encoded_len(max_payload) - 2 + (NOISE_HEADROOM if recover else 0)
        self._buf = bytearray(self._cap)
        self._mv = memoryview(self._buf)
        self._out = bytearray(self._cap)  # decoded payload + CRC
        self._omv = memoryview(self._out)
        self._n = 0
        self._state = _IDLE
        self._cr = False
        self.stats_ok = 0
        self.stats_bad = 0
        self.stats_noise = 0
        self.stats_recovered = 0

    def reset(self):
        """Forget any partial frame (e.g. after an inter-byte timeout)."""
        self._n = 0
        self._state = _IDLE
        self._cr = False

    @property
    def in_frame(self):
        return self._state != _IDLE

    def feed(self, data):
        """Feed received bytes (bytes or bytearray); return the events they complete."""
        if type(data) is memoryview:
            data = bytes(data)
        events = []
        cap = self._cap
        n = len(data)
        pos = 0
        while pos < n:
            state = self._state
            if state == _IN:
                # bulk: copy up to the delimiter in one slice
                k = data.find(b"\x00", pos)
                end = n if k < 0 else k
                m = end - pos
                if self._n + m > cap:
                    self._state = _SKIP
                    pos = end
                    continue
                self._mv[self._n:self._n + m] = data[pos:end]
                self._n += m
                pos = end
                if k >= 0:
                    pos += 1
                    events.append(self._finish())
                    self._state = _IDLE
            elif state == _SKIP:
                k = data.find(b"\x00", pos)
                if k < 0:
                    break
                pos = k + 1
                self._state = _IDLE
                self.stats_bad += 1
                events.append(FrameError("frame longer than %d bytes dropped" % self.max_payload, ST_OVERSIZE))
            else:  # _IDLE: byte by byte, looking for a frame start or the interrupt sequence
                b = data[pos]
                pos += 1
                if b == SOF:
                    self._n = 0
                    self._state = _IN
                    self._cr = False
                elif b == _CTRL_C and self._cr:
                    self._cr = False
                    events.append(INTERRUPT)
                elif b == _CR:
                    self._cr = True
                else:
                    self._cr = False
                    if b != DELIM:
                        self.stats_noise += 1
        return events

    def _finish(self):
        n = self._n
        self._n = 0
        res = _decode_checked(self._mv, n, self._omv, self.max_payload)
        if isinstance(res, FrameError) and self.recover:
            found = _recover(bytes(self._mv[0:n]), self.max_payload)
            if found is not None:
                self.stats_recovered += 1
                self.stats_ok += 1
                return found
        if isinstance(res, FrameError):
            self.stats_bad += 1
        else:
            self.stats_ok += 1
        return res


def _decode_checked(src, n, dst, max_payload):
    """The payload of the COBS body src[0:n] (decoded into dst), or a FrameError saying why not."""
    n = _cobs_decode(src, n, dst)
    if n < 0:
        return FrameError("malformed frame (bad COBS encoding)", ST_MALFORMED)
    if n < CRC_LEN:
        return FrameError("frame too short (%d bytes)" % n, ST_MALFORMED)
    plen = n - CRC_LEN
    if plen > max_payload:
        return FrameError("frame longer than %d bytes dropped" % max_payload, ST_OVERSIZE)
    payload = bytes(dst[0:plen])
    got = int.from_bytes(dst[plen:n], "little")
    if _crc32(payload) != got:
        return FrameError("frame failed its CRC-32 check", ST_BAD_CRC)
    return payload


def _line_start(b):
    """Where a console line begins: ESC (colour codes), or a capital letter (W (..) ESP-IDF, WARNING, Traceback)."""
    return b == 0x1B or 0x41 <= b <= 0x5A


def _recover(body, max_payload):
    """The real payload inside a damaged frame body, or None (see the module docstring).

    Candidates: the body from each later start byte (stray output that opened a false frame),
    each as it is and with one text run ending in LF cut out (stray output inside the frame).
    Two passes share RECOVERY_TRIES: first the likely ones (a start byte right after a line
    end; a cut that begins where console lines begin), then every other. Only a candidate
    whose CRC-32 matches is taken.
    """
    n = len(body)
    out = bytearray(n)
    after_lf = [0]
    others = []
    for j in range(n):
        if body[j] == SOF:
            (after_lf if j > 0 and body[j - 1] == _LF else others).append(j + 1)
    budget = [RECOVERY_TRIES]
    passes = ([(s, s != 0) for s in after_lf], [(s, False) for s in after_lf] + [(s, True) for s in others])
    for likely, starts in zip((True, False), passes):
        for s, whole in starts:
            res = _search(body[s:], whole, likely, out, max_payload, budget)
            if res is not None:
                return res
            if budget[0] <= 0:
                return None
    return None


def _search(cand, whole, likely, out, max_payload, budget):
    if whole:
        budget[0] -= 1
        res = _decode_checked(cand, len(cand), out, max_payload)
        if not isinstance(res, FrameError):
            return res
    m = len(cand)
    for e in range(m):
        if cand[e] != _LF:
            continue
        a = e
        while a > 0 and _is_text(cand[a - 1]):
            a -= 1
        for cut in range(e, a - 1, -1):  # cut cand[cut:e+1], the shortest first
            if _line_start(cand[cut]) != likely:
                continue
            budget[0] -= 1
            if budget[0] <= 0:
                return None
            joined = cand[:cut] + cand[e + 1:]
            res = _decode_checked(joined, len(joined), out, max_payload)
            if not isinstance(res, FrameError):
                return res
    return None
