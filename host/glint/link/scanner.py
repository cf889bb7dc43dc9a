"""Talking to one scanner: request/response over the shared protocol, with named timeouts.

    from glint.link import open_scanner
    with open_scanner("socket://127.0.0.1:7700") as sc:
        info = sc.info()                         # {device_id, board, fw, proto, pubkey, counter, ...}
        reply = sc.scan(nonce)                   # ScanReply(signed, guidance, quality, status)

Framing and messages are glintcore's (frame.Deframer, messages), exactly what the
firmware runs. Rules:

* every request has a fresh ``seq``; a response with another seq is a stale answer to a
  request that timed out earlier and is dropped;
* events (EVT_SCAN_SPOOLED, EVT_LOG) that arrive at any time are queued for ``poll_events``;
* a request the device refused as corrupt (ST_BAD_CRC / ST_MALFORMED: line noise) was not
  executed, so it is sent again whatever its type;
* after a timeout or a lost port only idempotent requests are retried (after reopening the
  port); a scan is never re-sent: the caller retries it with a NEW host nonce;
* a scanner left at its MicroPython REPL (after mpremote exec / fs / repl / soft-reset)
  is brought back to protocol mode without a manual reset: until the device has sent a
  valid frame on this port, the first request is preceded by a CR (noise between frames
  in protocol mode; a fresh ">>> " prompt at the friendly REPL). REPL output seen instead
  of an answer means nothing ran, so the scanner is woken (glintcore.restart's hard-reset
  wake sequence, which works on every port: main.py runs again) and the request sent
  again, whatever its type; a silent first request (a raw REPL echoes nothing) wakes it before its retry.
  Once the device has answered on this port it is in protocol mode and is never woken;
* errors are one line: LinkError (timeout, unplugged) or DeviceError (an error status).

For protocol tests and tools the same client also works one layer down: ``exchange`` sends
one request once and returns its response whatever the status; ``transport.write`` puts
hand-made bytes on the link and ``response`` / ``next_event`` wait for what comes back.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field

from glint.errors import DeviceError, LinkError
from glint.link.transport import HINT_LOST, Transport
from glintcore import frame, messages, proto, restart
from glintcore.errors import DecodeError, FrameError, ProtocolError

_log = logging.getLogger(__name__)

# Requests that can be sent twice without changing the outcome.
IDEMPOTENT = frozenset({proto.MSG_INFO, proto.MSG_SELFTEST, proto.MSG_CONFIG_GET, proto.MSG_CONFIG_SET,
                        proto.MSG_SPOOL_LIST, proto.MSG_SPOOL_GET, proto.MSG_SPOOL_ACK,
                        proto.MSG_CAPTURE, proto.MSG_INDICATE, proto.MSG_SIGNTEST})
# Device answers meaning "your frame arrived damaged; nothing was done".
DAMAGED = frozenset({proto.ST_BAD_CRC, proto.ST_MALFORMED, proto.ST_OVERSIZE})
MAX_EVENTS = 256  # queued events beyond this drop the oldest (a host that never polls)
# What only MicroPython's REPL prints (prompts, banners, raw REPL, soft reboot, tracebacks).
REPL_MARKERS = (b">>> ", b"raw REPL; CTRL-B to exit", b"MPY: soft reboot", b"Type \"help()\" for more",
                b"Traceback (most recent call last)", b"paste mode; Ctrl-C to cancel")
# Before the device has answered the board is unknown: the hard-reset sequence works on every port.
WAKE = restart.wake_sequence(restart.HARD)
MAX_WAKES = 2  # per request

MSG_NAMES = {v: k[4:].lower().replace("_", "-") for k, v in vars(proto).items()
             if k.startswith("MSG_") and isinstance(v, int)}


@dataclass
class Timeouts:
    """Named timeouts (seconds) and retry counts; a config file may override any of them.

    ``request`` is the default; the slow operations have their own. The virtual scanner
    on MicroPython-WebAssembly detects and signs a scan in about a second; real boards
    are faster, so these leave a wide margin without hiding a dead link for long.
    """

    request: float = 3.0
    scan: float = 30.0
    keygen: float = 60.0
    selftest: float = 30.0
    reset: float = 5.0
    retries: int = 2  # extra attempts for idempotent requests and damaged frames
    wake_quiet: float = 0.5  # after a wake: the console must stay silent this long (main.py has started)
    wake_max: float = 8.0  # ... or at most this long
    reconnect: float = 5.0  # how long to wait for a port to come back after an unplug
    quiet: float = 0.05  # read slice while polling events

    def for_type(self, mtype: int) -> float:
        return {proto.MSG_SCAN: self.scan, proto.MSG_KEYGEN: self.keygen,
                proto.MSG_SELFTEST: self.selftest, proto.MSG_RESET: self.reset}.get(mtype, self.request)

    @classmethod
    def from_config(cls, section: dict) -> "Timeouts":
        """Build from a ``[link]`` config table: unknown keys are ignored with a warning."""
        t = cls()
        for k, v in section.items():
            if hasattr(t, k) and isinstance(v, (int, float)):
                setattr(t, k, type(getattr(t, k))(v))
            else:
                _log.warning("ignoring unknown link setting %r", k)
        return t


@dataclass
class ScanReply:
    """What the scanner answered to MSG_SCAN. ``signed`` is None when the capture was poor."""

    signed: bytes | None
    guidance: int
    quality: dict = field(default_factory=dict)
    status: int = proto.ST_OK

    @property
    def guidance_text(self) -> str:
        return proto.GUIDANCE_TEXT.get(self.guidance, f"guidance code {self.guidance}")


def type_name(mtype: int) -> str:
    return MSG_NAMES.get(mtype, "0x%02x" % mtype)


class Scanner:
    """One scanner behind one port URL. Not thread-safe: one caller at a time."""

    def __init__(self, transport: Transport, timeouts: Timeouts | None = None):
        self.transport = transport
        self.timeouts = timeouts or Timeouts()
        self._deframer = frame.Deframer()
        self._seq = 0
        self._events: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        self._info: dict | None = None
        self.stats: collections.Counter[str] = collections.Counter()  # sent, retries, stale, noise, reconnects, recovered, wakes
        self.last_attempts = 0  # how many sends the last answered request took
        self._heard = False  # a valid frame arrived since the port was (re)opened
        self._console = b""  # the tail of non-frame bytes, for REPL markers split across reads

    @property
    def url(self) -> str:
        return self.transport.url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.transport.close()

    # --- core -------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = self._seq % proto.MAX_SEQ + 1
        return self._seq

    def request(self, mtype: int, body: dict | None = None, timeout: float | None = None,
                retries: int | None = None) -> messages.Message:
        """Send one request and return its OK response.

        Raises DeviceError for an error status (one line with the status name and the
        device's detail; ``.status`` holds the code), LinkError for a timeout or a lost port.
        """
        name = type_name(mtype)
        timeout = self.timeouts.for_type(mtype) if timeout is None else timeout
        retries = self.timeouts.retries if retries is None else retries
        idempotent = mtype in IDEMPOTENT
        attempt = 0
        resent = 0  # damaged-frame resends have their own budget: nothing ran on the device
        wakes = 0
        while True:
            try:
                resp = self._exchange(mtype, body, timeout, name)
            except _AtRepl:
                if wakes >= MAX_WAKES:
                    raise LinkError(f"scanner on {self.url} stays at its MicroPython REPL",
                                    hint="main.py may fail at boot: look with 'mpremote connect PORT repl'") from None
                wakes += 1
                self.wake()
                continue
            except LinkError:
                if not idempotent or attempt >= retries:
                    raise
                attempt += 1
                self.stats["retries"] += 1
                _log.info("%s: retrying %s (attempt %d)", self.url, name, attempt + 1)
                self._recover()
                continue
            if resp.status in DAMAGED and resent < self.timeouts.retries:
                resent += 1
                self.stats["retries"] += 1
                _log.info("%s: %s arrived damaged (%s); sending again", self.url, name,
                          proto.status_name(resp.status))
                continue
            self.last_attempts = attempt + resent + 1
            if resp.status != proto.ST_OK:
                err = DeviceError(f"scanner refused {name}: {messages.describe_status(resp.status, resp.body)}",
                                  hint=_status_hint(resp.status))
                err.status = resp.status
                err.body = resp.body
                raise err
            return resp

    def wake(self, kind: str = restart.HARD) -> None:
        """Bring a scanner at its REPL back to protocol mode (harmless noise in protocol mode).

        ``kind``: glintcore.restart's wake sequence; the default (hard) works on every port."""
        self.stats["wakes"] += 1
        _log.info("%s: the scanner is at its MicroPython REPL: soft reset into main.py", self.url)
        self.transport.write(WAKE if kind == restart.HARD else restart.wake_sequence(kind))
        t0 = last = time.monotonic()
        while self.transport.is_open:  # a board's USB port drops on the hard reset: reopened by the next send
            now = time.monotonic()
            if now - last >= self.timeouts.wake_quiet or now - t0 >= self.timeouts.wake_max:
                break
            try:
                if self.transport.read():
                    last = time.monotonic()
            except LinkError:
                break
        self.transport.drain_input()
        self._deframer.reset()
        self._console = b""

    def _recover(self) -> None:
        """Make the link usable again after a timeout or an unplug."""
        self._deframer.reset()
        if self.transport.is_open:
            if not self._heard:  # silent from the start: maybe a raw REPL, which echoes nothing
                self.wake()
            self.transport.drain_input()
            return
        self.stats["reconnects"] += 1
        self.transport.reopen(self.timeouts.reconnect)

    def _exchange(self, mtype: int, body: dict | None, timeout: float, name: str) -> messages.Message:
        if not self.transport.is_open:
            self.stats["reconnects"] += 1
            self.transport.reopen(self.timeouts.reconnect)
        seq = self._next_seq()
        wire = frame.encode_frame(messages.encode_request(mtype, seq, body))
        self.transport.write(wire if self._heard else b"\r" + wire)
        self.stats["sent"] += 1
        return self._await(timeout, name, seq, mtype)

    def _await(self, timeout: float, name: str, seq: int | None = None, mtype: int | None = None) -> messages.Message:
        """The response to (seq, mtype), or a seq-0 damaged-frame answer; any response when seq is None."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self._receive():
                if msg.kind == messages.KIND_RESPONSE:
                    if seq is None or (msg.seq == seq and msg.type == mtype):
                        return msg
                    if msg.seq == 0 and msg.status in DAMAGED:
                        return msg  # the device could not read our frame, so it could not echo seq
                    self.stats["stale"] += 1
                    _log.debug("%s: dropped stale response %r", self.url, msg)
            if time.monotonic() >= deadline:
                raise LinkError(f"scanner on {self.url} did not answer {name} within {timeout:g} s",
                                hint="is the scanner running the glint firmware? (a REPL left by mpremote is "
                                     "woken automatically) try 'glint device list' or unplug and replug it")

    def _receive(self) -> list[messages.Message]:
        """Read one slice and return the complete messages in it; queue events."""
        data = self.transport.read()
        if not data:
            return []
        recovered = self._deframer.stats_recovered
        out = []
        repl = False
        if not self._heard and not self._deframer.in_frame:  # a device that answered is in protocol mode
            tail = self._console + data
            repl = any(m in tail for m in REPL_MARKERS)
            self._console = tail[-40:]
        for ev in self._deframer.feed(data):
            if isinstance(ev, FrameError):
                self.stats["noise"] += 1
                _log.info("%s: dropped a damaged frame from the scanner: %s", self.url, ev)
                continue
            if ev == frame.INTERRUPT:
                continue
            try:
                msg = messages.decode_message(ev)
            except (DecodeError, ProtocolError) as e:
                self.stats["noise"] += 1
                _log.info("%s: dropped a malformed message: %s", self.url, e)
                continue
            self._heard = True
            if msg.kind == messages.KIND_EVENT:
                self._events.append(msg)
            elif msg.kind == messages.KIND_RESPONSE:
                out.append(msg)
        if self._deframer.stats_recovered != recovered:
            self.stats["recovered"] += self._deframer.stats_recovered - recovered
            _log.info("%s: recovered a reply from stray output on the link", self.url)
        if repl and not out:
            raise _AtRepl()
        return out

    # --- one layer down (protocol tests, tools) ------------------------------------------
    def exchange(self, mtype: int, body: dict | None = None, timeout: float | None = None) -> messages.Message:
        """Send one request once and return its response whatever its status (no retry, no wake,
        no DeviceError): what the device answered, for tests of the protocol itself."""
        name = type_name(mtype)
        try:
            return self._exchange(mtype, body, self.timeouts.for_type(mtype) if timeout is None else timeout, name)
        except _AtRepl:
            raise LinkError(f"scanner on {self.url} is at its MicroPython REPL: {name} did not run",
                            hint="wake it (Scanner.wake) or reset it") from None

    def response(self, timeout: float | None = None) -> messages.Message:
        """The next response of any seq (after a hand-made frame sent with ``transport.write``)."""
        try:
            return self._await(self.timeouts.request if timeout is None else timeout, "a hand-made frame")
        except _AtRepl:
            raise LinkError(f"scanner on {self.url} is at its MicroPython REPL", hint="wake it first") from None

    def next_event(self, timeout: float | None = None) -> messages.Message:
        """The oldest unsolicited event, waiting up to ``timeout`` for one (LinkError if none came)."""
        wait = self.timeouts.request if timeout is None else timeout
        deadline = time.monotonic() + wait
        while not self._events:
            if time.monotonic() >= deadline:
                raise LinkError(f"no event from the scanner on {self.url} within {wait:g} s")
            try:
                for _msg in self._receive():
                    self.stats["stale"] += 1  # a response nobody waits for any more
            except _AtRepl:
                raise LinkError(f"scanner on {self.url} is at its MicroPython REPL", hint="wake it first") from None
        return self._events.popleft()

    def poll_events(self, wait: float = 0.0) -> list[messages.Message]:
        """Events received so far (and during ``wait`` seconds), oldest first; clears the queue."""
        deadline = time.monotonic() + wait
        while True:
            for _msg in self._receive():
                self.stats["stale"] += 1  # a response nobody waits for any more
            if time.monotonic() >= deadline:
                break
        out = list(self._events)
        self._events.clear()
        return out

    # --- typed requests -----------------------------------------------------------------
    def info(self, refresh: bool = False) -> dict:
        """The device's identity: device_id, board, fw, proto, caps, pubkey, counter, ..."""
        if self._info is None or refresh:
            self._info = dict(self.request(proto.MSG_INFO).body)
        return self._info

    def scan(self, nonce: bytes, accept_poor: bool = False) -> ScanReply:
        """One scan bound to ``nonce``. A poor capture is a ScanReply with ``signed`` None
        (unless ``accept_poor``: then the device signs it anyway, with its guidance code).

        Never retried here: a lost answer means the caller issues a new nonce and scans again.
        """
        req: dict[str, object] = {"nonce": bytes(nonce)}
        if accept_poor:
            req["accept_poor"] = True
        try:
            body = self.request(proto.MSG_SCAN, req, retries=0).body
        except DeviceError as e:
            if getattr(e, "status", None) == proto.ST_POOR_CAPTURE:
                b = e.body if isinstance(e.body, dict) else {}
                return ScanReply(None, int(b.get("guidance", proto.GD_NO_COATING)), dict(b.get("quality") or {}),
                                 proto.ST_POOR_CAPTURE)
            raise
        signed = body.get("scan")
        if not isinstance(signed, (bytes, bytearray)):
            raise DeviceError("scanner answered a scan without a signed scan", hint=HINT_FIRMWARE)
        return ScanReply(bytes(signed), int(body.get("guidance", proto.GD_OK)), dict(body.get("quality") or {}))

    def keygen(self, force: bool = False, entropy: bytes | None = None, maintainer: bytes | None = None,
               counter_floor: int | None = None) -> bytes:
        """Generate the device key on the device; returns its public key (65 bytes SEC1).

        ``maintainer``: the public key whose signed challenges unlock this scanner
        (docs/security.md); ``counter_floor``: where a device whose counter records were
        damaged resumes counting (above every counter this host accepted from it).
        """
        body: dict[str, object] = {"force": True} if force else {}
        if entropy is not None:
            body["entropy"] = bytes(entropy)
        if maintainer is not None:
            body["maintainer"] = bytes(maintainer)
        if counter_floor is not None:
            body["counter_floor"] = int(counter_floor)
        pub = self.request(proto.MSG_KEYGEN, body).body.get("pubkey")
        if not isinstance(pub, (bytes, bytearray)) or len(pub) != 65:
            raise DeviceError("scanner answered keygen without a 65-byte public key", hint=HINT_FIRMWARE)
        self._info = None
        return bytes(pub)

    def unlock(self, maintainer_d: int) -> bool:
        """Unlock a locked scanner for this boot with the maintainer key (a P-256 scalar).

        The device sends a single-use challenge; the answer is an ES256 signature over
        UNLOCK_PREFIX || device id || challenge. Returns True if it was locked. A DeviceError
        (status ST_LOCKED) says why when the device refuses.
        """
        from glint.crypto import es256_sign_digest

        body = self.request(proto.MSG_UNLOCK, {}).body
        if not body.get("locked"):
            return False
        ch, did = bytes(body["challenge"]), bytes(body["device_id"])
        import hashlib

        sig = es256_sign_digest(maintainer_d, hashlib.sha256(proto.UNLOCK_PREFIX + did + ch).digest())
        self.request(proto.MSG_UNLOCK, {"signature": sig})
        self._info = None
        return True

    def selftest(self) -> dict:
        return dict(self.request(proto.MSG_SELFTEST).body)

    def config_get(self, key: str | None = None):
        """The whole config map, or one value when ``key`` is given (the device answers {key, value})."""
        body = self.request(proto.MSG_CONFIG_GET, {"key": key} if key is not None else {}).body
        if key is not None:
            return body.get("value")
        return dict(body.get("config", {}))

    def config_set(self, key: str, value) -> dict:
        return dict(self.request(proto.MSG_CONFIG_SET, {"key": key, "value": value}).body.get("config", {}))

    def spool_list(self) -> list[int]:
        return [int(c) for c in self.request(proto.MSG_SPOOL_LIST).body.get("entries", [])]

    def spool_get(self, counter: int) -> bytes:
        scan = self.request(proto.MSG_SPOOL_GET, {"counter": int(counter)}).body.get("scan")
        if not isinstance(scan, (bytes, bytearray)):
            raise DeviceError(f"scanner answered spool entry {counter} without a scan", hint=HINT_FIRMWARE)
        return bytes(scan)

    def spool_ack(self, counter: int) -> None:
        try:
            self.request(proto.MSG_SPOOL_ACK, {"counter": int(counter)})
        except DeviceError as e:
            # A retried ack whose first copy was executed finds nothing: that is success.
            if getattr(e, "status", None) != proto.ST_NOT_FOUND or self.last_attempts < 2:
                raise

    def indicate(self, pattern: str) -> None:
        self.request(proto.MSG_INDICATE, {"pattern": pattern})

    def reset(self) -> None:
        """Soft-reset the device; the port may drop and come back (reopened on the next request)."""
        try:
            self.request(proto.MSG_RESET, retries=0)
        except LinkError:
            pass  # the device may reset before its answer leaves
        self._info = None


class _AtRepl(Exception):
    """The console printed MicroPython REPL output instead of an answer: nothing ran."""


HINT_FIRMWARE = "the scanner's firmware may not match this host: update it with 'glint fw deploy'"


def _status_hint(status: int) -> str | None:
    return {
        proto.ST_NO_KEY: "provision it first: glint device provision PORT",
        proto.ST_KEY_EXISTS: "it is already provisioned; re-key only with --force",
        proto.ST_POOR_CAPTURE: "place the coated area under the lens and hold still",
        proto.ST_SPOOL_FULL: "sync its offline scans with a host",
        proto.ST_BUSY: "wait for the running command to finish",
        proto.ST_VERSION: HINT_FIRMWARE,
        proto.ST_UNKNOWN: HINT_FIRMWARE,
        proto.ST_STORAGE: "the scanner's storage failed: run 'glint device selftest'",
    }.get(status)


def open_scanner(url: str, timeouts: Timeouts | None = None) -> Scanner:
    """Open a scanner at a pyserial URL (/dev/ttyACM0, socket://127.0.0.1:PORT, loop://)."""
    t = Transport(url)
    t.open()
    return Scanner(t, timeouts)


__all__ = ["Scanner", "ScanReply", "Timeouts", "open_scanner", "IDEMPOTENT", "HINT_LOST", "type_name"]
