"""OpenMV camera (OpenMV Cam H7 Plus, RT1062, Arduino Nicla Vision): the `csi` module, falling back to `sensor`.

csi (OpenMV >= 4.6): ``c = csi.CSI(); c.reset(); c.pixformat(csi.GRAYSCALE);
c.framesize(csi.QVGA); c.snapshot()``; sensor (older): ``sensor.reset();
sensor.set_pixformat(sensor.GRAYSCALE); sensor.set_framesize(sensor.QVGA);
sensor.snapshot()``. Frames live in OpenMV's frame buffer; ``img.bytearray()`` is a
view of it, and ``capture`` returns that view: no copy, and no 77 KB frame buffer of
glint's own (on the Nicla Vision VGA would not fit at all).

Units (glintfw.cam_common): the OpenMV drivers take microseconds and dB themselves
(openmv drivers/sensors/ov5640.c set_auto_exposure(exposure_us) via the PLL and HTS,
set_auto_gain(gain_db) as round(10^(dB/20) * 16) in 10 bits, so 0..36 dB) and read them
back (exposure_us(), gain_db()). A sensor without manual control keeps its automatic one
and glint never calls the missing setter: the GC2145 (drivers/sensors/gc2145.c) ignores
exposure_us and has no gain control, and asking for one makes the csi module print a
WARNING on the console the link runs on.
"""

from glintfw.cam_common import Camera

_SETTLE_MS = 300  # let the sensor settle after a reset / mode change


def _call(obj, names, *args, **kw):
    """The first of ``names`` that ``obj`` has, called; None if it has none."""
    for name in names:
        f = getattr(obj, name, None)
        if f is not None:
            return f(*args, **kw)
    return None


class OpenMVCamera(Camera):
    owns_frame = True  # capture() returns OpenMV's frame buffer, not the caller's

    def __init__(self, cfg):
        Camera.__init__(self, cfg)
        size = {(320, 240): "QVGA", (640, 480): "VGA", (160, 120): "QQVGA"}[(self.width, self.height)]
        try:
            import csi

            c = csi.CSI()
            c.reset()
            c.pixformat(csi.GRAYSCALE)
            c.framesize(getattr(csi, size))
            self._dev = c
            self._csi = True
        except ImportError:
            import sensor

            sensor.reset()
            sensor.set_pixformat(sensor.GRAYSCALE)
            sensor.set_framesize(getattr(sensor, size))
            sensor.skip_frames(time=_SETTLE_MS)
            self._dev = sensor
            self._csi = False
        self.set_exposure(cfg.get("exposure_us", 0))
        self.set_gain(cfg.get("gain", 0))

    def _grab(self, buf):
        img = self._dev.snapshot()
        return img.bytearray()  # a view of the frame buffer (grayscale: width*height bytes)

    def set_exposure(self, us):
        if not us or not self.manual_exposure:
            return  # GC2145: auto exposure stays on
        if self._csi:
            self._dev.auto_exposure(False, exposure_us=int(us))
        else:
            self._dev.set_auto_exposure(False, exposure_us=int(us))
        self.invalidate()

    def exposure_us(self):
        if not self.manual_exposure:
            return None
        v = _call(self._dev, ("exposure_us", "get_exposure_us"))
        return None if v is None else int(v)

    def set_gain(self, db):
        if not self.manual_gain:
            return  # GC2145: no gain control; calling it prints a WARNING onto the link
        db = self.clamp_gain(db)
        if self._csi:
            self._dev.auto_gain(False, gain_db=db)
        else:
            self._dev.set_auto_gain(False, gain_db=db)
        self.invalidate()

    def gain_db(self):
        if not self.manual_gain:
            return None
        v = _call(self._dev, ("gain_db", "get_gain_db"))
        return None if v is None else int(v + 0.5)

    def deinit(self):
        _call(self._dev, ("shutdown",), True)
