"""glint.resources: one device tree and one board registry, from a checkout and from an installed wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from glint import resources
from glint.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
WHEEL_TIMEOUT_S = 300
# What `pip install .` reads from a checkout (copied, so the build leaves nothing in the worktree).
SOURCE_TREE = ("host", "shared", "firmware", "boards", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def test_checkout_is_the_device_tree():
    root = resources.device_root()
    assert root == REPO
    assert (resources.boards_dir() / "sim" / "board.json").is_file()
    assert (resources.firmware_dir() / "main.py").is_file()
    assert (resources.glintcore_dir() / "cose.py").is_file()
    assert resources.build_dir() == REPO / "build"


def test_board_registry():
    boards = resources.list_boards()
    assert "sim" in boards and "xiao_esp32s3_sense" in boards
    assert resources.load_board("sim")["id"] == "sim"
    for bad in ("nope", "", "../boards/sim", ".hidden"):
        with pytest.raises(UsageError, match="unknown board") as e:
            resources.load_board(bad)
        assert "known boards: " in e.value.oneline()
    table = resources.usb_table()
    assert all(isinstance(k, tuple) and len(k) == 2 for k in table)
    assert not any("sim" in ids for ids in table.values())


def _deps_pth(venv: Path) -> None:
    """Let a fresh venv see this environment's installed dependencies (numpy, opencv, ...) but not
    this environment's editable glint: a .pth path line adds a folder to sys.path without running
    the .pth files inside it (where the editable install hooks in)."""
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    import site as site_mod

    ours.update(site_mod.getsitepackages())
    (site / "glint_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")


def test_wheel_installs_and_runs_the_demo(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE_TREE:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "_device"))
        else:
            shutil.copy(p, src / name)
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check",
                        "-w", str(dist), str(src)], capture_output=True, text=True, timeout=WHEEL_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = dist.glob("glint-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert "glint/_device/boards/sim/board.json" in names
    assert "glint/_device/firmware/glintfw/app.py" in names
    assert "glint/_device/shared/glintcore/cose.py" in names
    assert "glint/_device/shared/glintcore/p256_gen.py" not in names  # host only
    assert "glint/vscanner/bridge.mjs" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                        "--no-deps", "--disable-pip-version-check", str(wheel)],
                       capture_output=True, text=True, timeout=WHEEL_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    _deps_pth(venv)
    run = tmp_path / "run"  # no checkout, no node_modules here
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLINT_", "PYTHON"))}
    env["TMPDIR"] = str(tmp_path)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import glint, glint.resources as r; "
                            "print(glint.__file__); print(r.device_root())"],
                           capture_output=True, text=True, cwd=run, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout and "_device" in where.stdout, where.stdout
    r = subprocess.run([str(venv / "bin" / "glint"), "demo"], capture_output=True, text=True, cwd=run, env=env,
                       timeout=WHEEL_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].startswith("demo passed"), r.stdout
    assert "Traceback" not in r.stderr
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith("glint-")]
    assert not left, f"demo left {left} in the temporary directory"
