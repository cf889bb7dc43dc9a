"""What every board.py shares: its board.json, found next to the board.py file, and LEDs sorted by role.

A board is data (boards/<id>/board.json) plus a thin board.py that binds the interface of
docs/boards.md to its port family's class (glintfw.board_esp32.Esp32Board,
glintfw.board_openmv.OpenMVBoard), both subclasses of ``Board``:

    from glintfw.board_esp32 import Esp32Board
    (load_config, make_camera, make_leds, make_illumination,
     make_buzzer, make_button, make_link, entropy) = Esp32Board(globals().get("__file__")).interface()

``Board(where)`` takes the board file's own path (``__file__``) or its directory, so the
same board.py finds /board.json on the device and boards/<id>/board.json when a test
imports it on CPython from the repository. No hardware module is imported here: this
module imports on every port (the WebAssembly one included) and on CPython.
"""

import json

from glintcore import boardspec

# The names board.py exports, in the order Board.interface() returns them.
INTERFACE = ("load_config", "make_camera", "make_leds", "make_illumination", "make_buzzer", "make_button",
             "make_link", "entropy")
ROLE_STATUS = "status"  # an LED's role when board.json gives none
ROLE_ILLUMINATION = "illumination"  # the light the sensor needs: lit only around a capture (app.py)
DEFAULT_DIR = "/"  # where board.py and board.json are deployed when __file__ is unknown


def board_dir(where):
    """The directory part of ``where`` (a file or a directory ending in "/"), with its trailing "/".

    None -> DEFAULT_DIR; a bare file name ("board.py", the current directory) -> "".
    """
    if where is None:
        return DEFAULT_DIR
    i = where.rfind("/")
    return where[: i + 1] if i >= 0 else ""


class Board:
    """A board described by its board.json. Port families subclass it and add the hardware.

    Subclasses implement make_camera(), make_led(spec) (one entry of indicators.leds ->
    an object with value(v)) and entropy(n); make_buzzer/make_button/make_link default to
    None (none fitted / the host talks over the USB console).
    """

    def __init__(self, where=None):
        if where is not None and not (where.endswith("/") or where.endswith(".py") or where.endswith(".mpy")):
            where += "/"  # a directory given without its trailing slash
        self.path = board_dir(where) + "board.json"
        self._config = None

    def load_config(self):
        """board.json next to the board file, parsed and checked once (glintcore.boardspec).

        A file where a button, LED, buzzer or illumination pin is a camera pin, or whose
        frame does not fit, raises BoardError here: before any pin is configured.
        """
        if self._config is None:
            with open(self.path) as f:
                cfg = json.load(f)
            self._config = boardspec.check(cfg)
        return self._config

    def led_specs(self, illumination=False):
        """indicators.leds entries: the illumination ones, or (default) every other one (status LEDs)."""
        return [d for d in self.load_config()["indicators"]["leds"]
                if (d.get("role", ROLE_STATUS) == ROLE_ILLUMINATION) == illumination]

    def make_leds(self):
        """The status LEDs (every LED whose role is not "illumination"), each with value(v); maybe empty."""
        return [self.make_led(d) for d in self.led_specs()]

    def make_illumination(self):
        """The first LED with role "illumination" (value(v)), lit by the firmware only while capturing; or None."""
        specs = self.led_specs(True)
        return self.make_led(specs[0]) if specs else None

    def make_led(self, spec):
        raise NotImplementedError("make_led")

    def make_camera(self):
        raise NotImplementedError("make_camera")

    def entropy(self, n):
        raise NotImplementedError("entropy")

    def make_buzzer(self):
        return None

    def make_button(self):
        return None

    def make_link(self):
        return None

    def interface(self):
        """The bound functions board.py exports as module functions, in INTERFACE order."""
        return tuple(getattr(self, name) for name in INTERFACE)
