"""ESP32 camera (OV2640/OV3660 via esp32-camera) through the `camera` module of ESP32 MicroPython builds.

Two module flavours exist and both are supported:
- cnadler86/micropython-camera-API: ``Camera(data_pins=..., pixel_format=PixelFormat.GRAYSCALE,
  frame_size=FrameSize.QVGA, ...)``, ``cam.capture()``, sensor setters like ``set_aec_value``;
- lemariva/micropython-camera-driver: ``camera.init(0, format=camera.GRAYSCALE,
  framesize=camera.FRAME_QVGA, d0=..., ...)``, ``camera.capture()``.
The camera module is imported in the constructor, so this file imports on any port.
"""

_FRAME_NAMES = {(320, 240): "QVGA", (640, 480): "VGA", (160, 120): "QQVGA"}


class Esp32Camera:
    def __init__(self, cfg):
        import camera  # noqa: F401  (ESP32 firmware with the camera module)

        self.width = cfg["width"]
        self.height = cfg["height"]
        size = _FRAME_NAMES[(self.width, self.height)]
        pins = cfg["pins"]
        self._cam = None
        self._mod = camera
        if hasattr(camera, "Camera"):  # cnadler86 API
            from camera import Camera, FrameSize, GrabMode, PixelFormat

            self._cam = Camera(
                data_pins=pins["data"],
                vsync_pin=pins["vsync"],
                href_pin=pins["href"],
                sda_pin=pins["sda"],
                scl_pin=pins["scl"],
                pclk_pin=pins["pclk"],
                xclk_pin=pins["xclk"],
                xclk_freq=cfg.get("xclk_hz", 20000000),
                powerdown_pin=pins.get("pwdn", -1),
                reset_pin=pins.get("reset", -1),
                pixel_format=PixelFormat.GRAYSCALE,
                frame_size=getattr(FrameSize, size),
                fb_count=1,
                grab_mode=GrabMode.LATEST,
            )
        else:  # lemariva API
            d = pins["data"]
            camera.init(
                0,
                format=camera.GRAYSCALE,
                framesize=getattr(camera, "FRAME_" + size),
                fb_location=camera.PSRAM,
                d0=d[0], d1=d[1], d2=d[2], d3=d[3], d4=d[4], d5=d[5], d6=d[6], d7=d[7],
                vsync=pins["vsync"], href=pins["href"], pclk=pins["pclk"], xclk=pins["xclk"],
                sioc=pins["scl"], siod=pins["sda"], pwdn=pins.get("pwdn", -1), reset=pins.get("reset", -1),
            )
        self.set_exposure(cfg.get("exposure_us", 0))
        self.set_gain(cfg.get("gain", 0))

    def capture(self, buf):
        """Grab a frame and copy its width*height gray bytes into ``buf``."""
        img = self._cam.capture() if self._cam is not None else self._mod.capture()
        if not img or len(img) < self.width * self.height:
            raise OSError("camera returned no frame")
        n = self.width * self.height
        memoryview(buf)[:n] = memoryview(img)[:n]
        return buf

    def set_exposure(self, us):
        """Manual exposure; esp32-camera takes AEC value in line periods (0..1200), ~ us / 30 at 20 MHz XCLK."""
        if not us:
            return
        aec = max(0, min(1200, int(us) // 30))
        cam = self._cam
        if cam is not None and hasattr(cam, "set_aec_value"):
            cam.set_exposure_ctrl(False)
            cam.set_aec_value(aec)
        elif hasattr(self._mod, "aecvalue"):
            self._mod.aecvalue(aec)

    def set_gain(self, g):
        cam = self._cam
        if cam is not None and hasattr(cam, "set_agc_gain"):
            cam.set_gain_ctrl(False)
            cam.set_agc_gain(int(g))
        elif hasattr(self._mod, "agcgain"):
            self._mod.agcgain(int(g))

    def deinit(self):
        if self._cam is not None:
            self._cam.deinit()
        elif hasattr(self._mod, "deinit"):
            self._mod.deinit()
