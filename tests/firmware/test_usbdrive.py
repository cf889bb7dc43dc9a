"""Protocol mode never runs with the OpenMV USB drive exported (glintfw.usbdrive, docs/security.md).

The STM32 OpenMV boards restart USB as CDC only through ``pyb.usb_mode`` (micropython
ports/stm32/usb.c); the RT1062 has no such call, so it runs only while its drive is the SD card
(/sdcard mounted at boot: openmv ports/mimxrt/main.c) with the state on /flash. No board is at
hand: ``Pyb`` below stands in for the stm32 port's ``pyb.usb_mode`` as that file defines it (a
second ``usb_mode(mode)`` while USB is up changes nothing unless USB was turned off first), and
``Volumes`` for the mount table; on the Unix port the RT1062's check runs against the real VFS,
remounted as OpenMV's _boot.py lays it out. What the real firmware does is unverified without
hardware (docs/hardware.md).
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


class Volumes:
    """The firmware's view of the mounted volumes (usbdrive.Volumes): mount points and files."""

    def __init__(self, mounts=("/flash", "/sdcard"), files=()):
        self._mounts, self.files = list(mounts), set(files)

    def mounts(self):
        return list(self._mounts)

    def exists(self, path):
        return path in self.files


def test_the_rt1062_runs_only_while_its_drive_is_the_sd_card():
    cfg, pyb = _cfg("openmv_rt1062"), Pyb()
    assert cfg["usb_drive"] == usbdrive.ON_SDCARD and cfg["storage_root"] == "/flash"
    assert usbdrive.protect(cfg, pyb, fs=Volumes()) == usbdrive.ON_SDCARD == usbdrive.state
    refused = [
        (Volumes(mounts=["/flash"]), "no SD card is mounted at /sdcard, so the USB drive is the internal flash"),
        (Volumes(files={"/sdcard/boot.py"}), "/sdcard/boot.py runs after the firmware chose the USB drive"),
        (Volumes(files={"/flash/boot.py"}), "/flash/boot.py runs after"),
        (Volumes(mounts=["/", "/sdcard"]), "storage_root /flash is not on a volume apart from the SD card"),
    ]
    for fs, why in refused:
        with pytest.raises(usbdrive.DriveExported, match=why):
            usbdrive.protect(cfg, pyb, fs=fs)
    with pytest.raises(usbdrive.DriveExported, match="storage_root /sdcard/x is not on a volume apart"):
        usbdrive.protect(dict(cfg, storage_root="/sdcard/x"), pyb, fs=Volumes())
    assert pyb.calls == []  # USB is never touched on the RT1062


def test_a_drive_without_a_way_is_refused_without_touching_usb():
    pyb = Pyb()
    with pytest.raises(usbdrive.DriveExported, match="openmv_rt1062 exports its storage .* usb_drive \\(null\\)"):
        usbdrive.protect(dict(_cfg("openmv_rt1062"), usb_drive=None), pyb, fs=Volumes())
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
    with pytest.raises(BoardError, match="usb_drive sdcard exports the SD card, and storage_root /sdcard is on it"):
        boardspec.check(dict(_cfg("openmv_rt1062"), storage_root="/sdcard"))


def test_the_boot_path_refuses_protocol_mode_before_touching_state(capsys):
    class Board:
        def load_config(self):
            return dict(_cfg("openmv_rt1062"), usb_drive=None)

        def __getattr__(self, name):  # any other board call means the app started
            raise AssertionError("protocol mode started: " + name)

    assert link.main(Board(), real=True) is None
    out = capsys.readouterr().out
    assert out.startswith(link.REFUSED + "board openmv_rt1062 exports its storage") and out.count("\n") == 1


def test_on_micropython(mpy):
    """The same on real MicroPython (Unix port and WebAssembly): the H7 Plus hidden, a drive without a way refused."""
    h7, rt = json.dumps(_cfg("openmv_h7_plus")), json.dumps(dict(_cfg("openmv_rt1062"), usb_drive=None))
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


def test_the_rt1062_check_against_openmvs_real_mount_layout(mpy_unix, tmp_path):
    """The Unix port's VFS remounted as current OpenMV firmware leaves it after _boot.py (nothing at "/",
    the flash at /flash, an SD card at /sdcard): glint's state fits only under /flash (the old
    storage_root "/" cannot even be created), the RT1062 starts with the card mounted, and is refused
    once it is gone or a boot.py sits on a volume. usbdrive.Volumes reads the real mount table."""
    flash, sd = tmp_path / "flash", tmp_path / "sd"
    flash.mkdir()
    sd.mkdir()
    res = mpy_unix.eval_json("""
import json, os, vfs
from glintfw import store, usbdrive
cfg = json.loads(%r)
res = []
def attempt(f):
    try:
        return f()
    except OSError as e:
        return str(e)
saved = [m for m in vfs.mount() if m[1] == "/"][0][0]
vfs.umount("/")
try:
    vfs.mount(vfs.VfsPosix(%r), "/flash")
    vfs.mount(vfs.VfsPosix(%r), "/sdcard")
    res.append(sorted(os.listdir("/")))
    res.append(attempt(lambda: store.makedirs(store.join("/", "glint")) or "made"))
    res.append(attempt(lambda: store.makedirs(store.join(cfg["storage_root"], "glint")) or "made"))
    res.append(attempt(lambda: usbdrive.protect(cfg)))
    with open("/sdcard/boot.py", "w") as f:
        f.write("pass")
    res.append(attempt(lambda: usbdrive.protect(cfg)))
    os.remove("/sdcard/boot.py")
    vfs.umount("/sdcard")
    res.append(attempt(lambda: usbdrive.protect(cfg)))
finally:
    for m in [m[1] for m in vfs.mount()]:
        vfs.umount(m)
    vfs.mount(saved, "/")
""" % (json.dumps(_cfg("openmv_rt1062")), str(flash), str(sd)), "res")
    assert res[0] == ["flash", "sdcard"]
    assert res[1] != "made" and "ENODEV" in res[1]  # no volume at "/" on current OpenMV firmware
    assert res[2] == "made" and (flash / "glint").is_dir() and not any(sd.iterdir())
    assert res[3] == usbdrive.ON_SDCARD
    assert "/sdcard/boot.py runs after the firmware chose the USB drive" in res[4]
    assert "no SD card is mounted at /sdcard" in res[5]
