"""ESP32 family board support (ESP32-CAM, ESP32-S3-EYE, XIAO ESP32S3 Sense): Esp32Board.

Everything comes from board.json (docs/boards.md):
  camera      glintfw.cam_esp32.Esp32Camera(camera) (the esp32-camera driver, camera.pins)
  LEDs        indicators.leds [{pin, active_low, role}]: machine.Pin outputs; "illumination"
              LEDs go to make_illumination(), the others to make_leds()
  buzzer      indicators.buzzer {pin, active_low} or null
  button      button {pin, active_low (default true: pull-up, pressed pulls low)} or null
  link        link {type: "uart", id, tx, rx, baud} -> machine.UART; "usb-console" -> None
  entropy     os.urandom (the ESP32 hardware RNG) with the Wi-Fi RF subsystem on during the read

``machine`` and the camera driver are imported inside the methods, so this module imports
on any port and on CPython; only a make_* call needs the hardware.
"""

from glintfw.board_common import Board

DEFAULT_BAUD = 115200  # link.baud when board.json gives none


class Out:
    """A digital output whose value(1) means 'on' even when the pin is active-low; starts off."""

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


class In:
    """A digital input read as 1 when active (pressed), with the pull-up on for an active-low button."""

    def __init__(self, pin, active_low=True):
        from machine import Pin

        self._pin = Pin(pin, Pin.IN, Pin.PULL_UP if active_low else None)
        self._inv = 1 if active_low else 0

    def value(self):
        return self._pin.value() ^ self._inv


class Esp32Board(Board):
    """The board interface for an ESP32 / ESP32-S3 board running MicroPython with a camera driver."""

    def make_camera(self):
        from glintfw.cam_esp32 import Esp32Camera

        return Esp32Camera(self.load_config()["camera"])

    def make_led(self, spec):
        return Out(spec["pin"], spec.get("active_low", False))

    def make_buzzer(self):
        b = self.load_config()["indicators"].get("buzzer")
        return Out(b["pin"], b.get("active_low", False)) if b else None

    def make_button(self):
        b = self.load_config().get("button")
        return In(b["pin"], b.get("active_low", True)) if b else None

    def make_link(self):
        """None: the host talks over the USB console; else a machine.UART from board.json's link."""
        link = self.load_config()["link"]
        if link["type"] != "uart":
            return None
        from machine import UART

        return UART(link["id"], baudrate=link.get("baud", DEFAULT_BAUD), tx=link["tx"], rx=link["rx"])

    def entropy(self, n):
        """n bytes from the ESP32 hardware RNG (os.urandom, esp_fill_random) with its RF noise source on.

        The RNG gives true random numbers only while the RF subsystem (Wi-Fi or Bluetooth) runs;
        otherwise its output "should be considered pseudo-random only" (ESP-IDF, Random Number
        Generation). So the Wi-Fi station is switched on, never connected, around the read and
        back off if it was off. Keygen also mixes in host entropy (docs/security.md).
        """
        import os

        rf = _rf_on()
        try:
            return os.urandom(n)
        finally:
            _rf_restore(rf)


def _rf_on():
    """Switch the Wi-Fi station on (RF noise into the RNG) -> (wlan, was_active), or None without network."""
    try:
        import network

        wlan = network.WLAN(network.STA_IF)
        was = wlan.active()
        if not was:
            wlan.active(True)
        return wlan, was
    except (ImportError, OSError, AttributeError):
        return None


def _rf_restore(rf):
    if rf is not None and not rf[1]:
        try:
            rf[0].active(False)
        except OSError:
            pass
