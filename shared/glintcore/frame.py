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

``Deframer.feed(data)`` returns a list of events: ``bytes`` (a good payload),
a FrameError (``.status`` is a glintcore.proto status code), or INTERRUPT.
"""

from micropython import const

from glintcore.errors import FrameError
from glintcore.proto import MAX_PAYLOAD, ST_BAD_CRC, ST_MALFORMED, ST_OVERSIZE

try:
    from binascii import crc32
except ImportError:  # pragma: no cover - ports without binascii.crc32
    crc32 = None

SOF = const(0x47)
DELIM = const(0x00)
CRC_LEN = const(4)
INTERRUPT = "interrupt"

_CR = const(0x0D)
_CTRL_C = const(0x03)


def _crc32(data):
    if crc32 is not None:
        return crc32(data) & 0xFFFFFFFF
    c = 0xFFFFFFFF  # pragma: no cover - bitwise fallback
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    return c ^ 0xFFFFFFFF


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

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self._cap = max_encoded_len(max_payload) - 2  # COBS body only
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
        n = _cobs_decode(self._mv, self._n, self._omv)
        self._n = 0
        if n < 0:
            self.stats_bad += 1
            return FrameError("malformed frame (bad COBS encoding)", ST_MALFORMED)
        if n < CRC_LEN:
            self.stats_bad += 1
            return FrameError("frame too short (%d bytes)" % n, ST_MALFORMED)
        plen = n - CRC_LEN
        if plen > self.max_payload:
            self.stats_bad += 1
            return FrameError("frame longer than %d bytes dropped" % self.max_payload, ST_OVERSIZE)
        payload = bytes(self._omv[0:plen])
        got = int.from_bytes(self._omv[plen:n], "little")
        if _crc32(payload) != got:
            self.stats_bad += 1
            return FrameError("frame failed its CRC-32 check", ST_BAD_CRC)
        self.stats_ok += 1
        return payload
