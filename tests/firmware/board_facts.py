"""The board facts glint relies on, each with the source it was read from (docs/boards.md "Board facts").

``FACTS[board]`` lists (board.json key path, value, source key, status). ``status`` is
"read" when the value was read in the named source (repository, path), or a short
"unverified: ..." reason when the value could not be confirmed without hardware or
the source was not available. tests/firmware/test_board_facts.py checks every
board.json against this table and docs/boards.md against ``render()``.
"""

# key -> (repository, path) of the source text the value was read in
SOURCES = {
    "esp32-camera pinout": ("espressif/esp32-camera", "examples/camera_example/main/camera_pinout.h"),
    "camera-API pins": ("cnadler86/micropython-camera-API", "src/camera_pins.h"),
    "camera-API module": ("cnadler86/micropython-camera-API", "src/modcamera.c"),
    "esp32-camera ov2640": ("espressif/esp32-camera", "sensors/ov2640.c"),
    "esp-bsp s3-eye": ("espressif/esp-bsp", "bsp/esp32_s3_eye/include/bsp/esp32_s3_eye.h"),
    "esp-bsp s3-eye led": ("espressif/esp-bsp", "bsp/esp32_s3_eye/src/bsp_led.c"),
    "esp32 machine_pin": ("micropython/micropython", "ports/esp32/machine_pin.c"),
    "esp32 main": ("micropython/micropython", "ports/esp32/main.c"),
    "esp32 _boot": ("micropython/micropython", "ports/esp32/modules/_boot.py"),
    "esp32 mpconfigport": ("micropython/micropython", "ports/esp32/mpconfigport.h"),
    "persistentcode": ("micropython/micropython", "py/persistentcode.h"),
    "openmv H7 Plus config": ("openmv/openmv", "boards/OPENMV4P/omv_boardconfig.mk"),
    "openmv H7 Plus board": ("openmv/openmv", "boards/OPENMV4P/board_config.h"),
    "openmv RT1062 config": ("openmv/openmv", "boards/OPENMV_RT1060/board_config.mk"),
    "openmv RT1062 board": ("openmv/openmv", "boards/OPENMV_RT1060/board_config.h"),
    "openmv Nicla config": ("openmv/openmv", "boards/ARDUINO_NICLA_VISION/board_config.mk"),
    "openmv stm32 main": ("openmv/openmv", "ports/stm32/main.c"),
    "openmv mimxrt main": ("openmv/openmv", "ports/mimxrt/main.c"),
    "openmv _boot": ("openmv/openmv", "scripts/libraries/_boot.py"),
    "openmv RT1060 mpconfigboard": ("openmv/micropython", "ports/mimxrt/boards/OPENMV_RT1060/mpconfigboard.h"),
    "openmv ov5640": ("openmv/openmv", "drivers/sensors/ov5640.c"),
    "openmv gc2145": ("openmv/openmv", "drivers/sensors/gc2145.c"),
    "stm32 usb": ("micropython/micropython", "ports/stm32/usb.c"),
    "issue 18": ("glint", "issue 18 (the lead's reading of openmv 4.8 / micropython 1.29)"),
    "vendor": ("vendor", "board schematic / USB bridge vendor ID (not in a stored source)"),
}

READ = "read"

_OV2640 = [
    ("camera.model", "OV2640", "esp32-camera ov2640", READ),
    ("camera.grayscale", True, "esp32-camera ov2640", READ),  # set_pixformat: GRAYSCALE -> the YUV422 tables
    ("camera.manual_exposure", True, "esp32-camera ov2640", READ),  # set_aec_value, clamped 0..1200 lines
    ("camera.exposure_unit", "line", "esp32-camera ov2640", READ),
    ("camera.manual_gain", True, "esp32-camera ov2640", READ),  # set_agc_gain: index 0..30 into agc_gain_tbl
    ("camera.gain_unit", "ov2640_index", "esp32-camera ov2640", READ),
    ("camera.gain_db_max", 29, "esp32-camera ov2640",
     "unverified: index i = (i+1)x assumes the OV2640 datasheet's GAIN register layout (31x = 29.8 dB)"),
    ("camera.stale_frames", 1, "camera-API module", READ),  # capture() keeps the fb until the next capture; fb_count 1
    ("mpy_arch", "xtensawin", "esp32 mpconfigport", READ),  # MICROPY_EMIT_XTENSAWIN
    ("storage_root", "/", "esp32 _boot", READ),
    ("storage_drive", False, "esp32 _boot", "unverified: no USB mass storage in the esp32 port (none seen in its sources)"),
    ("reset", "soft", "esp32 main", READ),  # main.py runs after every soft reset in friendly-REPL mode
]

# pyb_usb_dev_init initialises USB once while it is up; pyb.usb_mode(None) turns it off, then "VCP" is
# CDC only (glintfw.usbdrive). Read in the port's source; the OpenMV build's behaviour is not run here.
_PYB_USB = ("unverified: usb_mode(None) then usb_mode('VCP', vid, pid) read in pyb_usb_mode / pyb_usb_dev_init; "
            "not run on an OpenMV board (re-enumeration, a host's driver cache for the same VID:PID)")

FACTS = {
    "esp32_cam": _OV2640 + [
        ("camera.pins", {"data": [5, 18, 19, 21, 36, 39, 34, 35], "vsync": 25, "href": 23, "pclk": 22, "xclk": 0,
                         "sda": 26, "scl": 27, "pwdn": 32, "reset": -1}, "esp32-camera pinout", READ),
        ("button", None, "esp32 machine_pin", READ),  # the BOOT button's GPIO0 is XCLK: Pin(0, ...) re-routes it
        ("indicators.leds", [{"pin": 33, "active_low": True, "role": "status"},
                             {"pin": 4, "active_low": False, "role": "illumination"}], "vendor",
         "unverified: AI-Thinker schematic (red LED GPIO33, flash LED GPIO4)"),
        ("camera.line_us", 60, "issue 18", "unverified: about twice the S3's line time at QVGA; calibrate (docs/hardware.md HIL)"),
        ("camera.max_width", 640, "vendor", "unverified: 4 MB PSRAM holds a VGA frame and the detector"),
        ("usb.vid", 0x1A86, "vendor", "unverified: CH340 on the ESP32-CAM-MB base"),
        ("usb.pid", 0x7523, "vendor", "unverified: CH340 on the ESP32-CAM-MB base"),
        ("console_logs", True, "esp32 main", READ),  # ESP-IDF logs are muted only in the raw REPL; console is UART0
    ],
    "esp32s3_eye": _OV2640 + [
        ("camera.pins", {"data": [11, 9, 8, 10, 12, 18, 17, 16], "vsync": 6, "href": 7, "pclk": 13, "xclk": 15,
                         "sda": 4, "scl": 5, "pwdn": -1, "reset": -1}, "esp-bsp s3-eye", READ),
        ("button", {"pin": 0, "active_low": True}, "esp-bsp s3-eye", READ),  # BSP_BUTTON_BOOT_IO
        ("indicators.leds", [{"pin": 3, "active_low": False, "role": "status"}], "esp-bsp s3-eye led", READ),
        ("camera.line_us", 30, "issue 18", "unverified: calibrate (docs/hardware.md HIL)"),
        ("camera.max_width", 640, "esp-bsp s3-eye", "unverified: 8 MB octal PSRAM holds a VGA frame"),
        ("usb.vid", 0x303A, "esp32 mpconfigport", "unverified: the stored mpconfigport.h predates MICROPY_HW_USB_VID"),
        ("usb.pid", 0x4001, "esp32 mpconfigport", "unverified: 303A:4001 per issue 18 (ports/esp32 1.29)"),
    ],
    "xiao_esp32s3_sense": _OV2640 + [
        ("camera.pins", {"data": [15, 17, 18, 16, 14, 12, 11, 48], "vsync": 38, "href": 47, "pclk": 13, "xclk": 10,
                         "sda": 40, "scl": 39, "pwdn": -1, "reset": -1}, "esp32-camera pinout", READ),
        ("button", {"pin": 0, "active_low": True}, "vendor", "unverified: Seeed XIAO ESP32S3 BOOT button GPIO0"),
        ("indicators.leds", [{"pin": 21, "active_low": True, "role": "status"}], "vendor",
         "unverified: Seeed XIAO ESP32S3 user LED GPIO21, active low"),
        ("camera.line_us", 30, "issue 18", "unverified: calibrate (docs/hardware.md HIL)"),
        ("camera.max_width", 640, "vendor", "unverified: 8 MB PSRAM holds a VGA frame"),
        ("usb.vid", 0x303A, "esp32 mpconfigport", "unverified: the stored mpconfigport.h predates MICROPY_HW_USB_VID"),
        ("usb.pid", 0x4001, "esp32 mpconfigport", "unverified: 303A:4001 per issue 18 (ports/esp32 1.29)"),
    ],
    "openmv_h7_plus": [
        ("mpy_arch", "armv7emsp", "openmv H7 Plus config", READ),  # FPU=fpv5-sp-d16 -> MPY_FEATURE_ARCH ARMV7EMSP
        ("camera.model", "OV5640", "openmv ov5640", READ),
        ("camera.manual_exposure", True, "openmv ov5640", READ),  # set_auto_exposure(exposure_us) via PLL and HTS
        ("camera.exposure_unit", "us", "openmv ov5640", READ),
        ("camera.manual_gain", True, "openmv ov5640", READ),  # set_auto_gain(gain_db): round(10^(dB/20)*16), 10 bits
        ("camera.gain_unit", "dB", "openmv ov5640", READ),
        ("camera.gain_db_max", 36, "openmv ov5640", READ),  # 1023/16 = 63.9x
        ("camera.stale_frames", 3, "issue 18", "unverified: up to three buffered frames on OpenMV"),
        ("camera.max_width", 640, "openmv H7 Plus board", READ),  # 32 MB SDRAM (OMV_DRAM_LENGTH)
        ("storage_root", "/flash", "openmv _boot", READ),  # internal flash at /flash, an SD card at /sdcard
        ("storage_drive", True, "openmv stm32 main", READ),  # MSC medium: the SD card if mounted, else the flash
        ("usb_drive", "pyb.usb_mode", "stm32 usb", _PYB_USB),
        ("reset", "hard", "openmv stm32 main", READ),  # main.py runs on the first soft reset only
        ("usb.vid", 0x37C5, "issue 18", "unverified: OPENMV4P board_config.mk with OMV_USB_VID not in the stored sources"),
        ("usb.pid", 0x124A, "issue 18", "unverified: as usb.vid"),
    ],
    "openmv_rt1062": [
        ("mpy_arch", "armv7emsp", "openmv RT1062 config", READ),  # FPU=fpv5-sp-d16
        ("camera.model", "OV5640", "openmv ov5640", READ),
        ("camera.exposure_unit", "us", "openmv ov5640", READ),
        ("camera.gain_unit", "dB", "openmv ov5640", READ),
        ("camera.gain_db_max", 36, "openmv ov5640", READ),
        ("camera.stale_frames", 3, "issue 18", "unverified: up to three buffered frames on OpenMV"),
        ("camera.max_width", 640, "openmv RT1062 board", READ),  # 32 MB SDRAM (OMV_DRAM_LENGTH)
        ("storage_root", "/flash", "openmv _boot", READ),
        ("storage_drive", True, "openmv RT1060 mpconfigboard", READ),  # MICROPY_HW_USB_MSC (1)
        # TinyUSB is up (CDC+MSC) before boot.py, with mimxrt_msc_medium the SD card if /sdcard is mounted,
        # else the flash; no machine.USBDevice (MICROPY_HW_ENABLE_USB_RUNTIME_DEVICE unset), so the
        # drive stays: protocol mode needs the SD card to be it (glintfw.usbdrive)
        ("usb_drive", "sdcard", "openmv mimxrt main", "unverified: the medium choice read in main.c; not run on "
         "an RT1062 (which volume a PC sees with and without a card)"),
        ("reset", "hard", "openmv mimxrt main", READ),
        ("usb.vid", 0x37C5, "openmv RT1062 config", READ),
        ("usb.pid", 0x1060, "openmv RT1062 config", READ),
    ],
    "nicla_vision": [
        ("mpy_arch", "armv7emsp", "openmv Nicla config", READ),  # FPU=fpv5-sp-d16
        ("camera.model", "GC2145", "openmv gc2145", READ),
        ("camera.grayscale", True, "openmv gc2145", READ),  # GRAYSCALE from the YCbYCr output
        ("camera.manual_exposure", False, "openmv gc2145", READ),  # set_auto_exposure ignores exposure_us
        ("camera.manual_gain", False, "openmv gc2145", READ),  # no set_auto_gain
        ("camera.stale_frames", 3, "issue 18", "unverified: up to three buffered frames on OpenMV"),
        ("camera.max_width", 320, "issue 18", "unverified: VGA (307 KB) exceeds the 276 KB largest free region"),
        ("storage_root", "/flash", "openmv _boot", READ),
        ("storage_drive", True, "openmv stm32 main", READ),
        ("usb_drive", "pyb.usb_mode", "stm32 usb", _PYB_USB),
        ("reset", "hard", "openmv stm32 main", READ),
        ("usb.vid", 0x2341, "openmv Nicla config", READ),
        ("usb.pid", 0x055F, "openmv Nicla config", READ),
    ],
}


def lookup(cfg, path):
    """The value at a dotted ``path`` of a board.json dict (KeyError if absent)."""
    v = cfg
    for part in path.split("."):
        v = v[part]
    return v


def _fmt(v):
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, int) and v > 255:
        return "0x%04X" % v
    if isinstance(v, (dict, list)):
        import json

        return "`" + json.dumps(v, separators=(",", ":")) + "`"
    return str(v)


def render():
    """The markdown table of every fact (docs/boards.md embeds it verbatim)."""
    lines = ["| board | board.json key | value | source (repository, path) | status |", "|---|---|---|---|---|"]
    for bid in sorted(FACTS):
        for path, value, src, status in FACTS[bid]:
            repo, where = SOURCES[src]
            lines.append(f"| `{bid}` | `{path}` | {_fmt(value)} | {repo}: `{where}` | {status} |")
    return "\n".join(lines)
