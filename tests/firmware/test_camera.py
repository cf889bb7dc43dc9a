"""Camera control per sensor: units, mapping, clamping, read-back, stale frames, OpenMV without a copy."""

from __future__ import annotations

import json
import math
import sys
import types

import pytest
from glinttest import REPO

from glintfw import cam_esp32
from glintfw.cam_esp32 import AEC_MAX, AGC_CDB, agc_db, agc_index, aec_lines
from glintfw.cam_sim import SimCamera

# esp32-camera sensors/private_include/ov2640_settings.h (and ov2640.c set_agc_gain): the GAIN register
# value written for AGC index 0..30
OV2640_AGC_TABLE = (0x00, 0x10, 0x18, 0x30, 0x34, 0x38, 0x3C, 0x70, 0x72, 0x74, 0x76, 0x78, 0x7A, 0x7C, 0x7E, 0xF0,
                    0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF)


def _register_gain(reg):
    """OV2640 GAIN register (datasheet): bits 7..4 each double the gain, bits 3..0 add sixteenths."""
    g = 1.0 + (reg & 0x0F) / 16
    for bit in (4, 5, 6, 7):
        g *= 2 if reg >> bit & 1 else 1
    return g


def test_ov2640_agc_index_is_gain_minus_one():
    assert [_register_gain(r) for r in OV2640_AGC_TABLE] == [i + 1 for i in range(31)]
    assert list(AGC_CDB) == [round(2000 * math.log10(i + 1)) for i in range(31)]


def test_ov2640_mapping_clamps_and_rounds():
    assert aec_lines(8000, 30) == 267 and aec_lines(8000, 60) == 133
    assert aec_lines(1, 30) == 1 and aec_lines(10 ** 7, 30) == AEC_MAX
    assert agc_index(0) == 0 and agc_index(6) == 1 and agc_index(29) == 27 and agc_index(36) == 30
    for db in range(0, 30):  # the nearest table gain: 1x -> 2x is a 6 dB step, from 14 dB on steps are < 1 dB
        assert abs(agc_db(agc_index(db)) - db) <= (3 if db < 14 else 1)


def test_mapping_on_micropython(mpy):
    res = mpy.eval_json("""
from glintfw.cam_esp32 import aec_lines, agc_index, agc_db
res = [[aec_lines(u, 30) for u in (1, 500, 8000, 40000, 10**6)], [agc_index(d) for d in range(37)],
       [agc_db(i) for i in range(31)]]
""", "res")
    assert res == [[aec_lines(u, 30) for u in (1, 500, 8000, 40000, 10 ** 6)], [agc_index(d) for d in range(37)],
                   [agc_db(i) for i in range(31)]]


def _playback(tmp_path, n=10):
    import numpy as np

    from glint.sim.frames import pgm_bytes

    d = tmp_path / "frames"
    d.mkdir()
    for i in range(n):
        (d / f"f{i:02d}.pgm").write_bytes(pgm_bytes(np.full((240, 320), i, np.uint8)))
    return str(d)


def test_stale_frames_are_dropped_after_init_and_every_change(tmp_path):
    cam = SimCamera(320, 240, frames_dir=_playback(tmp_path), stale_frames=2)
    buf = bytearray(320 * 240)
    assert [cam.capture(buf)[0] for _ in range(2)] == [2, 3]  # 0 and 1 were exposed before init finished
    cam.set_exposure(5000)
    assert cam.capture(buf)[0] == 6  # 4 and 5 were exposed with the old setting
    cam.set_gain(12)
    cam.invalidate()  # e.g. the illumination came on
    assert cam.capture(buf)[0] == 9 and cam.discarded == 6
    assert (cam.exposure_us(), cam.gain_db()) == (5000, 12)


def test_the_app_discards_after_the_light_comes_on_and_reports_settings(tmp_path, sim_board):
    """App + sim board: the illumination invalidates before each capture; self-test and config set read back."""
    board = sim_board(lens_seed=None)
    cam = SimCamera(320, 240, frames_dir=_playback(tmp_path), stale_frames=1, gain_db_max=30)
    lit = []

    class Light:
        def value(self, v):
            lit.append(v)

    board.make_camera = lambda: cam
    board.make_illumination = Light
    from glintfw import app as app_mod

    a = app_mod.App(board)
    a._capture()
    assert a.frame[0] == 1 and lit == [1, 0]  # frame 0 predates init, the settings and the light
    a._capture()
    assert a.frame[0] == 3 and cam.discarded == 2  # the light came on again: frame 2 dropped
    r = a.cmd_config_set({"key": "gain", "value": 36})
    assert r["config"]["gain"] == 36 and r["camera"]["gain_db"] == 30  # clamped to the sensor, read back
    st = a.cmd_selftest({})["camera"]
    assert st["ok"] and st["exposure_us"] == a.config.get("exposure_us") and st["gain_db"] == 30
    assert st["exposure"] == "manual" and st["stale_frames"] == 1


class _Img:
    def __init__(self, data):
        self._data = data

    def bytearray(self):
        return self._data


class _CSI:
    """What glint calls on csi.CSI(): the calls are recorded (the real module runs only on OpenMV)."""

    def __init__(self, calls):
        self.calls = calls
        self.frame = bytearray(320 * 240)
        self._exp = None
        self._gain = None

    def reset(self):
        self.calls.append("reset")

    def pixformat(self, f):
        self.calls.append(("pixformat", f))

    def framesize(self, f):
        self.calls.append(("framesize", f))

    def snapshot(self):
        self.calls.append("snapshot")
        return _Img(self.frame)

    def auto_exposure(self, on, exposure_us=-1):
        self.calls.append(("auto_exposure", on, exposure_us))
        self._exp = exposure_us

    def auto_gain(self, on, gain_db=0):
        self.calls.append(("auto_gain", on, gain_db))
        self._gain = gain_db

    def exposure_us(self):
        return self._exp

    def gain_db(self):
        return self._gain + 0.2


@pytest.fixture
def fake_csi(monkeypatch):
    calls = []
    mod = types.ModuleType("csi")
    mod.GRAYSCALE, mod.QVGA = 1, 2
    dev = _CSI(calls)
    mod.CSI = lambda: dev
    monkeypatch.setitem(sys.modules, "csi", mod)
    return dev


@pytest.mark.parametrize("bid", ["openmv_h7_plus", "nicla_vision"])
def test_openmv_camera_without_a_copy_and_per_sensor_control(fake_csi, bid):
    from glintfw.cam_openmv import OpenMVCamera

    cfg = json.loads((REPO / "boards" / bid / "board.json").read_text())["camera"]
    cam = OpenMVCamera(dict(cfg, gain=40))
    assert cam.owns_frame and cam.capture(None) is fake_csi.frame  # the frame buffer itself, no copy
    assert fake_csi.calls.count("snapshot") == 1 + 3  # three stale frames dropped after init
    if bid == "nicla_vision":  # GC2145: no manual control, so no call that makes csi print a WARNING
        assert not any(c[0] in ("auto_gain", "auto_exposure") for c in fake_csi.calls if isinstance(c, tuple))
        assert cam.settings()["exposure"] == "auto" and cam.gain_db() is None and cam.exposure_us() is None
    else:
        assert ("auto_exposure", False, 8000) in fake_csi.calls and ("auto_gain", False, 36) in fake_csi.calls
        assert (cam.exposure_us(), cam.gain_db()) == (8000, 36)  # clamped to the OV5640's 36 dB, read back


def test_esp32_board_gain_and_exposure_go_to_the_driver_as_lines_and_index(monkeypatch):
    calls = []

    class Driver:
        def __init__(self, **kw):
            calls.append(("init", kw["xclk_pin"], kw["fb_count"]))

        def set_exposure_ctrl(self, v):
            calls.append(("aec", v))

        def set_aec_value(self, v):
            calls.append(("aec_value", v))
            self._aec = v

        def get_aec_value(self):
            return self._aec

        def set_gain_ctrl(self, v):
            calls.append(("agc", v))

        def set_agc_gain(self, v):
            calls.append(("agc_gain", v))
            self._agc = v

        def get_agc_gain(self):
            return self._agc

    mod = types.ModuleType("camera")
    mod.Camera = Driver
    mod.FrameSize = types.SimpleNamespace(QVGA=6)
    mod.GrabMode = types.SimpleNamespace(LATEST=1)
    mod.PixelFormat = types.SimpleNamespace(GRAYSCALE=3)
    monkeypatch.setitem(sys.modules, "camera", mod)
    cfg = json.loads((REPO / "boards" / "esp32_cam" / "board.json").read_text())["camera"]
    cam = cam_esp32.Esp32Camera(dict(cfg, gain=40))
    assert calls[0] == ("init", 0, 1) and ("aec", False) in calls and ("agc", False) in calls
    assert ("aec_value", 133) in calls and ("agc_gain", 27) in calls  # 8000 us / 60 us lines; 40 dB -> 29 -> 27
    assert (cam.exposure_us(), cam.gain_db()) == (133 * 60, 29)
