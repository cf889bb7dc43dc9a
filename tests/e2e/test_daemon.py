"""glint daemon end to end: a button scan on a virtual scanner is synced, uploaded to a remote
`glint serve`, shown by `glint status`; SIGTERM stops the daemon cleanly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from glint.home import Home
from glint.link import open_scanner
from glint.registry import Registry
from glint.vscanner import LensSpec, VirtualScanner
from glint.workflows.provision import provision

pytestmark = pytest.mark.usefixtures("mpy_runtime")  # needs a MicroPython: the default runtime

WAIT_S = 30.0


def glint(*args, home):
    return subprocess.run([sys.executable, "-m", "glint", *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=WAIT_S)


def wait_until(pred, what):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_daemon_syncs_button_scans_uploads_and_stops_on_sigterm(tmp_path):
    from test_sync_crash import enroll_sim_item  # noqa: E402  (tests/e2e is on sys.path via rootdir)

    home = Home(tmp_path / "field").ensure()
    enroll_sim_item(home, "acme:BAG-1", 1)
    hq = Home(tmp_path / "hq").ensure()
    enroll_sim_item(hq, "acme:BAG-1", 1)  # the server matches against its own reference
    from glint.server.auth import KeyStore

    ks = KeyStore(hq.db_path)
    key_file = home.root / "remote.key"
    key_file.write_text(ks.create("field", "field-laptop")[1])
    ks.close()
    key_file.chmod(0o600)
    server = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0",
                               "--home", str(tmp_path / "hq"), "--create"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    line = server.stdout.readline()
    assert "listening" in line
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=1, capture_seed=9)) as vs:
        with Registry.open(home) as reg, open_scanner(vs.url) as sc:
            dev = provision(reg, sc).device
        with Registry.open(hq) as reg:  # the server trusts the scanner too (its operator adds it)
            reg.add_device(dev.device_id, dev.pubkey, board=dev.board, fw=dev.fw)
        daemon = subprocess.Popen([sys.executable, "-m", "glint", "daemon", "--home", str(home.root), "--port", vs.url,
                                   "--remote", f"http://127.0.0.1:{port}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            status = lambda: json.loads(glint("status", "--json", home=home.root).stdout)  # noqa: E731
            wait_until(lambda: (status()["daemon"] or {}).get("scanners", {}).get(vs.url, {}).get("connected"),
                       "the daemon to connect")
            assert vs.press_button()["ok"]   # an offline scan: EVT_SCAN_SPOOLED -> sync
            st = wait_until(lambda: (lambda s: s if s["outbox"]["sent"] >= 2 else None)(status()),
                            "the synced scan to reach the remote")
            assert st["daemon"]["state"] == "running" and st["exceptions_open"] == 0
            assert st["outbox"]["pending"] == 0 and st["last_sync"]["recorded"] == 1
            text = glint("status", home=home.root).stdout
            assert "connected" in text and "0 waiting, 2 uploaded" in text
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=WAIT_S)
        assert daemon.returncode == 0, err
        assert "stopped" in out
        with open_scanner(vs.url) as sc:
            assert sc.spool_list() == []
    hq = json.loads(subprocess.run([sys.executable, "-c", f"""
import json, urllib.request
print(urllib.request.urlopen('http://127.0.0.1:{port}/v1/items/acme:BAG-1').read().decode())"""],
                                   capture_output=True, text=True, timeout=WAIT_S).stdout)
    assert [e["kind"] for e in hq["events"]] == ["register", "verify"]
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=WAIT_S) == 0
    st = json.loads(glint("status", "--json", home=home.root).stdout)
    assert st["daemon"]["state"] == "stopped"
