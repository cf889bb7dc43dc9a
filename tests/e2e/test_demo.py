"""`glint demo`, the README's first command, as a user runs it (a subprocess, a chosen home)."""

import os
import subprocess
import sys

import pytest


def _demo(tmp_path, runtime):
    home = tmp_path / "demo home"
    r = subprocess.run([sys.executable, "-m", "glint", "demo", "--home", str(home), "--runtime", runtime],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "GLINT_HOME": str(tmp_path / "unused")})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    steps = [ln for ln in lines if ln.lstrip().startswith("[")]
    assert len(steps) >= 12 and all(ln.lstrip().startswith("[ok]") for ln in steps), r.stdout
    assert "MicroPython" in steps[0] and {"unix": "Unix port", "node": "WebAssembly"}[runtime] in steps[0]
    assert "a new capture" in next(ln for ln in steps if "genuine rescan" in ln)
    for word in ("counterfeit", "replayed scan refused", "tampered scan refused", "identified", "ledger proof"):
        assert any(word in ln for ln in steps), word
    assert lines[-1].startswith("demo passed")
    assert list((home / "certs").glob("*.cose")) and (home / "glint.db").is_file()
    assert not (tmp_path / "unused").exists()
    assert r.stderr == ""


def test_glint_demo(tmp_path, mpy_runtime):
    """On the default MicroPython runtime (the Unix port where installed); the first step says which."""
    _demo(tmp_path, mpy_runtime)


@pytest.mark.slow
def test_glint_demo_webassembly(tmp_path):
    """The same demo on the WebAssembly port (pure-Python kernels: ~10x slower than the Unix port's viper)."""
    from glinttest import require_micropython

    require_micropython("node")
    _demo(tmp_path, "node")


@pytest.mark.slow
def test_glint_demo_cpython_runtime(tmp_path):
    r = subprocess.run([sys.executable, "-m", "glint", "demo", "--runtime", "cpython", "--home", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CPython" in r.stdout.splitlines()[1]
