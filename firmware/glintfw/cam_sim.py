"""Simulated camera: frames come from PGM files the host (virtual scanner) writes into the device filesystem.

Single-image mode reads ``path`` (default /sim/lens.pgm) on every capture, so
the host can change what the lens sees between scans. Playback mode (``frames``
directory present and non-empty) plays /sim/frames/*.pgm in name order, then
wraps around. Exposure and gain are stored as given (clamped to 0..gain_db_max dB)
and read back; ``stale_frames`` frames are dropped after init and every change,
exactly as on a real sensor (glintfw.cam_common).
"""

import os

from glintfw import pgm
from glintfw.cam_common import Camera


class SimCamera(Camera):
    def __init__(self, width, height, path="/sim/lens.pgm", frames_dir="/sim/frames", exposure_us=10000, gain=0,
                 stale_frames=0, gain_db_max=36):
        Camera.__init__(self, {"width": width, "height": height, "model": "glint.sim", "stale_frames": stale_frames,
                               "gain_db_max": gain_db_max})
        self.path = path
        self.frames_dir = frames_dir
        self._exposure_us = int(exposure_us)
        self._gain = self.clamp_gain(gain)
        self.frame_index = 0

    def _frames(self):
        try:
            names = [n for n in os.listdir(self.frames_dir) if n.endswith(".pgm")]
        except OSError:
            return None
        names.sort()
        return names or None

    def _grab(self, buf):
        """Fill ``buf`` (width*height bytes) with the current simulated frame."""
        names = self._frames()
        if names:
            name = names[self.frame_index % len(names)]
            self.frame_index += 1
            pgm.read_into(self.frames_dir + "/" + name, buf, self.width, self.height)
        else:
            pgm.read_into(self.path, buf, self.width, self.height)
        return buf

    def set_exposure(self, us):
        self._exposure_us = int(us)
        self.invalidate()

    def set_gain(self, g):
        self._gain = self.clamp_gain(g)
        self.invalidate()

    def exposure_us(self):
        return self._exposure_us

    def gain_db(self):
        return self._gain
