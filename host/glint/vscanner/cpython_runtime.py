"""The virtual scanner's fallback runtime: the same firmware (glintfw) on CPython, where Node is missing.

    python -m glint.vscanner.cpython_runtime --listen 127.0.0.1:0 --flash DIR --sim DIR

Speaks the bridge's supervisor protocol (JSON lines on stdin/stdout, see bridge.mjs) and
serves the link on TCP. The device paths of boards/sim are mapped into host directories
by a generated board.json (storage_root = --flash, camera files in --sim). Protocol
only: there is no MicroPython REPL here, so the interrupt and MSG_REPL are answered
with a console line and the scanner stays in protocol mode (use the Node runtime for
mpremote).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import types
from pathlib import Path

from glint import resources
from glint.vscanner.console import accept_clients

TICK_S = 0.05
NO_REPL = b"\r\nglint: no MicroPython REPL on the CPython runtime (use --runtime node); staying in protocol mode\r\n"


def _ensure_paths() -> None:
    for p in (resources.firmware_dir(), resources.glintcore_dir().parent):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))


def load_board(flash: str | Path, sim: str | Path, board_dir: str | Path, board: str = "sim"):
    """Import boards/<board>/board.py with its device paths mapped to host directories."""
    _ensure_paths()
    src = resources.board_dir(board)
    board_dir = Path(board_dir)
    board_dir.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / "board.json").read_text())
    cfg["storage_root"] = str(Path(flash).resolve())
    cam = cfg.setdefault("camera", {})
    cam["path"] = str(Path(sim).resolve() / "lens.pgm")
    cam["frames_dir"] = str(Path(sim).resolve() / "frames")
    (board_dir / "board.json").write_text(json.dumps(cfg))
    shutil.copy(src / "board.py", board_dir / "board.py")
    if "simhost" not in sys.modules:
        shim = types.ModuleType("simhost")
        setattr(shim, "entropy", os.urandom)  # noqa: B010  (the OS CSPRNG stands in for the board's hardware source)
        sys.modules["simhost"] = shim
    spec = importlib.util.spec_from_file_location("glint_vboard_" + board, board_dir / "board.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {board_dir / 'board.py'}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_out_lock = threading.Lock()


def emit(obj: dict) -> None:
    """One JSON line to the supervisor (replies from the main thread, events from the link's)."""
    with _out_lock:
        print(json.dumps(obj), flush=True)


class Runtime:
    def __init__(self, flash: str, sim: str):
        self.flash = flash
        self.sim = sim
        self.board_dir = tempfile.mkdtemp(prefix="glint-vboard-")
        self.lock = threading.Lock()
        self.client: socket.socket | None = None
        self.boot()

    def boot(self) -> None:
        Path(self.flash).mkdir(parents=True, exist_ok=True)
        board = load_board(self.flash, self.sim, self.board_dir)
        from glintfw import link

        self.link = link
        core = link.main(board)
        cam = core.app.camera
        if cam is not None:  # report each capture: the supervisor may put the next placement under the lens
            grab = cam.capture

            def capture(buf):
                r = grab(buf)
                emit({"event": "capture"})
                return r

            cam.capture = capture

    def send(self, data: bytes) -> None:
        if data and self.client is not None:
            try:
                self.client.sendall(data)
            except OSError:
                pass

    def on_data(self, data: bytes) -> None:
        with self.lock:
            while data:
                out, action, consumed = self.link.host_feed(data)
                self.send(out)
                data = data[consumed:]
                if action == 1:
                    self.send(NO_REPL)
                elif action == 2:
                    self.boot()

    def control(self, req: dict) -> dict:
        with self.lock:
            cmd = req.get("cmd")
            if cmd == "ping":
                return {"ok": True, "mode": "protocol"}
            if cmd == "status":
                return {"ok": True, "mode": "protocol", **self.link.host_status()}
            if cmd == "button":
                self.send(self.link.host_button())
                return {"ok": True}
            if cmd == "reset":
                self.boot()
                return {"ok": True, "mode": "protocol"}
            return {"ok": False, "error": f"unknown command {cmd}"}

    def serve(self, host: str, port: int) -> None:
        srv = socket.create_server((host, port))
        emit({"event": "listening", "host": host, "port": srv.getsockname()[1]})

        accept_clients(srv, self)

        def tick_loop():
            ev = threading.Event()
            while not ev.wait(TICK_S):
                with self.lock:
                    self.link.host_tick()

        threading.Thread(target=tick_loop, daemon=True).start()

    def read_loop(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.on_data(data)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="glint virtual scanner, CPython runtime")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--flash", required=True)
    ap.add_argument("--sim", required=True)
    args = ap.parse_args(argv)
    from glint.address import parse_listen

    host, port = parse_listen(args.listen)
    rt = Runtime(args.flash, args.sim)
    rt.serve(host, port)
    for line in sys.stdin:  # the supervisor's pipe: EOF (supervisor gone) ends the device
        if line.strip():
            try:
                reply = rt.control(json.loads(line))
            except Exception as e:  # one bad control line must not stop the device
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            emit(reply)
    shutil.rmtree(rt.board_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
