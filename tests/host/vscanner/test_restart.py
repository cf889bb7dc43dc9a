"""Reset and wake per port (glintcore.restart) against the virtual scanner's real REPL emulation.

What can be emulated here: the virtual scanner runs the firmware on MicroPython with a friendly
and raw REPL, where Ctrl-D soft-resets (main.py runs again, like ports/esp32) and
``machine.reset()`` hard-resets. Both wake sequences must bring glint back from either REPL.
What cannot: OpenMV's rule that main.py runs only on the first soft reset after a hard reset
(openmv main.c ``first_soft_reset``) is checked by test_restart_rules below against the firmware's
choice, not against an OpenMV build (docs/hardware.md HIL checklist step "reset").
"""

from __future__ import annotations

import json
import time

import pytest
from glinttest import REPO

from glint.link import Timeouts, open_scanner
from glintcore import restart
from glintcore.proto import MSG_INFO, MSG_REPL, MSG_RESET


def _boards():
    return {p.parent.name: json.loads(p.read_text()) for p in (REPO / "boards").glob("*/board.json")}


def test_restart_rules():
    """Every port restarts the way its boot code needs (esp32 main.c: soft; openmv main.c: hard)."""
    kinds = {bid: restart.kind_of(cfg) for bid, cfg in _boards().items()}
    ports = {bid: cfg["port"] for bid, cfg in _boards().items()}
    assert {kinds[b] for b in kinds if ports[b] == "openmv"} == {restart.HARD}
    assert {kinds[b] for b in kinds if ports[b] in ("esp32", "sim")} == {restart.SOFT}

    calls = []

    class Machine:
        def reset(self):
            calls.append("reset")

        def soft_reset(self):
            calls.append("soft_reset")

    restart.restart(restart.HARD, Machine())
    restart.restart(restart.SOFT, Machine())
    assert calls == ["reset", "soft_reset"]
    with pytest.raises(ValueError):
        restart.kind_of({"reset": "warm"})


@pytest.mark.parametrize("kind", restart.KINDS)
def test_wake_sequences_are_noise_in_protocol_mode(kind):
    """Sent blind to a scanner already in protocol mode, a wake sequence is dropped, never a frame."""
    from glintcore import frame

    seq = restart.wake_sequence(kind)
    assert b"\r\x03" not in seq and frame.SOF not in seq
    d = frame.Deframer()
    assert d.feed(seq) == [] and not d.in_frame


def _info(url, timeout=15.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with open_scanner(url, Timeouts(request=3.0)) as c:
                return c.request(MSG_INFO).body
        except Exception as e:  # the scanner may still be rebooting
            last = e
            time.sleep(0.3)
    raise AssertionError(f"glint did not come back: {last}")


@pytest.mark.parametrize("kind", restart.KINDS)
@pytest.mark.parametrize("repl", ["friendly", "raw"])
def test_wake_brings_glint_back_from_the_repl(vscanner, kind, repl):
    with open_scanner(vscanner.url, Timeouts(request=10.0)) as c:
        c.wake(restart.SOFT)  # whatever an earlier test left behind
        assert c.request(MSG_INFO).body["board"] == "sim"
        c.exchange(MSG_REPL)
        time.sleep(0.3)
        if repl == "raw":
            c.transport.write(b"\r\x01")  # mpremote's way into the raw REPL
            time.sleep(0.3)
        c.transport.drain_input()
        c.wake(kind)
    assert _info(vscanner.url)["board"] == "sim"


def test_msg_reset_brings_glint_back(vscanner):
    with open_scanner(vscanner.url, Timeouts(request=10.0)) as c:
        before = c.request(MSG_INFO).body
        c.exchange(MSG_RESET)
    after = _info(vscanner.url)
    assert after["device_id"] == before["device_id"]


def test_a_host_that_died_mid_frame_does_not_block_mpremote(vscanner):
    """Half a frame, a pause, then mpremote's interrupt and raw-REPL request: the scanner answers them."""
    from glintcore import frame, messages

    with open_scanner(vscanner.url, Timeouts(request=10.0)) as c:
        c.wake(restart.SOFT)
        assert c.request(MSG_INFO).body["board"] == "sim"
        c.transport.write(frame.encode_frame(messages.encode_request(MSG_INFO, 9, {}))[:7])  # the host dies here
        time.sleep(0.6)  # > FRAME_IDLE_MS
        c.transport.drain_input()
        c.transport.write(b"\r\x03\r\x01")
        seen = b""
        deadline = time.monotonic() + 5
        while b"raw REPL; CTRL-B to exit" not in seen and time.monotonic() < deadline:
            seen += c.transport.read()
        assert b"raw REPL; CTRL-B to exit" in seen
        c.wake(restart.SOFT)
    assert _info(vscanner.url)["board"] == "sim"
