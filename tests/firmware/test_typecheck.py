"""The firmware type-checks against the MicroPython stubs of every board's port (mypy, glint.fw.typecheck).

Catches a call the port's MicroPython does not have (a CPython-only function, a
machine/esp32 API of another port) before it reaches a board. Needs mypy and, once,
network access to fetch the pinned micropython-*-stubs into build/stubs/ (tools/fw_stubs.py).
"""

from __future__ import annotations

import os
import shutil

import pytest
from glinttest import REPO

from glint.errors import ToolError
from glint.fw.build import list_boards


def _check(board, root=None):
    from glint.fw import typecheck

    try:
        return typecheck.check(board, root)
    except ToolError as e:
        if os.environ.get("GLINT_REQUIRE_TYPECHECK") == "1":
            raise
        pytest.skip(f"type check unavailable: {e.oneline()}")


@pytest.mark.parametrize("board", list_boards())
def test_firmware_typechecks_against_the_port_stubs(board):
    findings = _check(board)
    assert not findings, "\n".join(str(f) for f in findings)


def test_a_call_the_port_lacks_is_found(tmp_path):
    root = tmp_path / "src"
    for rel in ("boards/esp32_cam", "boards/sim", "firmware", "shared/glintcore"):
        shutil.copytree(REPO / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "firmware/glintfw/bad.py").write_text(
        "import os\nimport time\n\n\ndef f():\n    time.sleep_ms(1)\n    return time.perf_counter(), os.urandom(4)\n")
    esp32 = {(f.path, f.code) for f in _check("esp32_cam", root)}
    assert esp32 == {("firmware/glintfw/bad.py", "attr-defined")}  # no time.perf_counter on MicroPython
    sim = [f for f in _check("sim", root) if f.path.endswith("bad.py")]
    assert [f.message.split('"')[-2] for f in sim] == ["perf_counter"]
