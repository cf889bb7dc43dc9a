"""Protocol mode never runs with the OpenMV USB drive exported (glintfw.usbdrive, docs/security.md).

The STM32 OpenMV boards restart USB as CDC only through ``pyb.usb_mode`` (micropython
ports/stm32/usb.c); the RT1062 has no such call, so protocol mode is refused there. No
board is at hand: ``Pyb`` below stands in for the stm32 port's ``pyb.usb_mode`` as that file
defines it (a second ``usb_mode(mode)`` while USB is up changes nothing unless USB was turned
off first). What the real firmware does with it is unverified without hardware (docs/hardware.md).
"""

from __future__ import annotations

import json

import pytest
from glinttest import REPO

from glintcore import boardspec
from glintcore.errors import BoardError
from glintfw import link, usbdrive


def _cfg(bid):
    return json.loads((REPO / "boards" / bid / "board.json").read_text())


class Pyb:
    """pyb.usb_mode of the stm32 port: init once while up; None turns USB off (ports/stm32/usb.c)."""

    def __init__(self, mode="VCP+MSC", ignores=False):
        self.mode, self.ignores, self.calls = mode, ignores, []

    def usb_mode(self, *args, **kw):
        self.calls.append((args[0] if args else "?", kw))
        if not args:
            return self.mode
        if self.ignores:  # a firmware whose USB cannot be reconfigured from Python
            return None
        if args[0] is None:
            self.mode = None
        elif self.mode is None:
            self.mode = args[0]


@pytest.mark.parametrize("bid", ["openmv_h7_plus", "nicla_vision"])
def test_the_stm32_boards_restart_usb_as_serial_only_with_their_own_ids(bid):
    cfg, pyb, slept = _cfg(bid), Pyb(), []
    assert usbdrive.protect(cfg, pyb, slept.append) == usbdrive.HIDDEN == usbdrive.state
    usb = cfg["usb"]
    assert pyb.calls == [("?", {}), (None, {}), ("VCP", {"vid": usb["vid"], "pid": usb["pid"]}), ("?", {})]
    assert slept == [usbdrive.OFF_MS] and pyb.mode == "VCP"


def test_a_board_already_serial_only_is_left_alone():
    pyb = Pyb(mode="VCP")
    assert usbdrive.protect(_cfg("openmv_h7_plus"), pyb, lambda ms: None) == usbdrive.HIDDEN
    assert pyb.calls == [("?", {}), ("?", {})]


def test_a_drive_that_stays_exported_is_refused():
    with pytest.raises(usbdrive.DriveExported, match="still exported .*VCP\\+MSC"):
        usbdrive.protect(_cfg("openmv_h7_plus"), Pyb(ignores=True), lambda ms: None)


def test_the_rt1062_is_refused_without_touching_usb():
    pyb = Pyb()
    with pytest.raises(usbdrive.DriveExported, match="openmv_rt1062 exports its storage .* usb_drive \\(null\\)"):
        usbdrive.protect(_cfg("openmv_rt1062"), pyb)
    assert pyb.calls == []


def test_boards_without_a_drive_and_an_accepted_drive():
    for bid in ("esp32_cam", "esp32s3_eye", "xiao_esp32s3_sense", "sim"):
        assert usbdrive.protect(_cfg(bid), Pyb()) == usbdrive.NONE
    accepted = dict(_cfg("openmv_rt1062"), usb_drive=usbdrive.EXPORTED)
    assert usbdrive.protect(accepted, Pyb()) == usbdrive.EXPORTED


def test_every_drive_board_names_how_and_board_json_refuses_an_unknown_way():
    for p in sorted((REPO / "boards").glob("*/board.json")):
        cfg = json.loads(p.read_text())
        assert not cfg["storage_drive"] or "usb_drive" in cfg, p.parent.name
    with pytest.raises(BoardError, match="usb_drive 'eject' is none of"):
        boardspec.check(dict(_cfg("openmv_h7_plus"), usb_drive="eject"))


def test_the_boot_path_refuses_protocol_mode_before_touching_state(capsys):
    class Board:
        def load_config(self):
            return _cfg("openmv_rt1062")

        def __getattr__(self, name):  # any other board call means the app started
            raise AssertionError("protocol mode started: " + name)

    assert link.main(Board(), real=True) is None
    out = capsys.readouterr().out
    assert out.startswith(link.REFUSED + "board openmv_rt1062 exports its storage") and out.count("\n") == 1


def test_on_micropython(mpy):
    """The same on real MicroPython (Unix port and WebAssembly): the H7 Plus hidden, the RT1062 refused."""
    h7, rt = (json.dumps(_cfg(b)) for b in ("openmv_h7_plus", "openmv_rt1062"))
    res = mpy.eval_json("""
import json
from glintfw import link, usbdrive
class Pyb:
    def __init__(self):
        self.mode = 'VCP+MSC'
        self.calls = []
    def usb_mode(self, *a, **kw):
        self.calls.append([a[0] if a else '?', kw.get('pid')])
        if a and a[0] is None:
            self.mode = None
        elif a and self.mode is None:
            self.mode = a[0]
        return self.mode if not a else None
p = Pyb()
state = usbdrive.protect(json.loads(%r), p, lambda ms: None)
class B:
    def load_config(self):
        return json.loads(%r)
started = link.main(B(), real=True)
res = [state, p.calls, started is None]
""" % (h7, rt), "res")
    assert res == ["hidden", [["?", None], [None, None], ["VCP", _cfg("openmv_h7_plus")["usb"]["pid"]], ["?", None]],
                   True]
