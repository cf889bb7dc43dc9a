"""What every camera driver shares: stale-frame discard, the documented units and the settings read back.

Units (docs/boards.md "Camera control"): exposure in microseconds, gain in dB (integers).
Each driver maps them to its sensor (cam_esp32: OV2640 AEC lines and AGC table index;
cam_openmv: the csi/sensor driver's own exposure_us and gain_db; cam_sim: stored as given),
clamps them to what the sensor takes, and reads back what was applied.

Stale frames: a sensor delivers frames exposed before a change. After init, after an
exposure or gain change and after the illumination is switched on (App calls
``invalidate()``), the next ``stale_frames`` (board.json camera.stale_frames) frames are
grabbed and dropped before the one ``capture`` returns.
"""

MANUAL = "manual"
AUTO = "auto"  # the sensor has no manual control: its own automatic one stays on
NONE = "none"


class Camera:
    """Base of the drivers: ``_grab(buf)`` (one frame -> a buffer of width*height gray bytes) is theirs."""

    def __init__(self, cfg):
        self.width = cfg["width"]
        self.height = cfg["height"]
        self.model = cfg.get("model", "")
        self.stale_frames = cfg.get("stale_frames", 0)
        self.gain_db_max = cfg.get("gain_db_max", 0)
        self.manual_exposure = cfg.get("manual_exposure", True)
        self.manual_gain = cfg.get("manual_gain", True)
        self.discarded = 0  # stale frames dropped so far
        self._pending = self.stale_frames  # the first frames after init are stale

    def invalidate(self):
        """The scene or the settings changed: the next ``stale_frames`` frames predate it."""
        self._pending = self.stale_frames

    def capture(self, buf):
        """A fresh frame: drop the stale ones first. Returns the buffer holding width*height bytes
        (``buf`` itself, or the driver's own frame memory where it avoids a copy)."""
        while self._pending > 0:
            self._grab(buf)
            self._pending -= 1
            self.discarded += 1
        return self._grab(buf)

    def _grab(self, buf):
        raise NotImplementedError("_grab")

    def clamp_gain(self, db):
        db = int(db)
        return 0 if db < 0 else self.gain_db_max if db > self.gain_db_max else db

    def exposure_us(self):
        """The exposure the sensor was given, in microseconds (None: not known / automatic)."""
        return None

    def gain_db(self):
        """The gain the sensor was given, in dB (None: not known / not adjustable)."""
        return None

    def settings(self):
        """What the self-test reports: modes, and exposure and gain as read back."""
        return {"sensor": self.model, "exposure": MANUAL if self.manual_exposure else AUTO,
                "gain": MANUAL if self.manual_gain else NONE, "exposure_us": self.exposure_us(),
                "gain_db": self.gain_db(), "stale_frames": self.stale_frames}

    def deinit(self):
        pass
