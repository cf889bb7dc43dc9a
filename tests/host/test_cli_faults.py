"""The bad-input matrix (docs/cli.md): each command with a missing home, a read-only home, a busy
port, a malformed port and Ctrl-C ends with one line on stderr and a non-zero exit, never a traceback.

Most cases run glint's main in this process (glinttest.glint_cli: the same stdout/stderr, exit code,
logging and warnings a process would show, without a fresh interpreter per case); the read-only home
(a mount namespace), Ctrl-C and a closed stdin run a real ``python -m glint`` process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from glinttest import glint_cli, sigint_default

GLINT = [sys.executable, "-m", "glint"]
TIMEOUT_S = 120


def glint(*args, env=None, wrap=None, timeout=TIMEOUT_S, process=False):
    """``glint ARGS``: in this process, or with ``process`` (or ``wrap``) a real subprocess."""
    if not process and wrap is None:
        return glint_cli(*args, env=env)
    cmd = GLINT + [str(a) for a in args]
    if wrap:
        cmd = wrap(cmd)
    e = {k: v for k, v in os.environ.items() if k != "GLINT_HOME"}
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, stdin=subprocess.DEVNULL)


def one_line_error(r, contains: str = "") -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("glint: warning:")]
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("glint: "), r.stderr
    assert contains in lines[0], lines[0]
    return lines[0]


# Every command that works in a home, with arguments that would otherwise run.
HOME_COMMANDS = [
    ("status",),
    ("device", "list"),
    ("device", "revoke", "desk-1"),
    ("device", "alerts"),
    ("device", "provision", "-p", "socket://127.0.0.1:9"),
    ("scan", "-p", "socket://127.0.0.1:9"),
    ("enroll", "-p", "socket://127.0.0.1:9", "--item", "acme:X-1"),
    ("ledger", "log"),
    ("ledger", "checkpoint"),
    ("ledger", "verify"),
    ("cert", "keys"),
    ("cert", "issue", "0", "-o", "x.cose"),
    ("bench", "--exceptions"),
    ("bench", "--identify", "2", "-p", "socket://127.0.0.1:9"),
    ("daemon", "--once"),
    ("serve", "--listen", "127.0.0.1:0"),
    ("fw", "provision", "-p", "socket://127.0.0.1:9", "--board", "sim"),
    ("intake", "-p", "socket://127.0.0.1:9"),
    ("transfer", "acme:X-1", "--to", "bob"),
    ("service", "acme:X-1"),
    ("rental", "out", "acme:X-1", "--to", "renter"),
    ("rental", "return", "acme:X-1", "-p", "socket://127.0.0.1:9"),
    ("retire", "acme:X-1", "--reason", "lost"),
    ("assembly", "define", "acme:X-1", "--part", "clasp=acme:P-1"),
    ("passport", "set", "acme:X-1", "a=b", "--audience", "public"),
    ("derive", "acme:X-1", "--child", "acme:C-1"),
    ("bind", "acme:X-1", "--serial", "S1"),
    ("lookup", "--serial", "S1"),
    ("insights",),
    ("api-key", "list"),
]


@pytest.mark.parametrize("argv", HOME_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_missing_home_is_refused_and_not_created(tmp_path, argv):
    home = tmp_path / "no-such-home"
    r = glint("--home", home, *argv)
    one_line_error(r, "does not exist")
    assert not home.exists()


@pytest.mark.parametrize("argv", [("status",), ("ledger", "log"), ("device", "provision", "-p", "127.0.0.1:9")])
def test_global_options_after_the_subcommand(tmp_path, argv):
    home = tmp_path / "no-such-home"
    one_line_error(glint(*argv, "--home", home, "-v"), "does not exist")
    assert not home.exists()


def test_init_and_create_make_a_home(tmp_path):
    home = tmp_path / "h"
    r = glint("init", "--home", home, "--json")
    assert r.returncode == 0, r.stderr
    assert (home / "keys").is_dir()
    r = glint("status", "--json", "--home", tmp_path / "h2", "--create")
    assert r.returncode == 0 and (tmp_path / "h2").is_dir(), r.stderr


def _readonly_wrap(home):
    """Run a command with ``home`` read-only: a read-only bind mount (root ignores file modes),
    else the directory's mode."""
    if os.geteuid() != 0:
        for p in [home, *home.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
            else:
                p.chmod(0o444)
        return None
    if not shutil.which("unshare"):
        pytest.skip("running as root without unshare: cannot make a read-only home")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("running as root and unshare -m is not permitted: cannot make a read-only home")
    q = str(home).replace("'", "'\\''")

    def wrap(cmd):
        inner = " ".join("'" + c.replace("'", "'\\''") + "'" for c in cmd)
        return ["unshare", "-m", "sh", "-c", f"mount --bind '{q}' '{q}' && mount -o remount,bind,ro '{q}' && exec {inner}"]
    return wrap


READONLY_COMMANDS = [
    ("status",),
    ("device", "list"),
    ("scan", "-p", "socket://127.0.0.1:9"),
    ("ledger", "checkpoint"),
    ("bench", "--exceptions"),
    ("daemon", "--once"),
    ("intake", "-p", "socket://127.0.0.1:9"),
    ("transfer", "acme:X-1", "--to", "bob"),
    ("retire", "acme:X-1", "--reason", "lost"),
    ("passport", "set", "acme:X-1", "a=b", "--audience", "public"),
    ("insights",),
]


@pytest.fixture(scope="module")
def ro_template(tmp_path_factory):
    home = tmp_path_factory.mktemp("ro") / "home"
    assert glint("init", "--home", home).returncode == 0
    return home


@pytest.mark.parametrize("argv", READONLY_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_read_only_home_is_one_line(tmp_path, ro_template, argv):
    home = tmp_path / "home"
    shutil.copytree(ro_template, home)
    wrap = _readonly_wrap(home)
    try:
        r = glint("--home", home, *argv, wrap=wrap, process=True)
        one_line_error(r)
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.mark.parametrize("port,says", [
    ("127.0.0.1:9", "cannot open scanner port socket://127.0.0.1:9"),
    ("socket://127.0.0.1", "needs a host and a port"),
    ("socket://127.0.0.1:99999", "needs a host and a port"),
    ("foo://bar", "unknown port URL scheme"),
    ("/dev/glint-no-such-port", "cannot open scanner port"),
])
def test_malformed_or_dead_ports(tmp_path, port, says):
    home = tmp_path / "h"
    assert glint("init", "--home", home).returncode == 0
    for argv in (("scan", "-p", port), ("device", "provision", "-p", port), ("bringup", "keytest", "-p", port)):
        one_line_error(glint("--home", home, *argv), says)


def test_positional_port_still_works_with_a_warning(tmp_path):
    home = tmp_path / "h"
    assert glint("init", "--home", home).returncode == 0
    r = glint("--home", home, "device", "provision", "127.0.0.1:9")
    assert r.stderr.splitlines()[0].startswith("glint: warning: a positional PORT is deprecated")
    one_line_error(r, "socket://127.0.0.1:9")


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def test_busy_port_for_servers(tmp_path, busy_port):
    home = tmp_path / "h"
    assert glint("init", "--home", home).returncode == 0
    cpus = os.sched_getaffinity(0)
    one_line_error(glint("--home", home, "serve", "--listen", f"127.0.0.1:{busy_port}"), "cannot listen on")
    assert os.sched_getaffinity(0) == cpus  # serve pinned this process to one CPU; glint_cli undoes it
    one_line_error(glint("virtual-scanner", "--listen", f"127.0.0.1:{busy_port}", "--flash", tmp_path / "f",
                         "--runtime", "cpython"), "cannot listen on")
    one_line_error(glint("serve", "--listen", "nonsense", "--home", home), "bad --listen address")


def test_other_faults_are_one_line(tmp_path):
    home = tmp_path / "h"
    assert glint("init", "--home", home).returncode == 0
    binary = tmp_path / "manifest.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    one_line_error(glint("--home", home, "bench", str(binary), "-p", "socket://127.0.0.1:9"), "not a text manifest")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(glint("virtual-scanner", "--listen", "127.0.0.1:0", "--flash", blocker / "flash",
                         "--runtime", "cpython"), "cannot create the flash folder")


def test_ctrl_c_while_waiting_for_a_scanner(tmp_path):
    home = tmp_path / "h"
    assert glint("init", "--home", home).returncode == 0
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "GLINT_HOME"}
    p = subprocess.Popen(GLINT + ["--home", str(home), "scan", "-p", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, preexec_fn=sigint_default)
    try:
        conn, _ = silent.accept()  # the command is now waiting for an answer that never comes
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
        silent.close()
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    assert one_line_error(r) == "glint: interrupted" and r.returncode == 130


def test_indicators_with_stdin_closed(tmp_path):
    from glint.vscanner import LensSpec, VirtualScanner

    with VirtualScanner(tmp_path / "flash", lens=LensSpec("empty"), runtime="cpython") as vs:
        one_line_error(glint("bringup", "indicators", "-p", vs.url, process=True), "no answer: stdin is closed")
