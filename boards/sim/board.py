"""Board support: the simulated scanner (boards/sim), for the virtual scanner and MicroPython WebAssembly.

The camera reads PGM frames the host writes into the device filesystem
(board.json camera.path, default /sim/lens.pgm; or a folder of frames,
camera.frames_dir, played in name order). entropy(n) comes from the host: the
virtual-scanner bridge registers a module ``simhost`` with ``entropy(n)``;
without it, bytes are read in order from board.json's entropy_path
(/sim/entropy.bin). Interface: docs/boards.md; board.json is read by
glintfw.board_common, like every board's.
"""

from glintfw.board_common import Board

load_config = Board(globals().get("__file__")).load_config  # board.json next to this file, parsed once


class _VirtualLed:
    """An indicator the host can read back (no pin): value() is the last value set."""

    def __init__(self, role):
        self.role = role
        self._v = 0

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0


def make_camera():
    from glintfw.cam_sim import SimCamera

    c = load_config()["camera"]
    return SimCamera(
        c["width"], c["height"], c.get("path", "/sim/lens.pgm"), c.get("frames_dir", "/sim/frames"),
        c.get("exposure_us", 0), c.get("gain", 0), c.get("stale_frames", 0), c.get("gain_db_max", 36),
    )


def make_leds():
    return [_VirtualLed(d.get("role", "status")) for d in load_config()["indicators"]["leds"]]


def make_buzzer():
    return None


def make_button():
    return None


def make_link():
    return None  # the host talks over the (virtual) USB console


_entropy_offset = 0


def entropy(n):
    """n bytes from the host: simhost.entropy(n) if the bridge registered it, else the next bytes of entropy_path."""
    global _entropy_offset
    try:
        import simhost
    except ImportError:
        simhost = None
    if simhost is not None:
        return simhost.entropy(n)
    with open(load_config().get("entropy_path", "/sim/entropy.bin"), "rb") as f:
        f.seek(_entropy_offset)
        b = f.read(n)
    if len(b) != n:
        raise OSError("simulated entropy source exhausted")
    _entropy_offset += n
    return b
