"""Firmware tests import glintfw from the source tree (it is device code, not an installed package)."""

import sys
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
if str(FIRMWARE) not in sys.path:
    sys.path.insert(0, str(FIRMWARE))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402  (after the path set-up above)


@pytest.fixture
def sim_board(tmp_path):
    """make(lens_seed=2) -> the sim board (its CPython simhost) on tmp_path's flash, with that item
    under the lens (None: an empty sim folder). The simhost module it installs is removed afterwards
    unless it was loaded before: other tests use the sim board's file entropy."""
    from glint.sim.frames import write_pgm
    from glint.vscanner.cpython_runtime import load_board
    from glint.vscanner.lens import LensSpec, render

    sim = tmp_path / "sim"
    had = "simhost" in sys.modules

    def make(lens_seed=2):
        if not sim.exists():
            sim.mkdir()
            if lens_seed is not None:
                write_pgm(sim / "lens.pgm", render(LensSpec("item", item_seed=lens_seed)))
        return load_board(tmp_path / "flash", sim, tmp_path / "board")

    yield make
    if not had:
        sys.modules.pop("simhost", None)


# The fake board of the MicroPython-side app tests: no camera, fixed entropy, state under ``root``.
MPY_BOARD = """
class _B:
    def load_config(self):
        return {"id": "sim", "storage_root": "%s", "camera": {"width": 320, "height": 240}}
    def make_camera(self):
        raise OSError("no camera in this test")
    def make_leds(self):
        return []
    def make_buzzer(self):
        return None
    def entropy(self, n):
        return bytes(range(n))
"""
