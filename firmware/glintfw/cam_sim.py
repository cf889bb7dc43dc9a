"""Simulated camera: frames come from PGM files the host (virtual scanner) writes into the device filesystem.

Single-image mode reads ``path`` (default /sim/lens.pgm) on every capture, so
the host can change what the lens sees between scans. Playback mode (``frames``
directory present and non-empty) plays /sim/frames/*.pgm in name order, then
wraps around.
"""

import os

from glintfw import pgm


class SimCamera:
    def __init__(self, width, height, path="/sim/lens.pgm", frames_dir="/sim/frames", exposure_us=10000, gain=0):
        self.width = width
        self.height = height
        self.path = path
        self.frames_dir = frames_dir
        self.exposure_us = exposure_us
        self.gain = gain
        self.frame_index = 0

    def _frames(self):
        try:
            names = [n for n in os.listdir(self.frames_dir) if n.endswith(".pgm")]
        except OSError:
            return None
        names.sort()
        return names or None

    def capture(self, buf):
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
        self.exposure_us = int(us)

    def set_gain(self, g):
        self.gain = int(g)

    def deinit(self):
        pass
