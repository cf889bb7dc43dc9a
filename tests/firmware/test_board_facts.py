"""board.json against the sourced board-facts table (board_facts.py), and the pin check of the board layer."""

from __future__ import annotations

import json
import shutil

import pytest
from board_facts import FACTS, READ, SOURCES, lookup, render
from glinttest import REPO

from glintcore import boardspec
from glintcore.errors import BoardError
from glintfw.board_common import Board

REAL = sorted(p.parent.name for p in (REPO / "boards").glob("*/board.json") if p.parent.name != "sim")
# What issue 18 asks board.json to carry, with a source, for every real board.
REQUIRED = {"mpy_arch", "usb.vid", "usb.pid", "storage_root", "storage_drive", "reset", "camera.model",
            "camera.stale_frames", "camera.max_width"}


def _cfg(bid):
    return json.loads((REPO / "boards" / bid / "board.json").read_text())


@pytest.mark.parametrize("bid", REAL)
def test_board_json_matches_the_sourced_facts(bid):
    cfg = _cfg(bid)
    assert REQUIRED <= {path for path, *_ in FACTS[bid]}
    for path, value, src, status in FACTS[bid]:
        assert src in SOURCES and (status == READ or status.startswith("unverified: "))
        assert lookup(cfg, path) == value, f"{bid}: {path} is {lookup(cfg, path)!r}, the source says {value!r}"


@pytest.mark.parametrize("bid", REAL)
def test_sensor_capabilities_are_declared(bid):
    cam = _cfg(bid)["camera"]
    assert cam["grayscale"] is True
    assert cam["manual_exposure"] == (cam["exposure_unit"] is not None)
    assert cam["manual_gain"] == (cam["gain_unit"] is not None) == (cam["gain_db_max"] > 0)
    assert cam["width"] * cam["height"] <= cam["max_width"] * cam["max_height"]
    assert _cfg(bid)["reset"] in ("soft", "hard")


def test_docs_carry_the_facts_table():
    """docs/boards.md embeds the table this test checks against (regenerate: python tools/board_facts.py)."""
    assert render() in (REPO / "docs" / "boards.md").read_text()


@pytest.mark.parametrize("bid", sorted(FACTS) + ["sim"])
def test_every_board_passes_the_board_check(bid):
    assert boardspec.problems(_cfg(bid)) == []


def test_a_button_on_the_camera_clock_is_refused(tmp_path):
    """The old ESP32-CAM board.json (BOOT button on GPIO0 = XCLK) stops the board layer before any Pin()."""
    cfg = _cfg("esp32_cam")
    cfg["button"] = {"pin": 0, "active_low": True}
    cfg["indicators"]["leds"].append({"pin": 22, "role": "status"})
    (tmp_path / "board.json").write_text(json.dumps(cfg))
    with pytest.raises(BoardError) as e:
        Board(str(tmp_path)).load_config()
    assert "button is on GPIO0, the camera's xclk" in str(e.value) and "(and 1 more)" in str(e.value)
    assert any("GPIO22, the camera's pclk" in p for p in boardspec.problems(cfg))


def test_shared_pins_and_oversize_frames_are_refused():
    cfg = _cfg("xiao_esp32s3_sense")
    cfg["button"] = {"pin": 21}
    assert boardspec.problems(cfg) == ["board xiao_esp32s3_sense: the button and the status LED 0 share GPIO21"]
    cfg = _cfg("nicla_vision")
    cfg["camera"]["width"], cfg["camera"]["height"] = 640, 480
    assert boardspec.problems(cfg) == ["board nicla_vision: a 640x480 frame does not fit (largest 320x240)"]


def test_the_host_build_refuses_it_too(tmp_path):
    from glint.errors import UsageError
    from glint.fw.build import load_board

    shutil.copytree(REPO / "boards" / "esp32_cam", tmp_path / "boards" / "esp32_cam")
    cfg = _cfg("esp32_cam")
    cfg["indicators"]["buzzer"] = {"pin": 26}
    (tmp_path / "boards" / "esp32_cam" / "board.json").write_text(json.dumps(cfg))
    with pytest.raises(UsageError, match="the buzzer is on GPIO26, the camera's sda"):
        load_board("esp32_cam", tmp_path)


def test_the_board_layer_refuses_on_micropython(mpy):
    """The same refusal on the real MicroPython (WebAssembly port), from board.json beside board.py."""
    cfg = _cfg("esp32_cam")
    cfg["button"] = {"pin": 0}
    bad = json.dumps(cfg)
    res = mpy.eval_json(f"""
import sys
try:
    import os
    os.mkdir('/tbf')
except OSError:
    pass
with open('/tbf/board.json', 'w') as f:
    f.write({bad!r})
from glintfw.board_common import Board
from glintcore.errors import BoardError
try:
    Board('/tbf/board.py').load_config()
    res = 'accepted'
except BoardError as e:
    res = str(e)
""", "res")
    assert res == "board esp32_cam: the button is on GPIO0, the camera's xclk"
