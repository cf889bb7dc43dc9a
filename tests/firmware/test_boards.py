"""Every board folder has the same files, a complete board.json, and a board.py that imports anywhere."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import glintcore  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
BOARDS = sorted(p.name for p in (REPO / "boards").iterdir() if p.is_dir() and not p.name.startswith("."))
REQUIRED = {"xiao_esp32s3_sense", "esp32s3_eye", "esp32_cam", "openmv_h7_plus", "openmv_rt1062", "nicla_vision", "sim"}
INTERFACE = ("load_config", "make_camera", "make_leds", "make_buzzer", "make_button", "make_link", "entropy")


def _load(bid):
    spec = importlib.util.spec_from_file_location("board_" + bid, REPO / "boards" / bid / "board.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_required_boards_present():
    assert REQUIRED <= set(BOARDS)


@pytest.mark.parametrize("bid", BOARDS)
def test_board_json_complete(bid):
    files = {p.name for p in (REPO / "boards" / bid).iterdir() if p.suffix in (".py", ".json")}
    assert files == {"board.py", "board.json"}
    cfg = json.loads((REPO / "boards" / bid / "board.json").read_text())
    assert cfg["id"] == bid
    assert cfg["port"] in ("esp32", "openmv", "sim")
    assert cfg["mpy_arch"] in ("xtensawin", "armv7emdp")
    cam = cfg["camera"]
    assert (cam["width"], cam["height"]) in ((320, 240), (640, 480)) and cam["pixformat"] == "GRAYSCALE"
    assert {"model", "driver", "exposure_us", "gain"} <= set(cam)
    assert cfg["link"]["type"] in ("usb-console", "uart")
    assert cfg["keystore"] in ("file", "nvs")
    assert 0 < cfg["usb"]["vid"] <= 0xFFFF and 0 < cfg["usb"]["pid"] <= 0xFFFF
    assert {"leds", "buzzer"} <= set(cfg["indicators"]) and "button" in cfg and "storage_root" in cfg


@pytest.mark.parametrize("bid", BOARDS)
def test_board_py_imports_on_cpython_and_exposes_interface(bid):
    mod = _load(bid)
    for name in INTERFACE:
        assert callable(getattr(mod, name)), name
    assert mod.load_config()["id"] == bid
    if bid != "sim":  # hardware modules are imported only when a make_* is called
        with pytest.raises(ImportError):
            mod.make_camera()


def test_sim_board_camera_and_entropy(tmp_path):
    import numpy as np

    from glint.sim.frames import pgm_bytes

    mod = _load("sim")
    cfg = dict(mod.load_config())
    img = (np.arange(320 * 240) % 251).astype(np.uint8).reshape(240, 320)
    (tmp_path / "lens.pgm").write_bytes(b"P5\n# glint\n320 240\n255\n" + img.tobytes())
    (tmp_path / "e.bin").write_bytes(bytes(range(32)))
    cfg["camera"] = dict(cfg["camera"], path=str(tmp_path / "lens.pgm"), frames_dir=str(tmp_path / "none"))
    cfg["entropy_path"] = str(tmp_path / "e.bin")
    mod._config = cfg
    cam = mod.make_camera()
    buf = bytearray(320 * 240)
    cam.capture(buf)
    assert bytes(buf) == img.tobytes()
    (tmp_path / "frames").mkdir()
    for i in (1, 0):
        (tmp_path / "frames" / f"f{i}.pgm").write_bytes(pgm_bytes(np.full((240, 320), i + 7, np.uint8)))
    cam.frames_dir = str(tmp_path / "frames")
    assert [cam.capture(buf)[0] for _ in range(3)] == [7, 8, 7]
    assert mod.entropy(4) == bytes(range(4)) and mod.entropy(4) == bytes(range(4, 8))
    leds = mod.make_leds()
    leds[0].value(1)
    assert leds[0].value() == 1 and mod.make_link() is None
