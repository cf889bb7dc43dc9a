"""Link loops: bytes from the host through the deframer into the App, framed responses back.

``LinkCore`` is the sans-IO part shared by every link: ``feed(data)`` returns the
bytes to send, the action the App asked for (glintfw.app ACT_*) and how many input
bytes were consumed (on an interrupt the rest belongs to the REPL). Around it:

* ``run_console``: the USB console of a real board. ``micropython.kbd_intr(-1)``
  makes the console binary-safe while in protocol mode; mpremote's interrupt
  ``\\r\\x03`` between frames (or MSG_REPL) restores Ctrl-C and returns, so main.py
  ends and the board is at its REPL with mpremote's following Ctrl-A unread.
  Bytes are read one at a time so nothing after the interrupt is swallowed.
* ``run_stream``: a UART from board.make_link() (board.json link.type "uart").
* hosted mode (MicroPython WebAssembly under the virtual-scanner bridge, the
  MicroPython Unix port under glint.vscanner.unix_runtime, or the CPython runtime): nothing may block there, so ``main()`` only builds the App and
  returns; the host calls ``host_feed``/``host_tick``/``host_button``.
"""

import sys
import time

from micropython import const

from glintcore import frame, restart
from glintcore.proto import MAX_PAYLOAD
from glintfw import app as app_mod
from glintfw import usbdrive

POLL_MS = const(20)  # main-loop period for indicators and the button
DEBOUNCE_MS = const(50)
# A frame from the host arrives in one burst (one write; even 2 KB at 115200 baud has no gap):
# a pause this long inside a frame means its sender died mid-frame, so the partial frame is
# dropped before the next byte is read. Without it, mpremote's "\r\x03" after a host that died
# mid-frame would be taken as frame data until some later 0x00.
FRAME_IDLE_MS = const(250)
_CTRL_C = const(0x03)


def _ticks_diff(a, b):
    f = getattr(time, "ticks_diff", None)
    return f(a, b) if f is not None else a - b


def ticks_ms():
    """time.ticks_ms() on MicroPython; a millisecond clock on CPython (virtual scanner runtime)."""
    f = getattr(time, "ticks_ms", None)
    return f() if f is not None else int(time.monotonic() * 1000)


class LinkCore:
    """Deframe, dispatch, frame: the protocol half of every link loop."""

    def __init__(self, app):
        self.app = app
        self.deframer = frame.Deframer(MAX_PAYLOAD, recover=False)  # the host never prints into the link
        self.frames_in = 0
        self.errors = 0
        self.idle_resets = 0  # partial frames dropped after FRAME_IDLE_MS of silence
        self._last = None  # ticks_ms of the last byte fed
        self.refused_interrupts = 0  # \r\x03 while the scanner was locked (glintfw.lock)

    def feed(self, data, now=None):
        """Process ``data`` -> (out bytes, action, consumed). Stops after an interrupt or an action.

        ``now`` (ticks_ms when ``data`` arrived): a partial frame older than FRAME_IDLE_MS is
        dropped first, so what follows a dead sender (mpremote's interrupt) is read afresh.
        """
        if now is not None:
            last = self._last
            self._last = now
            if last is not None and self.deframer.in_frame and _ticks_diff(now, last) > FRAME_IDLE_MS:
                self.deframer.reset()
                self.idle_resets += 1
        app = self.app
        out = bytearray()
        n = len(data)
        start = 0
        while start < n:
            # Feed up to and including the next Ctrl-C so an interrupt is located exactly.
            end = start
            while end < n and data[end] != _CTRL_C:
                end += 1
            end = min(end + 1, n)
            for ev in self.deframer.feed(data[start:end]):
                if ev is frame.INTERRUPT:  # not ==: a bytes payload == str warns on MicroPython
                    if app.repl_allowed():
                        return bytes(out), app_mod.ACT_REPL, end
                    self.refused_interrupts += 1  # locked: the console stays in protocol mode
                    continue
                if isinstance(ev, Exception):
                    self.errors += 1
                    out.extend(frame.encode_frame(app.frame_error(ev)))
                    continue
                self.frames_in += 1
                out.extend(frame.encode_frame(app.handle(ev)))
                if app.action != app_mod.ACT_NONE:
                    self.deframer.reset()
                    return bytes(out), app.action, end
            start = end
        return bytes(out), app_mod.ACT_NONE, n

    def event(self, payload):
        return frame.encode_frame(payload)


class Button:
    """Edge detector with debounce for board.make_button() (pressed = 1)."""

    def __init__(self, pin):
        self.pin = pin
        self._last = 0
        self._t = 0

    def pressed(self, now):
        if self.pin is None:
            return False
        v = 1 if self.pin.value() else 0
        if v != self._last and time.ticks_diff(now, self._t) >= DEBOUNCE_MS:
            self._last = v
            self._t = now
            return v == 1
        return False



def _loop(core, read_byte, write, button):  # pragma: no cover - real boards (blocking I/O)
    app = core.app
    one = bytearray(1)
    while True:
        now = time.ticks_ms()
        app.ind.tick(now)
        if not core.deframer.in_frame and button.pressed(now):  # never stall a frame being received
            write(core.event(app.standalone_scan()))
        b = read_byte(POLL_MS)
        if b is None:
            continue
        one[0] = b
        out, action, _ = core.feed(one, time.ticks_ms())
        if out:
            write(out)
        if action != app_mod.ACT_NONE:
            return action


def _quiet_port_logs():  # pragma: no cover - real boards
    """ESP32: ESP-IDF logs down to errors while glint owns the console (esp.osdebug(None), ports/esp32
    modesp.c); on the ESP32-CAM they share UART0 with the link. What still gets through (errors,
    other ports' prints) the host's deframer survives (docs/protocol.md)."""
    try:
        import esp

        esp.osdebug(None)
    except (ImportError, AttributeError):
        pass


def _serve(core, read_byte, write, button):  # pragma: no cover - real boards
    """Protocol mode on a real link: Ctrl-C is data here (the deframer spots mpremote's interrupt)."""
    import micropython

    _quiet_port_logs()
    micropython.kbd_intr(-1)
    try:
        action = _loop(core, read_byte, write, button)
    finally:
        micropython.kbd_intr(3)
    if action == app_mod.ACT_RESET:
        import machine

        restart.restart(restart.kind_of(core.app.board_cfg), machine)  # soft on ESP32, hard on OpenMV


def run_console(core, button):  # pragma: no cover - real boards
    import select

    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)

    def read_byte(timeout):
        if not poller.poll(timeout):
            return None
        b = stdin.read(1)
        return b[0] if b else None

    _serve(core, read_byte, stdout.write, button)


def run_stream(core, stream, button):  # pragma: no cover - real boards
    def read_byte(timeout):
        deadline = time.ticks_add(time.ticks_ms(), timeout)
        while not stream.any():
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return None
            time.sleep_ms(1)
        b = stream.read(1)
        return b[0] if b else None

    _serve(core, read_byte, stream.write, button)


# ---- hosted mode (virtual scanner) ---------------------------------------------------

_hosted = None


def hosted():
    """True where the host drives the loop: MicroPython WebAssembly or Unix port (virtual scanner), or CPython."""
    return sys.platform in ("webassembly", "linux") or sys.implementation.name != "micropython"


def host_feed(data):
    """Virtual scanner: bytes from the link -> (bytes to send, action, consumed)."""
    return _hosted.feed(bytes(data), ticks_ms())


def host_tick():
    _hosted.app.ind.tick()


def host_button():
    """Virtual scanner: the (virtual) button was pressed -> event frame bytes to send."""
    return _hosted.event(_hosted.app.standalone_scan())


def host_status():
    """Indicator and counter state for the virtual scanner's control port."""
    a = _hosted.app
    return {"pattern": a.ind.pattern, "led": a.ind.led, "buzzer": a.ind.buzz, "counter": a.counter.peek,
            "spool": len(a.spool), "frames": _hosted.frames_in, "errors": _hosted.errors}


REFUSED = "glint: protocol mode refused: "  # the one line a board prints when it will not start


def main(board=None, real=None):
    """Start the scanner on ``board`` (the deployed /board.py by default).

    On a real board (``real``; default: not hosted) the USB drive must not be exported first
    (glintfw.usbdrive): where it stays exported, one line says why and the board stays at its
    REPL, its state untouched; main() returns None."""
    global _hosted
    if board is None:
        import board
    if (not hosted()) if real is None else real:
        try:
            usbdrive.protect(board.load_config())
        except usbdrive.DriveExported as e:
            print(REFUSED + str(e))
            return None
    application = app_mod.App(board)
    core = LinkCore(application)
    if hosted():
        _hosted = core
        return core
    button = Button(board.make_button())  # pragma: no cover - real boards from here
    link = board.load_config().get("link", {})
    stream = board.make_link() if link.get("type") == "uart" else None
    if stream is not None:
        run_stream(core, stream, button)
    else:
        run_console(core, button)
    return core


__all__ = ["LinkCore", "main", "host_feed", "host_tick", "host_button", "host_status"]
