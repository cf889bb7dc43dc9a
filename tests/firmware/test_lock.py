"""The locked scanner (glintfw.lock) and the fail-closed counter, on CPython with the real sim board
(issue 15 point 3): a provisioned scanner hands over no REPL and accepts no forced re-key without
the maintainer's signed challenge or the button held at boot; a damaged counter never rewinds."""

from __future__ import annotations

import os

import pytest

from glintcore import frame, messages, p256, proto
from glintfw import app as app_mod
from glintfw.link import LinkCore

MAINT_D = p256.private_key_from_entropy(b"m" * 32)
MAINT_PUB = p256.public_key(MAINT_D)


class _Pin:
    def __init__(self, v):
        self.v = v

    def value(self):
        return self.v


@pytest.fixture
def boot(sim_board):
    def make(button=0):
        board = sim_board()
        board.make_button = lambda: _Pin(button)
        return LinkCore(app_mod.App(board))

    return make


def call(core, mtype, body=None, seq=1):
    out, action, _ = core.feed(frame.encode_frame(messages.encode_request(mtype, seq, body or {})))
    [m] = [messages.decode_message(p) for p in frame.Deframer().feed(out)]
    return m, action


def test_unprovisioned_is_open_provisioned_is_locked(boot):
    core = boot()
    m, action = call(core, proto.MSG_REPL)
    assert m.status == proto.ST_OK and action == app_mod.ACT_REPL  # bring-up: open
    core = boot()
    m, _ = call(core, proto.MSG_KEYGEN, {"maintainer": MAINT_PUB})
    assert m.status == proto.ST_OK and m.body["locked"] is True
    info, _ = call(core, proto.MSG_INFO)
    assert info.body["locked"] is True and info.body["maintainer"] is True
    m, action = call(core, proto.MSG_REPL)
    assert m.status == proto.ST_LOCKED and action == app_mod.ACT_NONE and "locked" in m.body["error"]
    out, action, _ = core.feed(b"\r\x03\r\x01")  # mpremote's interrupt and raw-REPL request
    assert action == app_mod.ACT_NONE and core.refused_interrupts == 1
    m, _ = call(core, proto.MSG_KEYGEN, {"force": True})
    assert m.status == proto.ST_LOCKED
    m, _ = call(core, proto.MSG_KEYGEN, {"maintainer": p256.public_key(12345)})
    assert m.status == proto.ST_LOCKED  # nobody swaps the maintainer key of a locked scanner
    # after a reboot it is still locked
    m, action = call(boot(), proto.MSG_REPL)
    assert m.status == proto.ST_LOCKED


def test_unlock_by_signed_challenge_single_use(boot):
    core = boot()
    call(core, proto.MSG_KEYGEN, {"maintainer": MAINT_PUB})
    ch, _ = call(core, proto.MSG_UNLOCK)
    assert ch.body["locked"] and len(ch.body["challenge"]) == proto.UNLOCK_CHALLENGE_LEN
    did = ch.body["device_id"]
    wrong = p256.sign(12345, proto.UNLOCK_PREFIX + did + ch.body["challenge"])
    m, _ = call(core, proto.MSG_UNLOCK, {"signature": wrong})
    assert m.status == proto.ST_LOCKED
    right = p256.sign(MAINT_D, proto.UNLOCK_PREFIX + did + ch.body["challenge"])
    m, _ = call(core, proto.MSG_UNLOCK, {"signature": right})
    assert m.status == proto.ST_LOCKED  # the challenge was spent by the wrong answer
    ch, _ = call(core, proto.MSG_UNLOCK)
    scan_sig = p256.sign(MAINT_D, ch.body["challenge"])  # not domain-separated: refused
    assert call(core, proto.MSG_UNLOCK, {"signature": scan_sig})[0].status == proto.ST_LOCKED
    ch, _ = call(core, proto.MSG_UNLOCK)
    right = p256.sign(MAINT_D, proto.UNLOCK_PREFIX + did + ch.body["challenge"])
    m, _ = call(core, proto.MSG_UNLOCK, {"signature": right})
    assert m.status == proto.ST_OK and m.body["locked"] is False
    m, action = call(core, proto.MSG_REPL)
    assert m.status == proto.ST_OK and action == app_mod.ACT_REPL


def test_button_held_at_boot_unlocks_that_boot(boot):
    call(boot(), proto.MSG_KEYGEN, {})  # provisioned without a maintainer key
    core = boot()
    m, _ = call(core, proto.MSG_UNLOCK)
    assert m.status == proto.ST_LOCKED and "button" in m.body["error"]
    core = boot(button=1)
    m, _ = call(core, proto.MSG_KEYGEN, {"force": True, "maintainer": MAINT_PUB})
    assert m.status == proto.ST_OK
    assert call(boot(), proto.MSG_INFO)[0].body["locked"] is True  # the next boot without the button


def test_counter_damage_never_rewinds(boot, tmp_path):
    core = boot()
    call(core, proto.MSG_KEYGEN, {"maintainer": MAINT_PUB})
    counters = []
    for i in range(40):  # two reservations: both records written
        m, _ = call(core, proto.MSG_SCAN, {"nonce": os.urandom(16)}, seq=i + 2)
        assert m.status == proto.ST_OK, m.body
        counters.append(core.app.counter.peek - 1)
    last = counters[-1]
    d = tmp_path / "flash" / "glint"
    rec = d / "counter"
    raw = bytearray(rec.read_bytes())
    raw[3] ^= 0x40  # one flipped byte in one record
    rec.write_bytes(bytes(raw))
    core = boot()
    m, _ = call(core, proto.MSG_SCAN, {"nonce": os.urandom(16)})
    assert m.status == proto.ST_OK and core.app.counter.peek - 1 > last  # jumped past, not rewound to 1
    for name in ("counter", "counter.b"):  # both records damaged: fail closed
        raw = bytearray((d / name).read_bytes())
        raw[2] ^= 0x01
        (d / name).write_bytes(bytes(raw))
    core = boot()
    m, _ = call(core, proto.MSG_SCAN, {"nonce": os.urandom(16)})
    assert m.status == proto.ST_STORAGE and "re-provisioned" in m.body["error"]
    core = boot(button=1)  # the host re-provisions (unlocked by presence) and says where to resume
    m, _ = call(core, proto.MSG_KEYGEN, {"force": True, "counter_floor": last + 1000})
    assert m.status == proto.ST_OK
    m, _ = call(core, proto.MSG_SCAN, {"nonce": os.urandom(16)}, seq=9)
    assert m.status == proto.ST_OK and core.app.counter.peek - 1 >= last + 1000
