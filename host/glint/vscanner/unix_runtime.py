"""The virtual scanner on the MicroPython Unix port: a supervisor that owns the TCP console and the device process.

    python -m glint.vscanner.unix_runtime --listen 127.0.0.1:0 --flash DIR --sim DIR
                                          [--image SRC=DEST ...] [--heap BYTES]

Speaks the bridge's supervisor protocol (JSON lines on stdin/stdout, see bridge.mjs) and
serves the device's console on TCP (pyserial socket://, mpremote). The device is the
unchanged firmware on the Unix port (_unix_device.py: the viper kernels load as on a
board); its heap is ``-X heapsize=`` (a board's budget, boards/*/board.json "heap").
A reset ends the device process and this supervisor boots the next one, the TCP
connection staying up as a board's USB console does across a soft reset; console bytes
that arrive while the device boots wait for it. Killing this process is a power cut.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from glint.vscanner.console import accept_clients

HERE = Path(__file__).resolve().parent
DEVICE = HERE / "_unix_device.py"
MPY_DIR = HERE.parent / "mpy"  # _unix_vfs.py
EXIT_SOFT, EXIT_SOFT_RAW, EXIT_HARD = 80, 81, 82
DEFAULT_HEAP = 8 * 1024 * 1024
BOOT_TIMEOUT_S = 30.0
MAX_CHUNK = 0xFFFF


def build_rom(images: list[str], rom: Path) -> None:
    """The firmware image as a folder of symlinks (SRC=DEST, DEST a device path): read-only, never written back."""
    for spec in images:
        src, _, dest = spec.partition("=")
        target = rom / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(Path(src).resolve(), target)


class Supervisor:
    def __init__(self, cmd: list[str], flash: str, sim: str, rom: Path | None, heap: int):
        self.cmd = cmd
        self.flash = str(Path(flash).resolve())
        self.sim = str(Path(sim).resolve())
        self.rom = rom
        self.heap = heap
        self.lock = threading.Lock()  # one writer on the device's stdin
        self.out_lock = threading.Lock()  # one writer on our stdout
        self.client: socket.socket | None = None
        self.proc: subprocess.Popen | None = None
        self.ready = threading.Event()
        self.mode = "off"
        self.replies: list = []
        self.reply_ready = threading.Condition()
        self.stopping = False

    # ---- the device process -------------------------------------------------------------

    def spawn(self, how: str) -> None:
        Path(self.flash).mkdir(parents=True, exist_ok=True)
        Path(self.sim).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MICROPYPATH=str(MPY_DIR))
        argv = self.cmd + ["-X", f"heapsize={self.heap}", str(DEVICE), self.flash, self.sim,
                           str(self.rom) if self.rom else "-", how]
        self.ready.clear()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, bufsize=0)
        proc = self.proc
        threading.Thread(target=self._pump_console, args=(proc,), daemon=True).start()
        threading.Thread(target=self._pump_events, args=(proc,), daemon=True).start()

    def _pump_console(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None  # spawned with PIPE
        fd = proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            self.send(data)
        code = proc.wait()
        with self.lock:
            if self.stopping or proc is not self.proc:
                return  # stopped, or replaced by restart()
            if code not in (EXIT_SOFT, EXIT_SOFT_RAW, EXIT_HARD):
                self.log(f"device exited with code {code}; booting again")
            self.spawn("raw" if code == EXIT_SOFT_RAW else "main")

    def _pump_events(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None  # spawned with PIPE
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.startswith("\x1e"):
                self.log("device: " + line)
                continue
            msg = json.loads(line[1:])
            if msg.get("event") == "ready":
                self.mode = msg.get("mode", "?")
                self.ready.set()
            elif "event" in msg:
                self.emit(msg)
            else:
                with self.reply_ready:
                    self.replies.append(msg)
                    self.reply_ready.notify_all()

    def log(self, text: str) -> None:
        sys.stderr.write(f"unix-runtime: {text}\n")
        sys.stderr.flush()

    def emit(self, obj: dict) -> None:
        with self.out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def to_device(self, kind: bytes, data: bytes) -> None:
        """One message on the device's stdin, after it has booted (bytes wait while it boots)."""
        for i in range(0, max(len(data), 1), MAX_CHUNK):
            part = data[i:i + MAX_CHUNK]
            while True:
                if not self.ready.wait(BOOT_TIMEOUT_S):
                    self.log(f"device not booted after {BOOT_TIMEOUT_S:g} s: dropped {len(part)} bytes")
                    return
                with self.lock:
                    proc = self.proc
                    if not self.ready.is_set() or proc is None or proc.stdin is None:
                        continue
                    try:
                        proc.stdin.write(kind + len(part).to_bytes(2, "big") + part)
                        break
                    except (BrokenPipeError, OSError):  # it is resetting: wait for the next one
                        self.ready.clear()

    # ---- the console on TCP -------------------------------------------------------------

    def send(self, data: bytes) -> None:
        c = self.client
        if c is not None:
            try:
                c.sendall(data)
            except OSError:
                pass

    def serve(self, host: str, port: int) -> None:
        srv = socket.create_server((host, port))
        self.emit({"event": "listening", "host": host, "port": srv.getsockname()[1]})

        accept_clients(srv, self)


    def read_loop(self, conn: socket.socket) -> None:
        quickack = getattr(socket, "TCP_QUICKACK", None)
        while True:
            try:
                data = conn.recv(65536)
                if quickack is not None:
                    # ACK at once: a client with Nagle's algorithm on (mpremote's socket://) holds its
                    # next small write until this ACK, otherwise delayed ~40 ms per exchange
                    conn.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            except OSError:
                return
            if not data:
                return
            self.to_device(b"D", data)

    # ---- control --------------------------------------------------------------------------

    def control(self, req: dict) -> dict:
        cmd = req.get("cmd")
        if cmd == "reset":  # power cycle: a new device process, main.py
            self.restart()
            return {"ok": True, "mode": self.mode}
        with self.reply_ready:
            n = len(self.replies)
        self.to_device(b"C", json.dumps(req).encode())
        with self.reply_ready:
            if not self.reply_ready.wait_for(lambda: len(self.replies) > n, BOOT_TIMEOUT_S):
                return {"ok": False, "error": "device did not answer"}
            return self.replies.pop(n)

    def restart(self) -> None:
        with self.lock:
            old, self.proc = self.proc, None
            self.ready.clear()
            if old is not None:
                old.kill()
            self.spawn("main")
        self.ready.wait(BOOT_TIMEOUT_S)

    def stop(self) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="glint virtual scanner, MicroPython Unix port runtime")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--flash", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--image", action="append", default=[])
    ap.add_argument("--heap", type=int, default=DEFAULT_HEAP)
    args = ap.parse_args(argv)
    from glint.mpy.unix import find_unix_port

    cmd = find_unix_port()
    if cmd is None:
        print(json.dumps({"event": "error", "error": "MicroPython Unix port not found"}), flush=True)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="glint-vrom-"))
    rom = None
    if args.image:
        rom = tmp / "rom"
        build_rom(args.image, rom)
    sup = Supervisor(cmd, args.flash, args.sim, rom, args.heap)
    try:
        sup.spawn("main")
        if not sup.ready.wait(BOOT_TIMEOUT_S):
            print(json.dumps({"event": "error", "error": "device did not boot"}), flush=True)
            return 1
        host, _, port = args.listen.rpartition(":")
        sup.serve(host or "127.0.0.1", int(port))
        for line in sys.stdin:  # the supervisor's pipe: EOF (VirtualScanner gone) ends the device
            if not line.strip():
                continue
            try:
                reply = sup.control(json.loads(line))
            except Exception as e:  # one bad control line must not stop the device
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            sup.emit(reply)
    finally:
        sup.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
