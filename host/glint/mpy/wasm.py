"""A long-lived MicroPython (WebAssembly port, under Node) that runs glint's device code.

The tests use it to prove that the portable core and the firmware behave on a
real MicroPython exactly as on CPython; the benchmarks use it to time them.
The npm package is pinned in the repository's package.json / package-lock.json
and installed with ``npm ci``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from glint import resources
from glint.errors import GlintError, ToolError

_log = logging.getLogger(__name__)

NPM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
DEFAULT_HEAP = 8 * 1024 * 1024
RUNNER = Path(__file__).with_name("runner.mjs")


def find_micropython_mjs() -> Path | None:
    """Locate the MicroPython WebAssembly module: $GLINT_MICROPYTHON_MJS, then node_modules."""
    env = os.environ.get("GLINT_MICROPYTHON_MJS")
    if env:
        return Path(env) if Path(env).is_file() else None
    rel = Path(NPM_PACKAGE) / "micropython.mjs"
    for nm in resources.node_modules_dirs():
        if (nm / rel).is_file():
            return nm / rel
    return None


def micropython_available() -> bool:
    return shutil.which("node") is not None and find_micropython_mjs() is not None


def default_mounts() -> list[tuple[Path, str]]:
    """The device filesystem of a scanner: the portable core and the firmware under /lib."""
    mounts = [(resources.glintcore_dir(), "/lib/glintcore")]
    fw = resources.firmware_dir()
    if fw.is_dir():
        for p in sorted(fw.iterdir()):
            if p.name.startswith((".", "__pycache__")):
                continue
            if p.is_dir() or p.suffix == ".py":
                mounts.append((p, "/lib/" + p.name))
    return mounts


class MicroPythonError(GlintError):
    """Code raised an exception inside MicroPython; ``type`` names the exception class."""

    def __init__(self, type_: str, traceback: str, out: str = ""):
        super().__init__(f"MicroPython raised {type_}: {traceback.strip().splitlines()[-1] if traceback.strip() else ''}")
        self.type = type_
        self.traceback = traceback
        self.out = out


class MicroPython:
    """One MicroPython interpreter in a Node process; state persists between ``run`` calls."""

    runtime = "node"

    def __init__(self, mounts: list[tuple[Path, str]] | None = None, heap: int = DEFAULT_HEAP):
        node = shutil.which("node")
        mjs = find_micropython_mjs()
        if node is None or mjs is None:
            raise ToolError(
                "MicroPython WebAssembly port not found",
                hint=f"install Node >= 18 and run 'npm ci' in the repository ({NPM_PACKAGE})",
            )
        cmd = [node, str(RUNNER), str(mjs), "--heap", str(heap)]
        for src, dest in mounts if mounts is not None else default_mounts():
            cmd += ["--mount", f"{src}={dest}"]
        _log.debug("starting %s", cmd)
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8",
        )

    def run(self, code: str) -> str:
        """Execute ``code`` in the interpreter's __main__; return what it printed (latin-1 text)."""
        proc = self._proc
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # opened with PIPE
        if proc.poll() is not None:
            raise ToolError("MicroPython runner has exited: " + (stderr.read() or "").strip()[-500:])
        stdin.write(json.dumps({"code": code}) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            err = stderr.read() if proc.poll() is not None else ""
            raise ToolError("MicroPython runner died: " + err.strip()[-800:])
        reply = json.loads(line)
        if not reply["ok"]:
            raise MicroPythonError(reply["type"], reply["error"], reply.get("out", ""))
        return reply["out"]

    def eval_json(self, code: str, expr: str):
        """Run ``code``, then print ``expr`` as JSON inside MicroPython and return it decoded."""
        out = self.run(code + "\nimport json as _j\nprint('\\x1e' + _j.dumps(" + expr + "))\n")
        # run() returns bytes as latin-1 text; MicroPython's json prints UTF-8
        return json.loads(out.rsplit("\x1e", 1)[1].encode("latin-1").decode("utf-8"))

    def close(self) -> None:
        if self._proc.poll() is None and self._proc.stdin is not None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for f in (self._proc.stdout, self._proc.stderr):
            if f:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
