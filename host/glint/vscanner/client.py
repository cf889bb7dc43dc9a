"""A minimal scanner client over pyserial: one request, one response, on top of glintcore.frame.

Works with any pyserial URL: a real board's port (/dev/ttyACM0) or the virtual
scanner (socket://127.0.0.1:PORT). The host-companion fleet link builds on the
same two calls; this module keeps only what the tests and tools need.

    with ScannerClient.open("socket://127.0.0.1:7777") as c:
        info = c.call(MSG_INFO)                 # body of an ST_OK response, else DeviceError
        r = c.request(MSG_SCAN, {"nonce": n})   # the raw Message (status + body)
"""

from __future__ import annotations

import logging
import time

import serial

from glint.errors import DeviceError, LinkError
from glintcore import frame, messages
from glintcore.proto import MAX_SEQ, ST_OK, status_name

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
READ_CHUNK = 4096
WAKE_SETTLE_S = 0.3


class ScannerClient:
    def __init__(self, port: serial.SerialBase, timeout: float = DEFAULT_TIMEOUT_S):
        self.port = port
        self.timeout = timeout
        self.deframer = frame.Deframer()
        self.seq = 0
        self.events: list[messages.Message] = []  # unsolicited device events seen so far
        self.noise: list = []  # frame errors seen on the way in

    @classmethod
    def open(cls, url: str, timeout: float = DEFAULT_TIMEOUT_S, baudrate: int = 115200) -> "ScannerClient":
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError(f"cannot open {url}: {e}") from e
        return cls(port, timeout)

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "ScannerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- raw I/O ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read_payloads(self, timeout: float) -> list:
        """Events (payload bytes or FrameError) from whatever arrives within ``timeout``."""
        deadline = time.monotonic() + timeout
        data = self.port.read(1)  # blocks up to the port timeout for the first byte
        while not data and time.monotonic() < deadline:
            data = self.port.read(1)
        if data:
            waiting = self.port.in_waiting
            if waiting:
                data += self.port.read(min(waiting, READ_CHUNK))
        return [e for e in self.deframer.feed(data) if e != frame.INTERRUPT] if data else []

    def next_seq(self) -> int:
        self.seq = self.seq % MAX_SEQ + 1
        return self.seq

    def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the link (noise, hand-made frames)."""
        self.write(data)

    def wait_response(self, mtype: int | None, seq: int | None, timeout: float | None = None) -> messages.Message:
        """The next response matching ``seq`` (any response if seq is None); events are kept in .events."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(f"no response from the scanner within {self.timeout:.0f} s",
                                hint="is it in protocol mode? (glint device ... or a reset)")
            for ev in self.read_payloads(min(left, 0.5)):
                if isinstance(ev, Exception):
                    self.noise.append(ev)
                    continue
                try:
                    msg = messages.decode_message(ev)
                except Exception as e:  # a garbled message from the device: note it, keep reading
                    self.noise.append(e)
                    continue
                if msg.kind == messages.KIND_EVENT:
                    self.events.append(msg)
                elif msg.kind == messages.KIND_RESPONSE and (seq is None or (msg.seq == seq and msg.type == mtype)):
                    return msg

    # ---- messages ---------------------------------------------------------------------------

    def request(self, mtype: int, body: dict | None = None, timeout: float | None = None) -> messages.Message:
        seq = self.next_seq()
        self.write(frame.encode_frame(messages.encode_request(mtype, seq, body or {})))
        return self.wait_response(mtype, seq, timeout)

    def call(self, mtype: int, body: dict | None = None, timeout: float | None = None) -> dict:
        """Body of the ST_OK response, or DeviceError naming the status and the device's reason."""
        msg = self.request(mtype, body, timeout)
        if msg.status != ST_OK:
            err = DeviceError(f"scanner refused 0x{mtype:02x}: {messages.describe_status(msg.status, msg.body)}")
            err.status = msg.status
            err.body = msg.body
            raise err
        return msg.body

    def wait_event(self, timeout: float | None = None) -> messages.Message:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.events:
            if time.monotonic() > deadline:
                raise LinkError("no event from the scanner")
            for ev in self.read_payloads(0.2):
                if not isinstance(ev, Exception):
                    msg = messages.decode_message(ev)
                    if msg.kind == messages.KIND_EVENT:
                        self.events.append(msg)
        return self.events.pop(0)

    def wake(self, kind: str = "soft") -> None:
        """Bring a scanner that sits at its REPL back to protocol mode (glintcore.restart.wake_sequence:
        Ctrl-B, Ctrl-C, then Ctrl-D for a ``soft`` port or a typed machine.reset() for a ``hard`` one).

        Harmless in protocol mode: the bytes are noise between frames and are dropped.
        """
        from glintcore.restart import wake_sequence

        self.write(wake_sequence(kind))
        time.sleep(WAKE_SETTLE_S)
        self.port.reset_input_buffer()
        self.deframer.reset()


__all__ = ["ScannerClient", "status_name"]
