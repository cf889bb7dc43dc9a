"""mpremote against the virtual scanner started by the CLI (`glint virtual-scanner`), as on a real board.

The device boots into protocol mode; mpremote's interrupt (\\r\\x03, then Ctrl-A) hands the
console to the MicroPython REPL; `mpremote reset` (machine.reset()) boots it back into
protocol mode. Files copied with `fs cp` live in the --flash directory and survive a kill.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from glint.vscanner import ScannerClient
from glintcore.proto import MSG_INFO

START_TIMEOUT_S = 60
MPREMOTE_TIMEOUT_S = 60


class CliScanner:
    def __init__(self, flash):
        self.flash = flash
        self.proc = None
        self.url = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "glint", "virtual-scanner", "--listen", "127.0.0.1:0", "--flash", str(self.flash),
             "--item-seed", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = self.proc.stdout.readline()
        m = re.search(r"socket://127\.0\.0\.1:\d+", line)
        assert m and time.monotonic() < deadline, line + self.proc.stderr.read()
        self.url = m.group(0)
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def mpremote(url, *args):
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", url, *args],
                       capture_output=True, text=True, timeout=MPREMOTE_TIMEOUT_S)
    return r


@pytest.fixture(scope="module")
def cli(tmp_path_factory, node_required):
    s = CliScanner(tmp_path_factory.mktemp("mpflash")).start()
    yield s
    s.kill()


def test_exec_from_protocol_mode(cli):
    with ScannerClient.open(cli.url) as c:
        assert c.call(MSG_INFO)["board"] == "sim"  # protocol mode first
    r = mpremote(cli.url, "exec", "import sys; print(sys.platform, 6 * 7)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "webassembly 42"
    r = mpremote(cli.url, "exec", "1/0")
    assert r.returncode != 0 and "ZeroDivisionError" in r.stdout + r.stderr


def test_fs_cp_ls_cat(cli, tmp_path):
    src = tmp_path / "notes.txt"
    payload = "glint virtual scanner\n" * 50
    src.write_text(payload)
    r = mpremote(cli.url, "fs", "cp", str(src), ":notes.txt", "+", "fs", "ls", ":")
    assert r.returncode == 0, r.stderr
    assert "notes.txt" in r.stdout and "glint/" in r.stdout
    back = tmp_path / "back.txt"
    r = mpremote(cli.url, "fs", "cp", ":notes.txt", str(back))
    assert r.returncode == 0, r.stderr
    assert back.read_text() == payload
    assert (cli.flash / "notes.txt").read_text() == payload  # mirrored to the host flash directory


def test_reset_returns_to_protocol_mode(cli):
    r = mpremote(cli.url, "reset")
    assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    with ScannerClient.open(cli.url, timeout=10) as c:
        assert c.call(MSG_INFO)["board"] == "sim"


def test_files_survive_a_power_cut(cli):
    cli.kill()
    cli.start()
    r = mpremote(cli.url, "fs", "cat", ":notes.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("glint virtual scanner")
    # soft reset from the friendly REPL (Ctrl-B, Ctrl-D) runs main.py: protocol mode again
    with ScannerClient.open(cli.url, timeout=10) as c:
        c.wake()
        assert c.call(MSG_INFO)["board"] == "sim"
    assert not any(n.endswith(".vsx-tmp") for n in os.listdir(cli.flash))
