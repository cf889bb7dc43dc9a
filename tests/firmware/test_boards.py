"""Every board folder has the same files, a complete board.json, and a thin board.py that imports anywhere.

The real boards' board.py bind the interface to their port family's class
(glintfw.board_esp32 / glintfw.board_openmv, on glintfw.board_common); these tests load
them from the repository on CPython and on the real MicroPython (WebAssembly port).
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from glinttest import REPO

import glintcore  # noqa: F401
from glintfw import board_common
from glintfw.board_common import INTERFACE, Board, board_dir
from glintfw.board_esp32 import Esp32Board
from glintfw.board_openmv import OpenMVBoard

BOARDS = sorted(p.name for p in (REPO / "boards").iterdir() if p.is_dir() and not p.name.startswith("."))
REQUIRED = {"xiao_esp32s3_sense", "esp32s3_eye", "esp32_cam", "openmv_h7_plus", "openmv_rt1062", "nicla_vision", "sim"}
FAMILY = {"esp32": Esp32Board, "openmv": OpenMVBoard}
THIN_BOARD_LINES = 20  # a real board's board.py: docstring, import, binding


def _load(path, name="board_under_test"):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cfg(bid):
    return json.loads((REPO / "boards" / bid / "board.json").read_text())


def test_required_boards_present():
    assert REQUIRED <= set(BOARDS)


@pytest.mark.parametrize("bid", BOARDS)
def test_board_json_complete(bid):
    files = {p.name for p in (REPO / "boards" / bid).iterdir() if p.suffix in (".py", ".json")}
    assert files == {"board.py", "board.json"}
    cfg = _cfg(bid)
    assert cfg["id"] == bid
    assert cfg["port"] in ("esp32", "openmv", "sim")
    assert cfg["mpy_arch"] in ("xtensawin", "armv7emsp")  # OpenMV firmware is single-precision (board_facts.py)
    cam = cfg["camera"]
    assert (cam["width"], cam["height"]) in ((320, 240), (640, 480)) and cam["pixformat"] == "GRAYSCALE"
    assert {"model", "driver", "exposure_us", "gain"} <= set(cam)
    assert cfg["link"]["type"] in ("usb-console", "uart")
    assert cfg["keystore"] in ("file", "nvs", "sealed")
    assert cfg["keystore"] == "sealed" or not cfg["storage_drive"]  # a key never in plaintext on a USB drive
    assert 0 < cfg["usb"]["vid"] <= 0xFFFF and 0 < cfg["usb"]["pid"] <= 0xFFFF
    assert {"leds", "buzzer"} <= set(cfg["indicators"]) and "button" in cfg and "storage_root" in cfg


@pytest.mark.parametrize("bid", BOARDS)
def test_board_py_imports_on_cpython_and_exposes_interface(bid):
    mod = _load(REPO / "boards" / bid / "board.py", "board_" + bid)
    names = INTERFACE if bid != "sim" else tuple(n for n in INTERFACE if n != "make_illumination")
    for name in names:
        assert callable(getattr(mod, name)), name
    assert mod.load_config()["id"] == bid
    assert mod.load_config() is mod.load_config()  # parsed once
    if bid == "sim":
        return
    for name in INTERFACE:  # each name bound to the family's method of that name, not one beside it
        fn = getattr(mod, name)
        assert fn.__name__ == name and isinstance(fn.__self__, FAMILY[_cfg(bid)["port"]])
    with pytest.raises(ImportError):  # hardware modules are imported only when a make_* is called
        mod.make_camera()
    assert mod.make_link() is None  # every board in the tree talks over its USB console


@pytest.mark.parametrize("bid", [b for b in BOARDS if b != "sim"])
def test_real_board_py_is_thin(bid):
    """A real board is data plus a short board.py: the code lives in its family module."""
    text = (REPO / "boards" / bid / "board.py").read_text()
    assert len(text.splitlines()) <= THIN_BOARD_LINES
    assert f"glintfw.board_{_cfg(bid)['port']}" in text and "class " not in text and "def " not in text


def test_board_json_is_found_next_to_the_board_file(tmp_path):
    """board.py passes __file__: a copy elsewhere reads the board.json beside it, not the repository's."""
    cfg = dict(_cfg("esp32s3_eye"), name="moved")
    (tmp_path / "board.json").write_text(json.dumps(cfg))
    shutil.copy(REPO / "boards" / "esp32s3_eye" / "board.py", tmp_path / "board.py")
    assert _load(tmp_path / "board.py").load_config()["name"] == "moved"
    assert Board(str(tmp_path)).load_config()["name"] == "moved"  # a directory, with or without the slash
    assert Board(str(tmp_path) + "/").path == str(tmp_path / "board.json")
    assert [board_dir(w) for w in (None, "/board.py", "board.py", "/flash/board.py", "/x/")] == \
        ["/", "/", "", "/flash/", "/x/"]


class _Specs:
    """A family board whose LEDs are their board.json entries (no pins on CPython)."""

    def make_led(self, spec):
        return spec


class _Esp32Specs(_Specs, Esp32Board):
    pass


class _OpenMVSpecs(_Specs, OpenMVBoard):
    pass


def test_status_leds_and_illumination_by_role():
    cam = _Esp32Specs(str(REPO / "boards" / "esp32_cam" / "board.py"))
    assert [d["pin"] for d in cam.make_leds()] == [33]  # the red status LED only
    assert cam.make_illumination()["pin"] == 4  # the flash LED, lit by the firmware around captures
    xiao = _Esp32Specs(str(REPO / "boards" / "xiao_esp32s3_sense"))
    assert [d["pin"] for d in xiao.make_leds()] == [21] and xiao.make_illumination() is None
    eye = _Esp32Specs(str(REPO / "boards" / "esp32s3_eye"))
    assert [d["pin"] for d in eye.make_leds()] == [3]  # the green LED (esp-bsp BSP_LED_GREEN)
    assert eye.make_illumination() is None and eye.make_buzzer() is None
    nicla = _OpenMVSpecs(str(REPO / "boards" / "nicla_vision"))
    assert [d["name"] for d in nicla.make_leds()] == ["LED_RED", "LED_GREEN", "LED_BLUE"]
    assert nicla.make_illumination() is None and nicla.make_button() is None and nicla.make_buzzer() is None
    # an LED without a role is a status LED; a board.json may give an OpenMV board an illumination LED too
    nicla._config = dict(nicla.load_config(), indicators={"leds": [{"led": 1}, {"led": 4, "role": "illumination"}]})
    assert nicla.make_leds() == [{"led": 1}] and nicla.make_illumination() == {"led": 4, "role": "illumination"}


def test_the_base_board_names_what_a_family_must_add():
    b = Board(str(REPO / "boards" / "esp32s3_eye"))
    for call in (b.make_camera, lambda: b.entropy(4), lambda: b.make_led({})):
        with pytest.raises(NotImplementedError):
            call()
    assert (b.make_buzzer(), b.make_button(), b.make_link()) == (None, None, None)
    assert board_common.INTERFACE == tuple(f.__name__ for f in b.interface())


def test_board_files_run_on_micropython(mpy):
    """The real MicroPython finds board.json beside board.py via __file__; hardware only on a make_* call."""
    files = {}
    for bid in ("esp32_cam", "esp32s3_eye", "nicla_vision"):
        files[bid] = ((REPO / "boards" / bid / "board.py").read_text(), (REPO / "boards" / bid / "board.json").read_text())
    res = mpy.eval_json(f"""
import sys
try:
    import os
    os.mkdir('/tb')
except OSError:
    pass
res = {{}}
for bid, (py, js) in {files!r}.items():
    for name, text in (('board.py', py), ('board.json', js)):
        with open('/tb/' + name, 'w') as f:
            f.write(text)
    sys.path.insert(0, '/tb')
    sys.modules.pop('board', None)
    try:
        import board
    finally:
        sys.path.pop(0)
    try:
        board.make_camera()
        cam = 'made'
    except ImportError:
        cam = 'ImportError'
    light = board.load_config()['indicators']['leds'] and 'needs pins' or board.make_illumination()
    res[bid] = [board.load_config()['id'], cam, board.make_link(), board.make_button() if bid == 'nicla_vision' else 0,
                light]
sys.modules.pop('board', None)
""", "res")
    assert res == {"esp32_cam": ["esp32_cam", "ImportError", None, 0, "needs pins"],
                   "esp32s3_eye": ["esp32s3_eye", "ImportError", None, 0, "needs pins"],
                   "nicla_vision": ["nicla_vision", "ImportError", None, None, "needs pins"]}


def test_sim_board_camera_and_entropy(tmp_path):
    import numpy as np

    from glint.sim.frames import pgm_bytes

    img = (np.arange(320 * 240) % 251).astype(np.uint8).reshape(240, 320)
    (tmp_path / "lens.pgm").write_bytes(b"P5\n# glint\n320 240\n255\n" + img.tobytes())
    (tmp_path / "e.bin").write_bytes(bytes(range(32)))
    cfg = _cfg("sim")
    cfg["camera"] = dict(cfg["camera"], path=str(tmp_path / "lens.pgm"), frames_dir=str(tmp_path / "none"))
    cfg["entropy_path"] = str(tmp_path / "e.bin")
    bdir = tmp_path / "board"
    bdir.mkdir()
    (bdir / "board.json").write_text(json.dumps(cfg))
    shutil.copy(REPO / "boards" / "sim" / "board.py", bdir / "board.py")
    mod = _load(bdir / "board.py", "board_sim_tmp")
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
    assert leds[0].value() == 1 and leds[0].role == "status" and mod.make_link() is None


@pytest.mark.parametrize("bid", BOARDS)
def test_a_board_ships_its_family_module_only(bid):
    """glint fw build/deploy/freeze: board_common everywhere, board_<port> only on boards of that port."""
    from glint.fw.build import sources
    from glint.fw.freeze import manifest_text

    port = _cfg(bid)["port"]
    shipped = {dest for dest, _ in sources(bid)}
    family = {f"/lib/glintfw/board_{p}.py" for p in FAMILY}
    assert "/lib/glintfw/board_common.py" in shipped
    assert shipped & family == ({f"/lib/glintfw/board_{port}.py"} if port in FAMILY else set())
    if port in FAMILY:
        frozen = manifest_text(bid)
        assert f"'board_{port}.py'" in frozen and all(f"'{f.rsplit('/', 1)[1]}'" not in frozen
                                                      for f in family if port not in f)


def test_esp32_entropy_runs_with_the_rf_noise_source_on(monkeypatch):
    """esp_random() is a true RNG only while Wi-Fi/BT runs: the station is on during the read, then off again.

    (The real network module runs only on an ESP32: here a stand-in records what the board does.)"""
    import os
    import sys
    import types

    log = []

    class WLAN:
        def __init__(self, iface):
            self._on = False

        def active(self, v=None):
            if v is None:
                return self._on
            self._on = v
            log.append(("active", v))

    mod = types.ModuleType("network")
    mod.STA_IF = 0
    mod.WLAN = WLAN
    monkeypatch.setitem(sys.modules, "network", mod)
    real = os.urandom
    monkeypatch.setattr(os, "urandom", lambda n: (log.append(("urandom", n)), real(n))[1])
    b = Esp32Board(str(REPO / "boards" / "xiao_esp32s3_sense")).entropy(32)
    assert len(b) == 32 and log == [("active", True), ("urandom", 32), ("active", False)]
    monkeypatch.delitem(sys.modules, "network")
    monkeypatch.setattr("builtins.__import__", _no_network(__import__))
    assert len(Esp32Board(str(REPO / "boards" / "xiao_esp32s3_sense")).entropy(8)) == 8  # no network module: plain RNG


def _no_network(real_import):
    def imp(name, *a, **kw):
        if name == "network":
            raise ImportError("no network")
        return real_import(name, *a, **kw)
    return imp
