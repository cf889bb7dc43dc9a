"""Link framing: round trips, resynchronisation after noise, size limits, interrupt, fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glintcore import frame
from glintcore.errors import FrameError
from glintcore.proto import MAX_PAYLOAD, ST_BAD_CRC, ST_MALFORMED, ST_OVERSIZE


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00\x00", bytes(range(256)) * 4, b"\xff" * 254, b"\xff" * 255,
                                     b"a" * MAX_PAYLOAD])
def test_roundtrip(payload):
    wire = frame.encode_frame(payload)
    assert wire[0] == frame.SOF and wire[-1] == 0 and 0 not in wire[:-1]
    assert len(wire) <= frame.max_encoded_len(len(payload))
    assert frame.Deframer().feed(wire) == [payload]
    assert frame.decode_frame(wire) == payload


def test_byte_by_byte_and_back_to_back():
    d = frame.Deframer()
    payloads = [bytes([i]) * i for i in range(40)]
    wire = b"".join(frame.encode_frame(p) for p in payloads)
    out = []
    for b in wire:
        out += d.feed(bytes([b]))
    assert out == payloads


def test_oversize_encode_refused():
    with pytest.raises(FrameError, match="exceeds"):
        frame.encode_frame(b"x" * (MAX_PAYLOAD + 1))


def test_oversize_frame_skipped_and_reported():
    d = frame.Deframer(max_payload=64)
    ev = d.feed(frame.encode_frame(b"y" * 500) + frame.encode_frame(b"next"))
    assert isinstance(ev[0], FrameError) and ev[0].status == ST_OVERSIZE
    assert ev[1] == b"next"


def test_corrupt_crc_reported_then_resync():
    wire = bytearray(frame.encode_frame(b"hello world"))
    wire[5] ^= 0x40
    ev = frame.Deframer().feed(bytes(wire) + frame.encode_frame(b"ok"))
    assert isinstance(ev[0], FrameError) and ev[0].status in (ST_BAD_CRC, ST_MALFORMED)
    assert ev[1] == b"ok"


def test_line_noise_then_frames():
    rnd = random.Random(7)
    d = frame.Deframer()
    for _ in range(50):
        noise = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        payload = rnd.randbytes(rnd.randrange(300))
        ev = d.feed(noise + b"\x00" + frame.encode_frame(payload))
        assert ev[-1] == payload, "a frame after noise and a delimiter is always recovered"
        assert all(isinstance(e, FrameError) or e == frame.INTERRUPT for e in ev[:-1])


def test_interrupt_only_outside_frames():
    d = frame.Deframer()
    assert d.feed(b"\r\x03") == [frame.INTERRUPT]
    # inside a frame the same bytes are data
    p = b"\r\x03\r\x03"
    assert d.feed(frame.encode_frame(p)) == [p]
    assert d.feed(b"\x03") == []


def test_reset_forgets_partial_frame():
    d = frame.Deframer()
    wire = frame.encode_frame(b"abc")
    d.feed(wire[:3])
    d.reset()
    assert d.feed(b"\r\x03") == [frame.INTERRUPT]


# hypothesis examples of the fuzz test in the default run (its edge-biased draws, shrinking), under
# -m slow, and the seeded inputs of the plain loop beside it (hypothesis costs a few ms an example,
# the deframer a fraction of a ms): the default run checks 11,000 inputs as before 10,000, in a fraction of the time.
FUZZ_EXAMPLES, FUZZ_EXAMPLES_SLOW, FUZZ_SEEDED = 1_000, 10_000, 10_000
_FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck))


@settings(max_examples=FUZZ_EXAMPLES, **_FUZZ)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_fuzz_deframer(data, chunk):
    _deframes_anything(data, chunk)


@pytest.mark.slow
@settings(max_examples=FUZZ_EXAMPLES_SLOW, **_FUZZ)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_fuzz_deframer_long(data, chunk):
    _deframes_anything(data, chunk)


def _wire(rnd):
    """Up to 300 bytes: noise, delimiters, interrupts, and pieces of real frames (some too long, some cut)."""
    out = bytearray()
    while len(out) < rnd.randrange(301):
        k = rnd.randrange(5)
        if k == 0:
            out += rnd.randbytes(rnd.randrange(20))
        elif k == 1:
            out += rnd.choice((b"\x00", b"\r\x03", b"\x03", b"\x00\x00"))
        else:
            f = frame.encode_frame(rnd.randbytes(rnd.randrange(200)))
            out += f[:rnd.randrange(len(f) + 1)] if k == 2 else f
    return bytes(out[:300]), rnd.randrange(1, 65)


def test_fuzz_deframer_seeded():
    rnd = random.Random(300)
    for _ in range(FUZZ_SEEDED):
        data, chunk = _wire(rnd) if rnd.random() < 0.5 else (rnd.randbytes(rnd.randrange(301)), rnd.randrange(1, 65))
        try:
            _deframes_anything(data, chunk)
        except Exception as e:
            raise AssertionError("input %s in chunks of %d" % (data.hex(), chunk)) from e


def _deframes_anything(data, chunk):
    d = frame.Deframer(max_payload=128)
    for i in range(0, len(data), chunk):
        for ev in d.feed(data[i:i + chunk]):
            assert isinstance(ev, (bytes, FrameError)) or ev == frame.INTERRUPT
            if isinstance(ev, bytes):
                assert len(ev) <= 128
    # after any garbage, a delimiter and a good frame always get through
    assert d.feed(b"\x00" + frame.encode_frame(b"sync"))[-1] == b"sync"
