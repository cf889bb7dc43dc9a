"""Fixtures: one virtual scanner (Node bridge, real MicroPython WebAssembly) per test module."""

from __future__ import annotations

import os

import pytest


def require_node():
    from glint.mpy import micropython_available

    if not micropython_available():
        if os.environ.get("GLINT_REQUIRE_MICROPYTHON") == "1":
            pytest.fail("the virtual scanner needs Node and the MicroPython WebAssembly port (npm ci)")
        pytest.skip("Node / MicroPython WebAssembly port not installed")


@pytest.fixture(scope="session")
def node_required():
    require_node()


@pytest.fixture(scope="module")
def vscanner(tmp_path_factory):
    """A running virtual scanner with an enrolled-style item (seed 7) under the lens."""
    require_node()
    from glint.vscanner import LensSpec, VirtualScanner

    flash = tmp_path_factory.mktemp("flash")
    vs = VirtualScanner(flash, lens=LensSpec("item", item_seed=7))
    vs.start()
    yield vs
    vs.close()


@pytest.fixture
def client(vscanner):
    from glint.vscanner import ScannerClient

    c = ScannerClient.open(vscanner.url, timeout=30)
    yield c
    c.close()
