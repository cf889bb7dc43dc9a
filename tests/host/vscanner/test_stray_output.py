"""Stray output on the link (issue 18): a real host (glint.link.Scanner) talks to the virtual scanner
through a TCP proxy that writes what boards really print, between and inside the scanner's
replies; no response may be lost, and no request may need a retry.
"""

from __future__ import annotations

import os
import socket
import threading

import pytest
from glinttest import require_micropython

from glintcore import frame

WARNING_G = b"\x1b[31mWARNING: Auto Gain control is not supported by this sensor.\x1b[0m\r\n"  # OpenMV csi on a GC2145
IDF_LOG = b"\x1b[0;33mW (52311) cam_hal: Failed to get the frame on time!\x1b[0m\n"  # ESP-IDF log on UART0
TRACEBACK = (b"Traceback (most recent call last):\r\n  File \"glintfw/cam_openmv.py\", line 61, in set_gain\r\n"
             b"RuntimeError: Sensor control failed.\r\n")
# per reply (cycled): stray output before it, and inside it (None: nothing there)
PATTERN = [(WARNING_G, None), (None, IDF_LOG), (WARNING_G, TRACEBACK), (IDF_LOG, WARNING_G), (TRACEBACK, IDF_LOG)]


class NoisyProxy:
    """Forwards host -> scanner unchanged; scanner -> host with stray output around and inside each frame."""

    def __init__(self, target_url: str):
        host, port = target_url[len("socket://"):].rsplit(":", 1)
        self.target = (host, int(port))
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.srv.getsockname()[1]}"
        self.frames = 0
        self.sent = bytearray()  # everything the host received
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, up), daemon=True).start()
            threading.Thread(target=self._noisy, args=(up, client), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while data := src.recv(4096):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def _noisy(self, src, dst):
        buf = b""
        try:
            while data := src.recv(4096):
                buf += data
                while (k := buf.find(b"\x00")) >= 0:
                    f, buf = buf[:k + 1], buf[k + 1:]
                    before, inside = PATTERN[self.frames % len(PATTERN)]
                    self.frames += 1
                    mid = len(f) // 2
                    out = (before or b"") + f[:mid] + (inside or b"") + f[mid:]
                    self.sent += out
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            dst.close()

    def close(self):
        self._stop = True
        self.srv.close()


@pytest.fixture(scope="module", params=["unix", pytest.param("node", marks=pytest.mark.slow)])
def runtime(request):
    """The Unix port only in the default run: the stray output is the proxy's and its recovery the host's
    (glint.link's deframer), the device's replies the same bytes on either port; WebAssembly's scans take
    seconds each (24 s for this test under load), so its run is under -m slow."""
    require_micropython(request.param)
    return request.param


@pytest.fixture
def proxy(vscanner):
    p = NoisyProxy(vscanner.url)
    yield p
    p.close()


def test_stray_prints_between_and_inside_replies_lose_nothing(proxy):
    from glint.link import open_scanner
    from glint.link.scanner import Timeouts

    with open_scanner(proxy.url, Timeouts(request=10.0, retries=2)) as sc:
        info = sc.info()
        if info["pubkey"] is None:
            sc.keygen()
        answers = [sc.info(refresh=True)["board"], sc.config_get("exposure_us"),
                   sc.config_set("indicators", True)["indicators"], len(sc.spool_list()) >= 0,
                   sc.selftest()["key"]["ok"]]
        scans = [sc.scan(os.urandom(16), accept_poor=True) for _ in range(4)]
        answers.append(len(sc.request(0x0E, {"message": b"hello"}).body["signature"]))
        stats = dict(sc.stats)
    assert answers == ["sim", 8000, True, True, True, 64]
    assert all(s.signed for s in scans)
    assert stats.get("retries", 0) == 0 and stats.get("noise", 0) == 0  # nothing lost, nothing re-asked
    assert stats["recovered"] == proxy.frames > 10  # every reply had a false start or text inside: all rescued
    # the noise is real: a receiver without recovery loses most of these replies
    plain = frame.Deframer(recover=False).feed(bytes(proxy.sent))
    assert sum(isinstance(e, bytes) for e in plain) < proxy.frames // 2
