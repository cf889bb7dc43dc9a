"""OpenMV family board support (OpenMV Cam H7 Plus, OpenMV Cam RT1062, Arduino Nicla Vision): OpenMVBoard.

Everything comes from board.json (docs/boards.md):
  camera      glintfw.cam_openmv.OpenMVCamera(camera) (the ``csi`` module, falling back to ``sensor``)
  LEDs        indicators.leds [{led, name, role}]: machine.LED(name) (OpenMV firmware), falling
              back to pyb.LED(led); "illumination" LEDs go to make_illumination()
  buzzer      none (None); button: none (None)
  link        "usb-console" (USB VCP) -> None; {type: "uart", id, baud} -> machine.UART
  entropy     os.urandom (the MCU's hardware RNG)

Hardware modules are imported inside the methods, so this module imports on any port and
on CPython; only a make_* call needs the hardware.
"""

from glintfw.board_common import Board

DEFAULT_BAUD = 115200  # link.baud when board.json gives none


class Led:
    """One on-board LED with value(v): machine.LED(spec["name"]), else pyb.LED(spec["led"]); starts off."""

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


class OpenMVBoard(Board):
    """The board interface for a board running the OpenMV firmware (MicroPython with csi/sensor)."""

    def make_camera(self):
        from glintfw.cam_openmv import OpenMVCamera

        return OpenMVCamera(self.load_config()["camera"])

    def make_led(self, spec):
        return Led(spec)

    def make_link(self):
        """None: the host talks over the USB console (VCP); else a machine.UART from board.json's link."""
        link = self.load_config()["link"]
        if link["type"] != "uart":
            return None
        from machine import UART

        return UART(link["id"], baudrate=link.get("baud", DEFAULT_BAUD))

    def entropy(self, n):
        """n bytes from the MCU's hardware RNG (os.urandom)."""
        import os

        return os.urandom(n)
