"""ESP32 camera (OV2640 via esp32-camera) through the `camera` module of ESP32 MicroPython builds.

Two module flavours exist and both are supported:
- cnadler86/micropython-camera-API: ``Camera(data_pins=..., pixel_format=PixelFormat.GRAYSCALE,
  frame_size=FrameSize.QVGA, ...)``, ``cam.capture()`` (a memoryview of the driver's frame
  buffer, held until the next capture), sensor setters/getters like ``set_aec_value``/``get_aec_value``;
- lemariva/micropython-camera-driver: ``camera.init(0, format=camera.GRAYSCALE,
  framesize=camera.FRAME_QVGA, d0=..., ...)``, ``camera.capture()``.
The camera module is imported in the constructor, so this file imports on any port.

Units (glintfw.cam_common): exposure in microseconds -> OV2640 AEC lines, 0..1200
(esp32-camera sensors/ov2640.c set_aec_value clamps there), lines = us / camera.line_us
(board.json: the line time at the board's XCLK and frame size, an estimate until calibrated on
the board, docs/hardware.md); gain in dB -> the AGC index 0..30 into ov2640.c's agc_gain_tbl,
whose entry i is a gain of (i+1)x (the OV2640 GAIN register: bits 7..4 each double, bits 3..0
add sixteenths), i.e. 20*log10(i+1) dB, 0 .. 29.8 dB.
"""

from micropython import const

from glintfw.cam_common import Camera

_FRAME_NAMES = {(320, 240): "QVGA", (640, 480): "VGA", (160, 120): "QQVGA"}
AEC_MAX = const(1200)  # lines (ov2640.c set_aec_value)
AGC_MAX = const(30)  # highest AGC table index (ov2640.c set_agc_gain)
DEFAULT_LINE_US = const(30)
# 100 * 20*log10(i+1): centi-dB of AGC index i (gain (i+1)x)
AGC_CDB = (0, 602, 954, 1204, 1398, 1556, 1690, 1806, 1908, 2000, 2083, 2158, 2228, 2292, 2352, 2408, 2461,
           2511, 2558, 2602, 2644, 2685, 2723, 2760, 2796, 2830, 2863, 2894, 2925, 2954, 2983)


def aec_lines(us, line_us):
    """Exposure in microseconds -> OV2640 AEC lines (rounded, 1..AEC_MAX)."""
    lines = (int(us) + line_us // 2) // line_us
    return 1 if lines < 1 else AEC_MAX if lines > AEC_MAX else lines


def agc_index(db):
    """Gain in dB -> the AGC table index whose gain is nearest (0..AGC_MAX)."""
    target = int(db) * 100
    best = 0
    for i in range(AGC_MAX + 1):
        if abs(AGC_CDB[i] - target) < abs(AGC_CDB[best] - target):
            best = i
    return best


def agc_db(index):
    """The gain of AGC table index ``index``, in whole dB."""
    return (AGC_CDB[index] + 50) // 100


def _read(cam, name, fallback):
    """A sensor value read back from the driver (cnadler86 ``get_<name>()`` or property), else ``fallback``."""
    if cam is None:
        return fallback
    getter = getattr(cam, "get_" + name, None)
    try:
        if getter is not None:
            return int(getter())
        v = getattr(cam, name, None)
        return fallback if v is None or callable(v) else int(v)
    except (OSError, ValueError, TypeError):
        return fallback


class Esp32Camera(Camera):
    def __init__(self, cfg):
        import camera  # noqa: F401  (ESP32 firmware with the camera module)

        Camera.__init__(self, cfg)
        self.line_us = cfg.get("line_us", DEFAULT_LINE_US)
        size = _FRAME_NAMES[(self.width, self.height)]
        pins = cfg["pins"]
        self._cam = None
        self._mod = camera
        self._aec = None  # AEC lines / AGC index as read back after the last set
        self._agc = None
        if hasattr(camera, "Camera"):  # cnadler86 API
            from camera import Camera as Driver, FrameSize, GrabMode, PixelFormat

            self._cam = Driver(
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

    def _grab(self, buf):
        """Grab a frame and copy its width*height gray bytes into ``buf`` (the driver's buffer is reused)."""
        img = self._cam.capture() if self._cam is not None else self._mod.capture()
        n = self.width * self.height
        if not img or len(img) < n:
            raise OSError("camera returned no frame")
        memoryview(buf)[:n] = memoryview(img)[:n]
        return buf

    def set_exposure(self, us):
        """Manual exposure of ``us`` microseconds as AEC lines (see the module docstring); 0 keeps the sensor's."""
        if not us:
            return
        aec = aec_lines(us, self.line_us)
        cam = self._cam
        if cam is not None and hasattr(cam, "set_aec_value"):
            cam.set_exposure_ctrl(False)
            cam.set_aec_value(aec)
        elif hasattr(self._mod, "aecvalue"):
            self._mod.aecvalue(aec)
        self._aec = _read(cam, "aec_value", aec)
        self.invalidate()

    def exposure_us(self):
        return None if self._aec is None else self._aec * self.line_us

    def set_gain(self, db):
        """Manual gain of ``db`` dB (clamped to the sensor's range) as the nearest AGC table index."""
        idx = agc_index(self.clamp_gain(db))
        cam = self._cam
        if cam is not None and hasattr(cam, "set_agc_gain"):
            cam.set_gain_ctrl(False)
            cam.set_agc_gain(idx)
        elif hasattr(self._mod, "agcgain"):
            self._mod.agcgain(idx)
        self._agc = _read(cam, "agc_gain", idx)
        self.invalidate()

    def gain_db(self):
        return None if self._agc is None else agc_db(min(max(self._agc, 0), AGC_MAX))

    def deinit(self):
        if self._cam is not None:
            self._cam.deinit()
        elif hasattr(self._mod, "deinit"):
            self._mod.deinit()
