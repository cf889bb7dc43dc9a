"""Fixtures: one virtual scanner per test module and MicroPython runtime (the Unix port, WebAssembly under Node)."""

from __future__ import annotations

import pytest
from glinttest import MICROPYTHON_RUNTIMES, require_micropython


def require_node():
    require_micropython("node")


@pytest.fixture(scope="session")
def node_required():
    require_node()


@pytest.fixture(scope="module", params=MICROPYTHON_RUNTIMES)
def runtime(request):
    """Each MicroPython runtime of the virtual scanner in turn (skipped / failed when missing, as the mpy fixture)."""
    require_micropython(request.param)
    return request.param


@pytest.fixture(scope="module")
def vscanner(tmp_path_factory, runtime):
    """A running virtual scanner with an enrolled-style item (seed 7) under the lens."""
    from glint.vscanner import LensSpec, VirtualScanner

    flash = tmp_path_factory.mktemp("flash")
    vs = VirtualScanner(flash, lens=LensSpec("item", item_seed=7), runtime=runtime)
    vs.start()
    yield vs
    vs.close()


@pytest.fixture
def client(vscanner):
    from glint.link import Timeouts, open_scanner

    c = open_scanner(vscanner.url, Timeouts(request=30.0))
    yield c
    c.close()
