"""A scanner peer for link tests: the real firmware App (glintfw.app) on CPython behind a TCP socket.

Faults are injected on the wire, the way a real link fails: ``drop`` swallows the next
requests without an answer, ``noise`` sends garbage before an answer, ``damage`` flips a
bit in the next request before the device sees it, ``hangup`` closes the connection
instead of answering. Everything else is the firmware's own code.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

from glinttest import REPO

if str(REPO / "firmware") not in sys.path:
    sys.path.insert(0, str(REPO / "firmware"))

from glintcore import frame  # noqa: E402


class TestBoard:
    """boards/sim with its files in a host directory instead of the device root."""

    def __init__(self, root: Path):
        self.root = root
        cfg = json.loads((REPO / "boards" / "sim" / "board.json").read_text())
        cfg["storage_root"] = str(root / "flash")
        cfg["camera"]["path"] = str(root / "lens.pgm")
        cfg["camera"]["frames_dir"] = str(root / "frames")
        (root / "flash").mkdir(parents=True, exist_ok=True)
        self.cfg = cfg

    def load_config(self):
        return self.cfg

    def make_camera(self):
        from glintfw.cam_sim import SimCamera

        c = self.cfg["camera"]
        return SimCamera(c["width"], c["height"], c["path"], c["frames_dir"], c["exposure_us"], c["gain"])

    def make_leds(self):
        return []

    def make_buzzer(self):
        return None

    def entropy(self, n):
        return os.urandom(n)


class Peer:
    """Serve the firmware App on 127.0.0.1:<port> (one connection at a time)."""

    def __init__(self, root: Path):
        from glintfw.app import App

        self.board = TestBoard(root)
        self.app = App(self.board)
        self.lock = threading.Lock()
        self.drop = 0
        self.noise = b""
        self.damage = 0
        self.hangup = 0
        self.requests = 0
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._stop = False
        self._conn = None
        threading.Thread(target=self._serve, daemon=True).start()

    def lens(self, image) -> None:
        """Put a simulated capture (H, W uint8) under the lens."""
        from glint.sim import write_pgm

        write_pgm(self.board.root / "lens.pgm", image)

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self._conn = conn
            try:
                self._talk(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _talk(self, conn):
        d = frame.Deframer()
        while True:
            data = conn.recv(4096)
            if not data:
                return
            for ev in d.feed(data):
                if isinstance(ev, Exception):
                    conn.sendall(frame.encode_frame(self.app.frame_error(ev)))
                    continue
                if ev == frame.INTERRUPT:
                    continue
                with self.lock:
                    self.requests += 1
                    if self.damage:
                        self.damage -= 1
                        conn.sendall(frame.encode_frame(self.app.frame_error(
                            frame.FrameError("frame failed its CRC-32 check", 2))))
                        continue
                    resp = self.app.handle(ev)
                    if self.hangup:
                        self.hangup -= 1
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    if self.drop:
                        self.drop -= 1
                        continue
                    conn.sendall(self.noise + frame.encode_frame(resp))

    def send_raw(self, data: bytes) -> None:
        """Unsolicited bytes to the connected host (events, noise)."""
        self._conn.sendall(data)

    def close(self):
        self._stop = True
        self.srv.close()
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass


def lens_image(seed: int, capture: int, profile: str = "field"):
    """A simulated capture (H, W uint8) of the coating ``seed`` (capture noise/pose from ``capture``)."""
    from glint import sim

    return sim.capture(sim.make_coating(seed, profile), profile, seed=capture).image
