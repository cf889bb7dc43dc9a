"""The virtual scanner's device on the MicroPython Unix port (runs ON MicroPython, started by unix_runtime.py).

    micropython -X heapsize=N _unix_device.py FLASH SIM ROM|- main|raw

The device filesystem is a board's: "/" is the host directory FLASH (every write lands
there at once), /sim the lens files, /rom the firmware image (main.py, board.py,
board.json, lib/: read-only like frozen modules; "-" = a blank board that runs the
/main.py in its flash). Boot runs main.py ("main") or stays in the raw REPL after a raw
REPL soft reset ("raw"), as MicroPython's pyexec does on a board.

The console is this process's stdin/stdout, as on a board's USB port; the supervisor
multiplexes onto stdin messages of one type byte, a 2-byte big-endian length and the data:
"D" console bytes, "C" a control request (JSON: ping, status, button). Replies and events
go to stderr as lines "\\x1e" + JSON. In protocol mode console bytes go to
glintfw.link.host_feed; after an interrupt or MSG_REPL the console is the REPL: friendly
(echo, ">>> ", Ctrl-A/B/C/D/E) and raw, with raw-paste (mpremote's flow-controlled
upload) and soft reset. A reset exits with a code that tells the supervisor how to boot
the next process (soft: main.py, soft from the raw REPL: raw REPL, hard: main.py);
machine.reset() / machine.soft_reset() do the same.
"""

import sys

EXIT_SOFT = 80  # soft reset: boot and run main.py
EXIT_SOFT_RAW = 81  # soft reset from the raw REPL: boot into the raw REPL, main.py not run
EXIT_HARD = 82  # machine.reset(): boot and run main.py
TICK_MS = 50
PASTE_WINDOW = 4096
BANNER = "MicroPython v%d.%d.%d on glint virtual scanner (Unix port); sim with glint\r\nType \"help()\" for more information.\r\n"


class _Reset(BaseException):
    def __init__(self, code):
        self.code = code


class Device:
    def __init__(self, rom):
        import select

        self.out = sys.stdout.buffer
        self.inp = sys.stdin.buffer
        self.poll = select.poll()
        self.poll.register(sys.stdin, select.POLLIN)
        self.rom = rom
        self.mode = "off"
        self.link = None
        self.line = bytearray()
        self.paste = None  # bytearray while in paste / raw-paste mode
        self.cont = False  # friendly REPL: inside a compound statement
        self.g = {"__name__": "__main__"}

    # ---- supervisor channel -----------------------------------------------------------

    def emit(self, obj):
        import json

        sys.stderr.write("\x1e" + json.dumps(obj) + "\n")

    def write(self, b):
        if b:
            self.out.write(b)

    # ---- boot ---------------------------------------------------------------------------

    def boot(self, how):
        if how == "raw":
            self.write(b"raw REPL; CTRL-B to exit\r\n>")
            self.mode = "raw"
            return
        path = (self.rom + "/main.py") if self.rom else "/main.py"
        try:
            with open(path) as f:
                src = f.read()
        except OSError:
            self.enter_repl()  # a blank board: the REPL takes the console
            return
        try:
            exec(compile(src, "main.py", "exec"), {"__name__": "__main__"})
            link = sys.modules.get("glintfw.link")
            if link is None or link._hosted is None:
                raise RuntimeError("main.py did not start the hosted link")
            self.link = link
            self._watch_camera(link._hosted.app)
            self.mode = "protocol"
        except _Reset:
            raise
        except Exception as e:  # like a board whose main.py failed: traceback, then the REPL
            self._traceback(e)
            self.enter_repl()

    def _watch_camera(self, app):
        """Tell the supervisor after each capture, so the host can put the next placement under the lens."""
        cam = app.camera
        if cam is None:
            return
        grab = cam.capture
        dev = self

        def capture(buf):
            r = grab(buf)
            dev.emit({"event": "capture"})
            return r

        cam.capture = capture

    def _traceback(self, e):
        import io

        s = io.StringIO()
        sys.print_exception(e, s)
        self.write(s.getvalue().replace("\n", "\r\n").encode())

    def enter_repl(self):
        self.mode = "friendly"
        self.line = bytearray()
        self.cont = False
        self.write((BANNER % sys.implementation.version[:3]).encode() + b">>> ")

    # ---- main loop ---------------------------------------------------------------------

    def run(self):
        import time

        next_tick = time.ticks_add(time.ticks_ms(), TICK_MS)
        while True:
            wait = time.ticks_diff(next_tick, time.ticks_ms())
            if wait <= 0 or not self.poll.poll(wait):
                if self.mode == "protocol":
                    self.link.host_tick()
                next_tick = time.ticks_add(time.ticks_ms(), TICK_MS)
                continue
            h = self.inp.read(3)
            if len(h) < 3:
                return  # the supervisor is gone
            n = (h[1] << 8) | h[2]
            data = self.inp.read(n) if n else b""
            if h[0] == 0x43:  # "C"
                self.control(data)
            else:
                self.console(data)

    def control(self, data):
        import json

        req = json.loads(data)
        cmd = req.get("cmd")
        if cmd == "ping":
            self.emit({"ok": True, "mode": self.mode})
        elif cmd == "status":
            st = self.link.host_status() if self.mode == "protocol" else {}
            st.update({"ok": True, "mode": self.mode})
            self.emit(st)
        elif cmd == "button":
            if self.mode != "protocol":
                self.emit({"ok": False, "error": "not in protocol mode"})
            else:
                self.write(self.link.host_button())
                self.emit({"ok": True})
        else:
            self.emit({"ok": False, "error": "unknown command %s" % cmd})

    def console(self, data):
        while data:
            if self.mode == "protocol":
                out, action, used = self.link.host_feed(data)
                self.write(out)
                data = data[used:]
                if action == 1:
                    self.enter_repl()
                elif action == 2:
                    raise _Reset(EXIT_SOFT)
            else:
                for i in range(len(data)):
                    self.repl_byte(data[i])
                data = b""

    # ---- the REPL ------------------------------------------------------------------------

    def execute(self, src, mode, raw):
        """Compile and run ``src``; raw REPL framing (output \\x04 error \\x04) when ``raw``."""
        err = None
        try:
            exec(compile(src, "<stdin>", mode), self.g)
        except _Reset:
            raise
        except BaseException as e:  # noqa: B036 - the REPL reports every exception
            err = e
        if raw:
            self.write(b"\x04")
            if err is not None:
                self._traceback(err)
            self.write(b"\x04")
        elif err is not None:
            self._traceback(err)

    def repl_byte(self, c):
        m = self.mode
        if m == "raw":
            self.raw_byte(c)
        elif m == "rawpaste":
            if c == 0x04:
                self.write(b"\x04")
                code = bytes(self.paste)
                self.paste = None
                self.mode = "raw"
                self.execute(code, "exec", True)
                self.write(b">")
            else:
                self.paste.append(c)
                if len(self.paste) % PASTE_WINDOW == 0:
                    self.write(b"\x01")
        elif m == "paste":
            if c == 0x03:
                self.paste = None
                self.mode = "friendly"
                self.write(b"\r\n>>> ")
            elif c == 0x04:
                code = bytes(self.paste)
                self.paste = None
                self.mode = "friendly"
                self.write(b"\r\n")
                self.execute(code, "exec", False)
                self.write(b">>> ")
            else:
                self.paste.append(c)
                self.write(b"\r\n=== " if c == 0x0D else bytes([c]))
        else:
            self.friendly_byte(c)

    def raw_byte(self, c):
        if c == 0x01:
            if self.line == b"\x05A":
                self.line = bytearray()
                self.mode = "rawpaste"
                self.paste = bytearray()
                self.write(b"R\x01" + bytes([PASTE_WINDOW & 0xFF, PASTE_WINDOW >> 8]))
            else:
                self.line = bytearray()
                self.write(b"\r\nraw REPL; CTRL-B to exit\r\n>")
        elif c == 0x02:
            self.write(b"\r\n")
            self.enter_repl()
        elif c == 0x03:
            self.line = bytearray()
        elif c == 0x04:
            self.write(b"OK")
            if not self.line:
                self.write(b"\r\nMPY: soft reboot\r\n")
                raise _Reset(EXIT_SOFT_RAW)
            code = bytes(self.line)
            self.line = bytearray()
            self.execute(code, "exec", True)
            self.write(b">")
        else:
            self.line.append(c)

    def friendly_byte(self, c):
        if c == 0x01:
            self.mode = "raw"
            self.line = bytearray()
            self.write(b"\r\nraw REPL; CTRL-B to exit\r\n>")
        elif c == 0x02:
            self.write(b"\r\n")
            self.enter_repl()
        elif c == 0x03:
            self.line = bytearray()
            self.cont = False
            self.write(b"\r\n>>> ")
        elif c == 0x04:
            if not self.line and not self.cont:
                self.write(b"\r\nMPY: soft reboot\r\n")
                raise _Reset(EXIT_SOFT)
        elif c == 0x05:
            self.mode = "paste"
            self.paste = bytearray()
            self.write(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        elif c == 0x0D:
            self.write(b"\r\n")
            text = bytes(self.line)
            last = text.split(b"\n")[-1]
            if (self.cont and last.strip()) or text.rstrip().endswith(b":"):
                self.cont = True
                self.line.extend(b"\n")
                self.write(b"... ")
                return
            self.line = bytearray()
            self.cont = False
            if text.strip():
                self.execute(text, "single", False)
            self.write(b">>> ")
        elif c in (0x08, 0x7F):
            if self.line and self.line[-1] != 0x0A:
                self.line = self.line[:-1]
                self.write(b"\x08 \x08")
        elif c >= 0x20 or c == 0x09:
            self.line.append(c)
            self.write(bytes([c]))


class _Machine:
    """The port's machine module, with reset() and soft_reset() that reboot the virtual board."""

    def __init__(self, real):
        self._real = real

    def reset(self):
        raise _Reset(EXIT_HARD)

    def soft_reset(self):
        raise _Reset(EXIT_SOFT)

    def freq(self, *a):
        return 240000000

    def __getattr__(self, name):
        return getattr(self._real, name)


class _SimHost:
    """What the host provides the sim board: entropy (the OS CSPRNG)."""

    def __init__(self, urandom):
        self.entropy = urandom


def main():
    import os

    import _unix_vfs  # glint/mpy/_unix_vfs.py: the supervisor puts its folder first on MICROPYPATH

    flash, sim, rom, how = sys.argv[1:5]
    mounts = [(sim, "/sim")]
    if rom != "-":
        mounts.append((rom, "/rom"))
    try:
        import machine as real_machine
    except ImportError:
        real_machine = None
    _unix_vfs.mount(flash, mounts)
    if rom != "-":
        sys.path[:] = ["", "/rom", "/rom/lib", "/lib"]
    sys.modules["machine"] = _Machine(real_machine)
    sys.modules["simhost"] = _SimHost(os.urandom)
    dev = Device("/rom" if rom != "-" else "")
    try:
        dev.boot(how)
        dev.emit({"event": "ready", "mode": dev.mode})
        dev.run()
    except _Reset as r:
        sys.exit(r.code)


if sys.implementation.name == "micropython":
    main()
