"""mpremote against the virtual scanner started by the CLI (`glint virtual-scanner`), as on a real board.

On each runtime (the MicroPython Unix port, WebAssembly under Node): the device boots into
protocol mode; mpremote's interrupt (\\r\\x03, then Ctrl-A) hands the console to the
MicroPython REPL; `mpremote reset` (machine.reset()) boots it back into protocol mode.
Files copied with `fs cp` live in the --flash directory and survive a kill. After any
mpremote session (exec, fs, repl, soft-reset) that leaves the device at its REPL, the next
glint command finds it in protocol mode without a manual reset (glint.link wakes it).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from glint.link import Timeouts, open_scanner
from glint.link.scanner import MAX_WAKES
from glintcore import restart
from glintcore.proto import MSG_INFO

START_TIMEOUT_S = 60
MPREMOTE_TIMEOUT_S = 60


PLATFORM = {"unix": "linux", "node": "webassembly"}


class CliScanner:
    def __init__(self, flash, runtime):
        self.flash = flash
        self.runtime = runtime
        self.proc = None
        self.url = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "glint", "virtual-scanner", "--listen", "127.0.0.1:0", "--flash", str(self.flash),
             "--item-seed", "5", "--runtime", self.runtime],
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
def cli(tmp_path_factory, runtime):
    s = CliScanner(tmp_path_factory.mktemp("mpflash"), runtime).start()
    yield s
    s.kill()


def test_exec_from_protocol_mode(cli):
    with open_scanner(cli.url, Timeouts(request=30.0)) as c:
        assert c.request(MSG_INFO).body["board"] == "sim"  # protocol mode first
    r = mpremote(cli.url, "exec", "import sys; print(sys.platform, 6 * 7)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{PLATFORM[cli.runtime]} 42"
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
    with open_scanner(cli.url, Timeouts(request=10.0)) as c:
        assert c.request(MSG_INFO).body["board"] == "sim"


def test_files_survive_a_power_cut(cli):
    cli.kill()
    cli.start()
    r = mpremote(cli.url, "fs", "cat", ":notes.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("glint virtual scanner")
    # soft reset from the friendly REPL (Ctrl-B, Ctrl-D) runs main.py: protocol mode again
    with open_scanner(cli.url, Timeouts(request=10.0)) as c:
        c.wake(restart.SOFT)
        assert c.request(MSG_INFO).body["board"] == "sim"
    assert not any(n.endswith(".vsx-tmp") for n in os.listdir(cli.flash))


def _glint_info(url):
    """What the next glint command does first: open the link and ask for info (no manual reset)."""
    with open_scanner(url, Timeouts(request=3.0)) as sc:
        info = sc.info()
        return info, sc.stats["wakes"]


def _repl_session(url):
    """A user at mpremote's repl: Enter, Ctrl-C (the interrupt), a line of Python, then the port closed."""
    with socket.create_connection(url[len("socket://"):].split(":")) as s:
        s.sendall(b"\r\x03")
        out = b""
        s.settimeout(10)
        while b">>> " not in out:
            out += s.recv(4096)
        s.sendall(b"print(6 * 7)\r")
        while b"42" not in out:
            out += s.recv(4096)


@pytest.mark.parametrize("session", ["exec", "fs", "repl", "soft-reset"])
def test_next_glint_command_after_an_mpremote_session(cli, session):
    if session == "repl":
        _repl_session(cli.url)
    else:
        args = {"exec": ["exec", "print(1)"], "fs": ["fs", "ls", ":"], "soft-reset": ["soft-reset"]}[session]
        r = mpremote(cli.url, *args)
        assert r.returncode == 0, r.stderr
    info, wakes = _glint_info(cli.url)
    assert info["board"] == "sim" and info["platform"] == PLATFORM[cli.runtime]
    # the session left it at the REPL and the link woke it: once, or twice where a loaded machine
    # booted main.py slower than the wake's quiet period (the fresh-clone run on 2 busy cores)
    assert 1 <= wakes <= MAX_WAKES
    assert _glint_info(cli.url) == (info, 0)  # and it stays in protocol mode


def test_glint_cli_after_mpremote_exec(cli, tmp_path):
    assert mpremote(cli.url, "exec", "print(1)").returncode == 0
    r = subprocess.run([sys.executable, "-m", "glint", "device", "provision", cli.url],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, GLINT_HOME=str(tmp_path)))
    assert r.returncode == 0, r.stderr
