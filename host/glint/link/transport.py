"""Byte transport to one scanner: any pyserial URL, reopened after an unplug.

URLs (``serial.serial_for_url``): a device path (``/dev/ttyACM0``, ``COM3``),
``socket://HOST:PORT`` (the virtual scanner, a TCP bridge), ``loop://`` (tests),
``rfc2217://``, ``spy://`` (hexdump of the traffic, for debugging).

Every failure is a one-line LinkError with a hint; the transport never retries on
its own (glint.link.scanner decides what may be retried).
"""

from __future__ import annotations

import logging
import socket
import time

import serial

from glint.address import PORT_FORMAT, port_url
from glint.errors import LinkError

_log = logging.getLogger(__name__)

BAUDRATE = 115200  # ignored by USB CDC and sockets; UART links use the board's baud
READ_SLICE_S = 0.02  # one blocking read waits at most this long, so deadlines stay sharp
READ_CHUNK = 4096

HINT_OPEN = "is the scanner plugged in? is another program using the port?"
HINT_LOST = "the scanner was unplugged or reset: plug it back in and retry"
URL_FORMAT = PORT_FORMAT


def tcp_nodelay(port) -> None:
    """Send small writes at once on socket:// links (pyserial leaves Nagle's algorithm on).

    With Nagle, a short write that follows another waits for the peer's delayed ACK,
    about 40 ms on Linux: mpremote's exec went from ~50 ms to ~11 ms with this.
    """
    sock = getattr(port, "_socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Transport:
    """An open pyserial port with deadline-based reads and a ``reopen()``."""

    def __init__(self, url: str, baudrate: int = BAUDRATE):
        self.url = port_url(url)  # HOST:PORT -> socket://HOST:PORT; LinkError on a malformed URL
        self.baudrate = baudrate
        self.port: serial.SerialBase | None = None
        self.opened = 0  # how many times the port was (re)opened

    def open(self) -> None:
        """Open the URL; LinkError with a hint when it cannot be opened."""
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=READ_SLICE_S,
                                         write_timeout=2.0, do_not_open=True)
            # Boards such as the ESP32-S3 reset on a DTR/RTS edge: hold both steady.
            if hasattr(port, "dtr") and not self.url.startswith(("socket://", "loop://")):
                port.dtr = False
                port.rts = False
            port.open()
            tcp_nodelay(port)
        except (ValueError, TypeError) as e:
            raise LinkError(f"bad scanner port {self.url!r}: {e}", hint=f"give {URL_FORMAT}") from None
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot open scanner port {self.url}: {_reason(e)}", hint=HINT_OPEN) from None
        self.port = port
        self.opened += 1
        _log.debug("opened %s", self.url)

    @property
    def is_open(self) -> bool:
        return self.port is not None and self.port.is_open

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (serial.SerialException, OSError):  # already gone: nothing to release
                pass
            self.port = None

    def reopen(self, wait_s: float) -> None:
        """Close and open again, trying until ``wait_s`` has passed (an unplug / replug)."""
        self.close()
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.open()
                return
            except LinkError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _open_port(self) -> serial.SerialBase:
        port = self.port
        if port is None or not port.is_open:
            raise LinkError(f"scanner port {self.url} is closed", hint=HINT_LOST)
        return port

    def write(self, data: bytes) -> None:
        port = self._open_port()
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as e:
            self.close()
            raise LinkError(f"lost the scanner on {self.url}: {_reason(e)}", hint=HINT_LOST) from None

    def read(self) -> bytes:
        """Whatever arrives within one read slice (possibly b"")."""
        port = self._open_port()
        try:
            n = port.in_waiting
            return port.read(min(max(n, 1), READ_CHUNK))
        except (serial.SerialException, OSError) as e:
            self.close()
            raise LinkError(f"lost the scanner on {self.url}: {_reason(e)}", hint=HINT_LOST) from None

    def drain_input(self) -> None:
        """Drop bytes already received (stale answers after a timeout)."""
        if self.port is not None and self.port.is_open:
            try:
                self.port.reset_input_buffer()
            except (serial.SerialException, OSError):
                pass


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.splitlines()[0] if text else type(e).__name__
