"""Board support: AI-Thinker ESP32-CAM (boards/esp32_cam).

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


class _Out:
    """A digital output whose value(1) means 'on' even when the pin is active-low."""

    def __init__(self, pin, active_low=False):
        from machine import Pin

        self._pin = Pin(pin, Pin.OUT)
        self._inv = 1 if active_low else 0
        self.value(0)

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._inv
        self._pin.value((1 if v else 0) ^ self._inv)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class _In:
    def __init__(self, pin, active_low=True):
        from machine import Pin

        self._pin = Pin(pin, Pin.IN, Pin.PULL_UP if active_low else None)
        self._inv = 1 if active_low else 0

    def value(self):
        return self._pin.value() ^ self._inv


def make_camera():
    from glintfw.cam_esp32 import Esp32Camera

    return Esp32Camera(load_config()["camera"])


def make_leds():
    """Status LEDs only; the flash LED (role "illumination") is make_illumination()'s."""
    return [_Out(d["pin"], d.get("active_low", False))
            for d in load_config()["indicators"]["leds"] if d.get("role", "status") != "illumination"]


def make_illumination():
    """The light the camera needs, switched on only around a capture (GPIO4 flash LED)."""
    for d in load_config()["indicators"]["leds"]:
        if d.get("role") == "illumination":
            return _Out(d["pin"], d.get("active_low", False))
    return None


def make_buzzer():
    b = load_config()["indicators"].get("buzzer")
    return _Out(b["pin"], b.get("active_low", False)) if b else None


def make_button():
    b = load_config().get("button")
    return _In(b["pin"], b.get("active_low", True)) if b else None


def make_link():
    """None: the host talks over the USB console; else a machine.UART from board.json's link."""
    link = load_config()["link"]
    if link["type"] != "uart":
        return None
    from machine import UART

    return UART(link["id"], baudrate=link.get("baud", 115200), tx=link["tx"], rx=link["rx"])


def entropy(n):
    """n bytes from the ESP32 hardware RNG (os.urandom)."""
    import os

    return os.urandom(n)
