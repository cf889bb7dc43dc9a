"""Shared fixtures: a real MicroPython (WebAssembly under Node), vector paths, hardware options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from glinttest import REAL, REPO, VECTORS, load_vector, shared_dir  # noqa: F401


def pytest_addoption(parser):
    parser.addoption("--port", default=None, help="serial port of a real scanner for hardware-in-the-loop tests")
    parser.addoption("--board", default=None, help="board id (boards/<id>) of the scanner on --port")


def pytest_collection_modifyitems(config, items):
    # Benchmarks run only when asked for with -m bench.
    markexpr = config.getoption("-m") or ""
    if "bench" not in markexpr:
        skip = pytest.mark.skip(reason="benchmark: run with 'pytest -m bench'")
        for item in items:
            if item.get_closest_marker("bench") is not None:
                item.add_marker(skip)
    if config.getoption("--port") is None:
        skip = pytest.mark.skip(reason="hardware-in-the-loop: needs --port")
        for item in items:
            if item.get_closest_marker("hil") is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def vectors() -> Path:
    """../shared/vectors (skips with one line where absent; required under GLINT_REQUIRE_SHARED=1)."""
    return shared_dir(VECTORS)


@pytest.fixture(scope="session")
def real_photos() -> Path:
    """../shared/real: real spot photographs (skips where absent; required under GLINT_REQUIRE_SHARED=1)."""
    return shared_dir(REAL)


@pytest.fixture(scope="session")
def mpy():
    """A session-wide MicroPython interpreter with glintcore and the firmware under /lib.

    Skipped when Node or the npm package is missing, unless GLINT_REQUIRE_MICROPYTHON=1
    (set by tools/test and CI), where a missing MicroPython is a failure.
    """
    from glint.mpy import MicroPython, micropython_available

    if not micropython_available():
        if os.environ.get("GLINT_REQUIRE_MICROPYTHON") == "1":
            pytest.fail("MicroPython WebAssembly port is required (GLINT_REQUIRE_MICROPYTHON=1) but not installed")
        pytest.skip("MicroPython WebAssembly port not installed (npm ci)")
    with MicroPython() as mp:
        yield mp
