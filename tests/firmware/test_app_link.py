"""The protocol core (App + LinkCore) on CPython with the real sim board, and on MicroPython."""

from __future__ import annotations

import os

import pytest

from glint.sim.frames import write_pgm
from glint.vscanner.lens import LensSpec, render
from glintcore import cose, frame, messages, proto
from conftest import MPY_BOARD
from glintfw import app as app_mod
from glintfw.link import LinkCore


@pytest.fixture
def core(sim_board):
    return LinkCore(app_mod.App(sim_board()))


def req(mtype, seq, body=None):
    return frame.encode_frame(messages.encode_request(mtype, seq, body or {}))


def replies(out):
    d = frame.Deframer()
    return [messages.decode_message(p) for p in d.feed(out)]


def test_requests_split_anywhere_and_signed_scan(core):
    data = req(proto.MSG_KEYGEN, 1) + req(proto.MSG_SCAN, 2, {"nonce": b"\x07" * 16})
    out = b""
    for i in range(0, len(data), 3):  # arbitrary chunking
        o, action, used = core.feed(data[i:i + 3])
        assert action == app_mod.ACT_NONE and used == len(data[i:i + 3])
        out += o
    kg, sc = replies(out)
    assert kg.status == proto.ST_OK and sc.status == proto.ST_OK and sc.seq == 2
    assert cose.verify1(sc.body["scan"], kg.body["pubkey"])


def test_interrupt_position_is_exact(core):
    data = req(proto.MSG_INFO, 5) + b"\r\x03\r\x01rest"
    out, action, used = core.feed(data)
    assert action == app_mod.ACT_REPL and data[used:] == b"\r\x01rest"
    assert replies(out)[0].status == proto.ST_OK


def test_repl_and_reset_actions_follow_the_reply(core):
    out, action, used = core.feed(req(proto.MSG_RESET, 1) + req(proto.MSG_INFO, 2))
    assert action == app_mod.ACT_RESET and len(replies(out)) == 1
    out, action, _ = core.feed(req(proto.MSG_REPL, 3))
    assert action == app_mod.ACT_REPL and replies(out)[0].seq == 3


def test_ctrl_c_inside_a_frame_is_data(core):
    nonce = b"\r\x03" * 8  # the interrupt bytes inside a frame are payload, not an interrupt
    core.feed(req(proto.MSG_KEYGEN, 1))
    out, action, _ = core.feed(req(proto.MSG_SCAN, 2, {"nonce": nonce}))
    assert action == app_mod.ACT_NONE and replies(out)[0].status == proto.ST_OK


def test_poor_capture_gives_guidance_and_no_counter(core, tmp_path):
    core.feed(req(proto.MSG_KEYGEN, 1))
    write_pgm(tmp_path / "sim" / "lens.pgm", render(LensSpec("empty")))
    before = core.app.counter.peek
    r = replies(core.feed(req(proto.MSG_SCAN, 2, {"nonce": os.urandom(8)}))[0])[0]
    assert r.status == proto.ST_POOR_CAPTURE and r.body["guidance"] != proto.GD_OK
    assert core.app.counter.peek == before and core.app.ind.pattern == "retry"


def test_link_core_on_micropython(mpy):
    """The same sans-IO core on real MicroPython (WebAssembly): state on its filesystem."""
    res = mpy.eval_json(MPY_BOARD % "/apptest" + """
from glintfw import app as A
from glintfw.link import LinkCore
from glintcore import frame, messages
core = LinkCore(A.App(_B()))
out, act, used = core.feed(frame.encode_frame(messages.encode_request(6, 1, {})) + frame.encode_frame(messages.encode_request(3, 2, {})) + b"\\r\\x03zz")
evs = frame.Deframer().feed(out)
ms = [messages.decode_message(e) for e in evs]
r = [len(ms), ms[0].status, len(ms[0].body["pubkey"]), ms[1].body["camera"]["ok"], ms[1].body["key"]["ok"], act, used,
     core.refused_interrupts]
""", "r")
    assert res[:5] == [2, 0, 65, False, True]
    assert res[5] == 0 and res[7] == 1  # provisioned, so locked: the interrupt does not hand over the REPL


def test_illumination_is_on_only_while_capturing(sim_board):
    """A board with make_illumination() (ESP32-CAM flash LED) gets light around each capture only."""
    board = sim_board()
    events = []

    class Light:
        def value(self, v):
            events.append(("light", v))

    cam = board.make_camera()

    class Cam:
        width, height = cam.width, cam.height

        def capture(self, buf):
            events.append(("capture", None))
            return cam.capture(buf)  # the buffer that holds the frame (docs/boards.md camera interface)

        def __getattr__(self, name):
            return getattr(cam, name)

    board.make_illumination = Light
    board.make_camera = lambda: Cam()
    a = app_mod.App(board)
    a.capture_detect()
    a.cmd_capture({"offset": 0, "length": 16})
    assert events == [("light", 1), ("capture", None), ("light", 0)] * 2


def test_a_partial_frame_is_dropped_after_a_pause(core):
    """A host that died mid-frame: after FRAME_IDLE_MS, mpremote's interrupt is an interrupt again."""
    from glintfw.link import FRAME_IDLE_MS

    partial = req(proto.MSG_INFO, 1)[:6]
    assert core.feed(partial, now=1000) == (b"", app_mod.ACT_NONE, len(partial)) and core.deframer.in_frame
    out, action, used = core.feed(b"\r\x03", now=1000 + FRAME_IDLE_MS // 2)  # no pause: still frame data
    assert action == app_mod.ACT_NONE and core.deframer.in_frame
    out, action, used = core.feed(b"\r\x03\r\x01", now=1000 + 3 * FRAME_IDLE_MS)
    assert action == app_mod.ACT_REPL and used == 2 and core.idle_resets == 1


def test_idle_reset_on_micropython(mpy):
    """The same on the real MicroPython (ticks_diff arithmetic), with a request after the pause."""
    res = mpy.eval_json(MPY_BOARD % "/idletest" + """
from glintfw import app as A
from glintfw.link import LinkCore, FRAME_IDLE_MS
from glintcore import frame, messages
core = LinkCore(A.App(_B()))
w = frame.encode_frame(messages.encode_request(1, 7, {}))
core.feed(w[:5], 100)
out, act, used = core.feed(w, 100 + 2 * FRAME_IDLE_MS)
ms = [messages.decode_message(e) for e in frame.Deframer().feed(out)]
res = [len(ms), ms[0].seq, ms[0].status, core.idle_resets]
""", "res")
    assert res == [1, 7, 0, 1]
