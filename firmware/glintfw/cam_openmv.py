"""OpenMV camera (OpenMV Cam H7 Plus, RT1062, Arduino Nicla Vision): the `csi` module, falling back to `sensor`.

csi (OpenMV >= 4.6): ``c = csi.CSI(); c.reset(); c.pixformat(csi.GRAYSCALE);
c.framesize(csi.QVGA); c.snapshot()``; sensor (older): ``sensor.reset();
sensor.set_pixformat(sensor.GRAYSCALE); sensor.set_framesize(sensor.QVGA);
sensor.snapshot()``. Frames live in OpenMV's frame buffer; ``img.bytearray()``
is a view, so capture copies width*height bytes and allocates nothing per pixel.
"""

_SETTLE_MS = 300  # let the sensor settle after a reset / mode change


class OpenMVCamera:
    def __init__(self, cfg):
        self.width = cfg["width"]
        self.height = cfg["height"]
        size = {(320, 240): "QVGA", (640, 480): "VGA", (160, 120): "QQVGA"}[(self.width, self.height)]
        try:
            import csi

            c = csi.CSI()
            c.reset()
            c.pixformat(csi.GRAYSCALE)
            c.framesize(getattr(csi, size))
            self._csi = c
            self._sensor = None
        except ImportError:
            import sensor

            sensor.reset()
            sensor.set_pixformat(sensor.GRAYSCALE)
            sensor.set_framesize(getattr(sensor, size))
            sensor.skip_frames(time=_SETTLE_MS)
            self._csi = None
            self._sensor = sensor
        self.set_exposure(cfg.get("exposure_us", 0))
        self.set_gain(cfg.get("gain", 0))

    def capture(self, buf):
        img = self._csi.snapshot() if self._csi is not None else self._sensor.snapshot()
        n = self.width * self.height
        memoryview(buf)[:n] = memoryview(img.bytearray())[:n]
        return buf

    def set_exposure(self, us):
        if not us:
            return
        if self._csi is not None:
            self._csi.auto_exposure(False, exposure_us=int(us))
        else:
            self._sensor.set_auto_exposure(False, exposure_us=int(us))

    def set_gain(self, g):
        if self._csi is not None:
            self._csi.auto_gain(False, gain_db=g)
        else:
            self._sensor.set_auto_gain(False, gain_db=g)

    def deinit(self):
        if self._csi is not None and hasattr(self._csi, "shutdown"):
            self._csi.shutdown(True)
        elif self._sensor is not None:
            self._sensor.shutdown(True)
