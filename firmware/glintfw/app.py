"""The scanner application: a sans-IO protocol core (one request payload in, one response out).

``App(board).handle(payload) -> response payload`` never raises: every failure
becomes a status code (glintcore.proto ST_*) with a one-line ``error`` text.
The link loops (glintfw.link) own the bytes; this module owns the commands,
the persistent state (key, counter, spool, config under <storage_root>/glint/)
and the camera/detector buffers, which are allocated once at start-up.
The message table is in docs/protocol.md.
"""

import sys
import time

from micropython import const

from glintcore import cose, descriptor, messages, p256, proto
from glintcore.errors import GlintError
from glintcore.proto import (
    GD_OK, MSG_CAPTURE, MSG_CONFIG_GET, MSG_CONFIG_SET, MSG_INDICATE, MSG_INFO, MSG_KEYGEN, MSG_REPL,
    MSG_RESET, MSG_SCAN, MSG_SELFTEST, MSG_SIGNTEST, MSG_SPOOL_ACK, MSG_SPOOL_GET, MSG_SPOOL_LIST,
    MSG_UNLOCK, ST_BAD_ARG, ST_INTERNAL, ST_KEY_EXISTS, ST_LOCKED, ST_MALFORMED, ST_NO_KEY, ST_NOT_FOUND,
    ST_OK, ST_POOR_CAPTURE, ST_SPOOL_FULL, ST_STORAGE, ST_UNKNOWN,
)
from glintfw import indicate, store, usbdrive
from glintfw.config import Config, ConfigError
from glintfw.counter import Counter, CounterError
from glintfw.keystore import KeyExists, KeyStore
from glintfw.lock import Lock
from glintfw.spool import Spool, SpoolFull

FW_VERSION = "0.4.0"
CAPS = ["scan", "selftest", "config", "keygen", "spool", "repl", "reset", "capture", "indicate", "signtest",
        "unlock"]

ACT_NONE = const(0)
ACT_REPL = const(1)  # response sent: hand the console over to the MicroPython REPL
ACT_RESET = const(2)  # response sent: soft reset

CAPTURE_CHUNK = const(1024)  # bytes of raw frame per MSG_CAPTURE response
SPOOL_LIST_MAX = const(256)  # counters per MSG_SPOOL_LIST response
SIGNTEST_PREFIX = b"glint/signtest/v1:"  # domain separation: a test signature is never a scan


class _Fail(Exception):
    def __init__(self, status, msg, body=None):
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.body = body


def _ticks_us():
    f = getattr(time, "ticks_us", None)
    return f() if f is not None else int(time.monotonic() * 1000000)


def _elapsed_us(t0):
    f = getattr(time, "ticks_diff", None)
    now = _ticks_us()
    return f(now, t0) if f is not None else now - t0


def _arg(body, key, typ, required=True, default=None):
    v = body.get(key, default)
    if v is None:
        if required:
            raise _Fail(ST_BAD_ARG, "missing field %r" % key)
        return default
    if typ is bytes and type(v) is bytearray:
        v = bytes(v)
    if type(v) is not typ:
        raise _Fail(ST_BAD_ARG, "field %r has the wrong type" % key)
    return v


def _button_held(board):
    """The board's button pressed while the firmware starts: physical presence unlocks this boot."""
    make = getattr(board, "make_button", None)
    if make is None:
        return False
    try:
        pin = make()
        if pin is None:
            return False
        first = pin.value()
        time.sleep_ms(20) if hasattr(time, "sleep_ms") else time.sleep(0.02)
        return bool(first) and bool(pin.value())  # held across the debounce time, not a bounce
    except Exception:  # no usable button on this board
        return False


class App:
    """One scanner: state on flash, camera and detector in RAM, commands dispatched by message type."""

    def __init__(self, board):
        self.board = board
        cfg = board.load_config()
        self.board_cfg = cfg
        self.board_id = cfg["id"]
        cam = cfg.get("camera", {})
        self.dir = store.join(cfg.get("storage_root", "/"), "glint")
        store.makedirs(self.dir)
        self.config = Config(store.join(self.dir, "config"), {
            "exposure_us": cam.get("exposure_us", 8000), "gain": cam.get("gain", 0)})
        self.keys = KeyStore(self.dir, board.entropy, cfg.get("keystore", "file"))
        self.device_id = self.keys.device_id()
        self.lock = Lock(self.dir, self.keys, board.entropy, _button_held(board))
        self.spool = Spool(store.join(self.dir, "spool"), self.config.get("spool_capacity"))
        self.counter = Counter(store.join(self.dir, "counter"), floor=self.spool.max_counter() + 1)
        self.ind = indicate.Indicators(board.make_leds(), board.make_buzzer(), self.config.get("indicators"))
        # Optional board hook: a light that must be on while the sensor integrates.
        make_light = getattr(board, "make_illumination", None)
        self.light = make_light() if make_light is not None else None
        self.action = ACT_NONE
        self.camera = None
        self.camera_error = None
        self.width = cam.get("width", 0)
        self.height = cam.get("height", 0)
        self.frame = None
        self.detector = None
        self._open_camera()
        self._handlers = {
            MSG_INFO: self.cmd_info, MSG_SCAN: self.cmd_scan, MSG_SELFTEST: self.cmd_selftest,
            MSG_CONFIG_GET: self.cmd_config_get, MSG_CONFIG_SET: self.cmd_config_set,
            MSG_KEYGEN: self.cmd_keygen, MSG_SPOOL_LIST: self.cmd_spool_list,
            MSG_SPOOL_GET: self.cmd_spool_get, MSG_SPOOL_ACK: self.cmd_spool_ack,
            MSG_REPL: self.cmd_repl, MSG_RESET: self.cmd_reset, MSG_CAPTURE: self.cmd_capture,
            MSG_INDICATE: self.cmd_indicate, MSG_SIGNTEST: self.cmd_signtest, MSG_UNLOCK: self.cmd_unlock,
        }
        self.ind.show(indicate.READY)

    # ---- set-up -----------------------------------------------------------------

    def _open_camera(self):
        try:
            cam = self.board.make_camera()
            cam.set_exposure(self.config.get("exposure_us"))
            cam.set_gain(self.config.get("gain"))
            self.camera = cam
            self.width = cam.width
            self.height = cam.height
            # A camera whose capture() returns its own frame memory (OpenMV: img.bytearray()) needs
            # no frame buffer of glint's; the others fill this one.
            self._buf = None if getattr(cam, "owns_frame", False) else bytearray(cam.width * cam.height)
            self.frame = self._buf if self._buf is not None else b""
            self._make_detector()
        except Exception as e:  # a missing camera must not stop the link: selftest reports it
            self.camera = None
            self.camera_error = "%s: %s" % (type(e).__name__, e)

    def _make_detector(self):
        from glintfw.detect import Detector

        self.detector = None  # free the old buffers first
        self.detector = Detector(self.width, self.height, self.config.get("max_spots"))

    # ---- dispatch ---------------------------------------------------------------------

    def handle(self, payload):
        """One request payload -> one response payload (bytes). Sets ``action`` for the link."""
        self.action = ACT_NONE
        try:
            msg = messages.decode_message(payload)
        except Exception as e:
            return messages.encode_response(0, 0, ST_MALFORMED, {"error": str(e)})
        if msg.kind != messages.KIND_REQUEST:
            return messages.encode_response(msg.type, msg.seq, ST_MALFORMED, {"error": "not a request"})
        h = self._handlers.get(msg.type)
        if h is None:
            return messages.encode_response(msg.type, msg.seq, ST_UNKNOWN,
                                            {"error": "unknown message type 0x%02x" % msg.type})
        try:
            body = h(msg.body)
            status = ST_OK
        except _Fail as e:
            status = e.status
            body = e.body if e.body is not None else {}
            body["error"] = e.msg
        except ConfigError as e:
            status, body = ST_BAD_ARG, {"error": str(e)}
        except KeyExists as e:
            status, body = ST_KEY_EXISTS, {"error": str(e)}
        except SpoolFull as e:
            status, body = ST_SPOOL_FULL, {"error": str(e)}
        except CounterError as e:
            status, body = ST_STORAGE, {"error": str(e)}
        except OSError as e:
            status, body = ST_STORAGE, {"error": "storage: %s" % (e,)}
        except GlintError as e:
            status, body = ST_BAD_ARG, {"error": e.oneline()}
        except Exception as e:
            status, body = ST_INTERNAL, {"error": "%s: %s" % (type(e).__name__, e)}
        if status != ST_OK and status != ST_POOR_CAPTURE:
            self.ind.show(indicate.ERROR)
            self.action = ACT_NONE
        return messages.encode_response(msg.type, msg.seq, status, body)

    def frame_error(self, err):
        """The response to a frame that could not be decoded (bad CRC, oversize, bad COBS)."""
        return messages.encode_response(0, 0, getattr(err, "status", ST_MALFORMED), {"error": str(err)})

    # ---- scanning ---------------------------------------------------------------------

    def _need_camera(self):
        if self.camera is None:
            raise _Fail(ST_INTERNAL, "camera unavailable: %s" % (self.camera_error,))

    def _capture(self):
        light = self.light
        cam = self.camera
        if light is not None:
            light.value(1)
            invalidate = getattr(cam, "invalidate", None)
            if invalidate is not None:
                invalidate()  # frames exposed before the light came on are stale
        try:
            self.frame = cam.capture(self._buf)
        finally:
            if light is not None:
                light.value(0)

    def camera_settings(self):
        """Exposure (us) and gain (dB) as the camera read them back, and its modes (glintfw.cam_common)."""
        settings = getattr(self.camera, "settings", None)
        return settings() if settings is not None else {}

    def capture_detect(self):
        """Take one frame and find its spots -> (spots, quality, guidance, capture_us, detect_us)."""
        self._need_camera()
        self.ind.show(indicate.CAPTURING)
        t0 = _ticks_us()
        self._capture()
        t1 = _elapsed_us(t0)
        t0 = _ticks_us()
        spots, quality, guidance = self.detector.detect(self.frame)
        return spots, quality, guidance, t1, _elapsed_us(t0)

    def sign_scan(self, spots, quality, guidance, nonce=None):
        """Use the next counter value and return (counter, COSE_Sign1 bytes)."""
        d = self.keys.private_key()
        if d is None:
            raise _Fail(ST_NO_KEY, "device has no key: run keygen")
        counter = self.counter.next()
        desc = descriptor.make(self.device_id, counter, FW_VERSION, self.board_id, self.width, self.height,
                               dict(quality), spots, guidance, nonce)
        return counter, cose.sign1(descriptor.encode(desc), d, kid=self.device_id)

    def cmd_scan(self, body):
        nonce = _arg(body, "nonce", bytes)
        if not descriptor.NONCE_MIN <= len(nonce) <= descriptor.NONCE_MAX:
            raise _Fail(ST_BAD_ARG, "nonce must be %d..%d bytes" % (descriptor.NONCE_MIN, descriptor.NONCE_MAX))
        if not self.keys.has_key():
            raise _Fail(ST_NO_KEY, "device has no key: run keygen")
        spots, quality, guidance, t_cap, t_det = self.capture_detect()
        accept = _arg(body, "accept_poor", bool, False, False) or self.config.get("accept_poor")
        if guidance != GD_OK and not accept:
            self.ind.show(indicate.RETRY)
            raise _Fail(ST_POOR_CAPTURE, proto.GUIDANCE_TEXT.get(guidance, "poor capture"),
                        {"guidance": guidance, "quality": dict(quality)})
        t0 = _ticks_us()
        counter, scan = self.sign_scan(spots, quality, guidance, nonce)
        t_sign = _elapsed_us(t0)
        self.ind.show(indicate.GOOD if guidance == GD_OK else indicate.RETRY)
        return {"scan": scan, "counter": counter, "guidance": guidance, "quality": dict(quality),
                "t_us": [t_cap, t_det, t_sign]}

    def standalone_scan(self):
        """A button-triggered scan without a host: signed without a nonce and put in the spool.

        Returns an event payload for the link (EVT_SCAN_SPOOLED, or EVT_LOG on failure).
        """
        try:
            if self.spool.full:
                self.ind.show(indicate.ERROR)
                return messages.encode_event(proto.EVT_LOG, {"level": "error", "msg": "spool full"})
            spots, quality, guidance, _, _ = self.capture_detect()
            if guidance != GD_OK and not self.config.get("accept_poor"):
                self.ind.show(indicate.RETRY)
                return messages.encode_event(proto.EVT_LOG, {"level": "warn", "guidance": guidance,
                                                             "msg": proto.GUIDANCE_TEXT.get(guidance, "")})
            counter, scan = self.sign_scan(spots, quality, guidance)
            self.spool.put(counter, scan)
            self.ind.show(indicate.GOOD)
            return messages.encode_event(proto.EVT_SCAN_SPOOLED, {"counter": counter, "free": self.spool.free})
        except Exception as e:
            self.ind.show(indicate.ERROR)
            return messages.encode_event(proto.EVT_LOG, {"level": "error", "msg": "%s: %s" % (type(e).__name__, e)})

    # ---- other commands -----------------------------------------------------------------

    def cmd_info(self, body):
        return {
            "device_id": self.device_id, "board": self.board_id, "fw": FW_VERSION,
            "proto": proto.PROTOCOL_VERSION, "caps": CAPS, "pubkey": self.keys.public_key(),
            "counter": self.counter.peek, "spool": len(self.spool), "spool_free": self.spool.free,
            "geom": [self.width, self.height], "name": self.config.get("name"),
            "impl": sys.implementation.name, "platform": sys.platform,
            "locked": self.lock.locked, "maintainer": self.lock.maintainer() is not None,
        }

    def cmd_keygen(self, body):
        force = _arg(body, "force", bool, False, False)
        extra = _arg(body, "entropy", bytes, False, None)
        maint = _arg(body, "maintainer", bytes, False, None)
        if force and self.lock.locked:
            raise _Fail(ST_LOCKED, "scanner is locked: re-keying needs an unlock by the maintainer key "
                                   "or the button held at boot")
        if maint is not None:
            if self.lock.locked:
                raise _Fail(ST_LOCKED, "scanner is locked: its maintainer key is set only while unlocked")
            try:
                p256.decode_point(maint)
            except GlintError as e:
                raise _Fail(ST_BAD_ARG, "maintainer key: %s" % (e,))
        floor = _arg(body, "counter_floor", int, False, 0)
        pub = self.keys.generate(force, extra)
        if maint is not None:
            self.lock.set_maintainer(maint)
        if self.counter.damaged:  # re-provisioned after both counter records were lost: resume past the host's
            self.counter.reset_after_damage(max(floor, self.spool.max_counter() + 1))
        return {"pubkey": pub, "device_id": self.device_id, "locked": self.lock.locked}

    def cmd_unlock(self, body):
        sig = _arg(body, "signature", bytes, False, None)
        if sig is None:
            if not self.lock.locked:
                return {"locked": False}
            if self.lock.maintainer() is None:
                raise _Fail(ST_LOCKED, "scanner is locked and has no maintainer key: hold the button at boot")
            return {"locked": True, "challenge": self.lock.challenge(), "device_id": self.device_id}
        if not self.lock.unlock(sig):
            raise _Fail(ST_LOCKED, "unlock signature does not verify with the maintainer key")
        return {"locked": False}

    def repl_allowed(self):
        """The console may go to the REPL (MSG_REPL or the link's interrupt) only when unlocked."""
        return not self.lock.locked

    def cmd_config_get(self, body):
        key = _arg(body, "key", str, False, None)
        if key is not None:
            return {"key": key, "value": self.config.get(key)}
        return {"config": self.config.as_dict()}

    def cmd_config_set(self, body):
        key = _arg(body, "key", str)
        if "value" not in body:
            raise _Fail(ST_BAD_ARG, "missing field 'value'")
        self.config.set(key, body["value"])
        self._apply(key)
        out = {"config": self.config.as_dict()}
        if key in ("exposure_us", "gain") and self.camera is not None:
            out["camera"] = self.camera_settings()  # what the sensor took (clamped, read back)
        return out

    def _apply(self, key):
        v = self.config.get(key)
        if key == "exposure_us" and self.camera is not None:
            self.camera.set_exposure(v)
        elif key == "gain" and self.camera is not None:
            self.camera.set_gain(v)
        elif key == "max_spots" and self.camera is not None:
            self._make_detector()
        elif key == "spool_capacity":
            self.spool.capacity = v
        elif key == "indicators":
            self.ind.enabled = v
            self.ind.show(self.ind.pattern)

    def cmd_spool_list(self, body):
        entries = self.spool.entries()
        return {"entries": entries[:SPOOL_LIST_MAX], "more": len(entries) > SPOOL_LIST_MAX,
                "count": len(entries), "free": self.spool.free, "capacity": self.spool.capacity,
                "full": self.spool.full}

    def cmd_spool_get(self, body):
        counter = _arg(body, "counter", int)
        scan = self.spool.get(counter)
        if scan is None:
            raise _Fail(ST_NOT_FOUND, "no spooled scan %d" % counter)
        return {"counter": counter, "scan": scan}

    def cmd_spool_ack(self, body):
        counter = _arg(body, "counter", int)
        if not self.spool.ack(counter):
            raise _Fail(ST_NOT_FOUND, "no spooled scan %d" % counter)
        return {"counter": counter, "free": self.spool.free}

    def cmd_selftest(self, body):
        res = {}
        res["camera"] = {"ok": self.camera is not None, "detail": self.camera_error or "%dx%d" % (self.width, self.height)}
        if self.camera is not None:
            res["camera"].update(self.camera_settings())
        if self.camera is not None:
            try:
                spots, quality, guidance, t_cap, t_det = self.capture_detect()
                f = self.frame
                lo = min(f)
                hi = max(f)
                res["frame"] = {"ok": hi > lo, "min": lo, "max": hi, "quality": dict(quality),
                                "guidance": guidance, "t_us": [t_cap, t_det]}
            except Exception as e:
                res["frame"] = {"ok": False, "detail": "%s: %s" % (type(e).__name__, e)}
        else:
            res["frame"] = {"ok": False, "detail": "no camera"}
        d = self.keys.private_key()
        if d is None:
            res["key"] = {"ok": False, "detail": "no key: run keygen"}
        else:
            h = b"\x5a" * 32
            ok = p256.verify_digest(self.keys.public_key(), h, p256.sign_digest(d, h))
            res["key"] = {"ok": ok, "detail": "sign+verify"}
        probe = store.join(self.dir, "selftest")
        try:
            store.write_record(probe, b"glint")
            ok = store.read_record(probe) == b"glint"
            store.delete_record(probe)
            res["storage"] = {"ok": ok, "free": store.free_bytes(self.dir), "spool": len(self.spool),
                              "usb_drive": usbdrive.state or usbdrive.NONE}
        except OSError as e:
            res["storage"] = {"ok": False, "detail": str(e)}
        res["ok"] = res["camera"]["ok"] and res["frame"]["ok"] and res["key"]["ok"] and res["storage"]["ok"]
        self.ind.show(indicate.READY if res["ok"] else indicate.ERROR)
        return res

    def cmd_capture(self, body):
        self._need_camera()
        offset = _arg(body, "offset", int, False, 0)
        length = _arg(body, "length", int, False, CAPTURE_CHUNK)
        n = len(self.frame)
        if offset < 0 or offset >= n or length <= 0:
            raise _Fail(ST_BAD_ARG, "offset/length out of range (frame is %d bytes)" % n)
        if offset == 0:
            self._capture()
        length = min(length, CAPTURE_CHUNK, n - offset)
        return {"width": self.width, "height": self.height, "offset": offset,
                "data": bytes(self.frame[offset:offset + length])}

    def cmd_indicate(self, body):
        name = _arg(body, "pattern", str)
        if name not in indicate.PATTERNS:
            raise _Fail(ST_BAD_ARG, "unknown pattern %r" % name)
        self.ind.show(name)
        return {}

    def cmd_signtest(self, body):
        m = _arg(body, "message", bytes)
        d = self.keys.private_key()
        if d is None:
            raise _Fail(ST_NO_KEY, "device has no key: run keygen")
        return {"signature": p256.sign(d, SIGNTEST_PREFIX + m), "prefix": SIGNTEST_PREFIX}

    def cmd_repl(self, body):
        if not self.repl_allowed():
            raise _Fail(ST_LOCKED, "scanner is locked: the REPL needs an unlock by the maintainer key "
                                   "or the button held at boot")
        self.action = ACT_REPL
        return {}

    def cmd_reset(self, body):
        self.action = ACT_RESET
        return {}
