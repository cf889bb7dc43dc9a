"""Board support: OpenMV Cam RT1062 (boards/openmv_rt1062).

The only module that creates pins, buses and the camera; everything it needs comes
from board.json. Hardware modules are imported inside the make_* functions, so this
file imports (and compiles) on any port. Interface: docs/boards.md.
"""

import json

_config = None


def _dir():
    f = globals().get("__file__", "/board.py")
    i = f.rfind("/")
    return f[: i + 1] if i >= 0 else ""


def load_config():
    """board.json next to this file (deployed as /board.json), parsed once."""
    global _config
    if _config is None:
        with open(_dir() + "board.json") as f:
            _config = json.load(f)
    return _config


class _Led:
    def __init__(self, spec):
        try:
            from machine import LED

            self._led = LED(spec["name"])
        except (ImportError, ValueError, TypeError):
            import pyb

            self._led = pyb.LED(spec["led"])
        self._on = 0
        self.value(0)

    def value(self, v=None):
        if v is None:
            return self._on
        self._on = 1 if v else 0
        if self._on:
            self._led.on()
        else:
            self._led.off()


def make_camera():
    from glintfw.cam_openmv import OpenMVCamera

    return OpenMVCamera(load_config()["camera"])


def make_leds():
    return [_Led(d) for d in load_config()["indicators"]["leds"]]


def make_buzzer():
    return None


def make_button():
    return None


def make_link():
    """None: OpenMV boards talk to the host over the USB console (VCP)."""
    link = load_config()["link"]
    if link["type"] != "uart":
        return None
    from machine import UART

    return UART(link["id"], baudrate=link.get("baud", 115200))


def entropy(n):
    """n bytes from the MCU's hardware RNG (os.urandom)."""
    import os

    return os.urandom(n)
