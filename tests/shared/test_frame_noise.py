"""Stray output on the link cannot be mistaken for a frame nor swallow one (frame.Deframer recovery)."""

from __future__ import annotations

import random

import pytest

from glintcore import frame
from glintcore.errors import FrameError

# What boards really print on their console, in between or in the middle of glint's frames.
WARNING_G = b"\x1b[31mWARNING: Auto Gain control is not supported by this sensor.\x1b[0m\r\n"  # OpenMV csi, GC2145
IDF_LOG = b"\x1b[0;33mW (52311) cam_hal: Failed to get the frame on time!\x1b[0m\n"  # ESP-IDF log line on UART0
TRACEBACK = (b"Traceback (most recent call last):\r\n  File \"glintfw/cam_openmv.py\", line 61, in set_gain\r\n"
             b"RuntimeError: Sensor control failed.\r\n")
NOISE = (WARNING_G, IDF_LOG, TRACEBACK)


def _payloads(rnd, n):
    return [bytes(rnd.randrange(256) for _ in range(rnd.choice((0, 1, 17, 200, 1500, 2048)))) for _ in range(n)]


@pytest.mark.parametrize("noise", NOISE, ids=("warning", "idf-log", "traceback"))
def test_noise_between_frames(noise):
    rnd = random.Random(1)
    ps = _payloads(rnd, 20)
    wire = b"".join(noise + frame.encode_frame(p) for p in ps) + noise
    d = frame.Deframer()
    assert d.feed(wire) == ps and d.stats_bad == 0
    assert d.stats_recovered == (20 if b"G" in noise else 0)  # only a 'G' opens a false frame


@pytest.mark.parametrize("noise", NOISE, ids=("warning", "idf-log", "traceback"))
def test_noise_inside_frames_at_every_kind_of_position(noise):
    rnd = random.Random(2)
    d = frame.Deframer()
    for p in _payloads(rnd, 40):
        w = frame.encode_frame(p)
        cut = rnd.randrange(1, len(w) - 1)  # after the start byte, before the delimiter
        assert d.feed(w[:cut] + noise + w[cut:]) == [p]
    assert d.stats_bad == 0 and d.stats_recovered == 40


def test_noise_before_and_inside_the_same_frame_and_split_reads():
    rnd = random.Random(3)
    for p in _payloads(rnd, 10):
        w = frame.encode_frame(p)
        cut = rnd.randrange(1, len(w) - 1)
        wire = WARNING_G + w[:cut] + IDF_LOG + w[cut:]
        d = frame.Deframer()
        out = []
        for i in range(0, len(wire), 7):  # reads of any size
            out += d.feed(wire[i:i + 7])
        assert out == [p]


def test_real_damage_is_still_reported():
    w = bytearray(frame.encode_frame(b"hello world" * 10))
    w[20] ^= 0x10
    ev = frame.Deframer().feed(bytes(w) + frame.encode_frame(b"ok"))
    assert isinstance(ev[0], FrameError) and ev[1] == b"ok"
    junk = bytes(random.Random(4).choice(b"GGG\n\nabc ") for _ in range(2000))  # worst case: bounded search
    assert isinstance(frame.Deframer().feed(b"G" + junk + b"\x00")[0], FrameError)


def test_the_device_does_not_search():
    """recover=False (the firmware's link): a damaged frame is answered as damaged, nothing is guessed."""
    w = frame.encode_frame(b"request")
    d = frame.Deframer(recover=False)
    assert isinstance(d.feed(w[:3] + IDF_LOG + w[3:])[0], FrameError)


def test_recovery_on_micropython(mpy):
    """The same recovery on the real MicroPython (both runtimes): frame.py is shared code."""
    payload = b"\x47payload\x00\x47" * 30
    w = frame.encode_frame(payload)
    wire = WARNING_G + w[:40] + TRACEBACK + w[40:]
    res = mpy.eval_json(f"""
from glintcore import frame
d = frame.Deframer()
ev = d.feed({wire!r})
res = [len(ev), ev[0] == {payload!r}, d.stats_recovered, d.stats_bad]
""", "res")
    assert res == [1, True, 1, 0]


def test_noise_without_a_line_start_is_found_by_the_second_pass():
    """A stray line that begins mid-word (lower case, no ESC) and a 'G' not after a line end."""
    p = bytes(range(256)) * 3
    w = frame.encode_frame(p)
    assert frame.Deframer().feed(b"xxGyy" + w) == [p]
    assert frame.Deframer().feed(w[:100] + b"oops: lower-case stray text\n" + w[100:]) == [p]
