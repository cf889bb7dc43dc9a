"""What a board.json must satisfy before the firmware touches a pin (docs/boards.md).

One check, run by the firmware's board layer when it reads board.json
(glintfw.board_common.Board.load_config) and by the host before it builds or
deploys a board (glint.fw.build.load_board):

* no button, LED, buzzer or illumination pin may be one of the camera's pins: on
  the ESP32 ``machine.Pin(n, ...)`` selects the pad's GPIO function
  (esp_rom_gpio_pad_select_gpio in ports/esp32 machine_pin.c), so a button on the
  AI-Thinker ESP32-CAM's GPIO0 (its XCLK) stops the camera clock;
* no two of those outputs/inputs share a pin;
* the frame (camera width x height) is not larger than the largest frame that
  fits on the board (camera.max_width x camera.max_height);
* ``usb_drive`` (how protocol mode keeps a ``storage_drive`` from PCs, glintfw.usbdrive)
  is one of USB_DRIVE_METHODS or null; with "sdcard" (the drive is the SD card) the
  state (``storage_root``) must not be on the SD card.

Pins are GPIO numbers (ESP32 family); OpenMV LEDs are named (``led``/``name``),
not pins, and take no part. -1 means "not connected".
"""

from glintcore.errors import BoardError

USB_DRIVE_HIDE_PYB = "pyb.usb_mode"  # the OpenMV STM32 boards: USB restarted as CDC only
USB_DRIVE_EXPORTED = "exported"  # the board owner accepts the drive in protocol mode
USB_DRIVE_SDCARD = "sdcard"  # the OpenMV RT1062: the drive is the SD card, the state on /flash
USB_DRIVE_METHODS = (USB_DRIVE_HIDE_PYB, USB_DRIVE_SDCARD, USB_DRIVE_EXPORTED)
SDCARD = "/sdcard"  # where OpenMV's _boot.py mounts an SD card (the USB drive when mounted at boot)

CAMERA_PIN_KEYS = ("data", "vsync", "href", "pclk", "xclk", "sda", "scl", "pwdn", "reset")


def camera_pins(cfg):
    """{gpio: camera signal name} of board.json's camera.pins (empty for boards without pins)."""
    pins = (cfg.get("camera") or {}).get("pins") or {}
    out = {}
    for key in CAMERA_PIN_KEYS:
        v = pins.get(key)
        if key == "data":
            for i, p in enumerate(v or ()):
                if p is not None and p >= 0:
                    out[p] = "D%d" % i
        elif v is not None and v >= 0:
            out[v] = key
    return out


def user_pins(cfg):
    """[(what, gpio)] of the button, every LED with a ``pin`` and the buzzer."""
    out = []
    b = cfg.get("button")
    if b and b.get("pin") is not None:
        out.append(("button", b["pin"]))
    ind = cfg.get("indicators") or {}
    for i, led in enumerate(ind.get("leds") or ()):
        if led.get("pin") is not None:
            out.append(("%s LED %d" % (led.get("role", "status"), i), led["pin"]))
    bz = ind.get("buzzer")
    if bz and bz.get("pin") is not None:
        out.append(("buzzer", bz["pin"]))
    return out


def problems(cfg):
    """One line per reason this board.json must not run (empty list: it may)."""
    bid = cfg.get("id", "?")
    cam = camera_pins(cfg)
    seen = {}
    out = []
    for what, pin in user_pins(cfg):
        if pin in cam:
            out.append("board %s: the %s is on GPIO%d, the camera's %s" % (bid, what, pin, cam[pin]))
        if pin in seen:
            out.append("board %s: the %s and the %s share GPIO%d" % (bid, seen[pin], what, pin))
        seen[pin] = what
    c = cfg.get("camera") or {}
    mw, mh = c.get("max_width"), c.get("max_height")
    if mw is not None and mh is not None and c.get("width", 0) * c.get("height", 0) > mw * mh:
        out.append("board %s: a %dx%d frame does not fit (largest %dx%d)" % (bid, c["width"], c["height"], mw, mh))
    how = cfg.get("usb_drive")
    if how is not None and how not in USB_DRIVE_METHODS:
        out.append("board %s: usb_drive %r is none of %s" % (bid, how, ", ".join(USB_DRIVE_METHODS)))
    root = cfg.get("storage_root") or "/"
    if how == USB_DRIVE_SDCARD and (root + "/").startswith(SDCARD + "/"):
        out.append("board %s: usb_drive sdcard exports the SD card, and storage_root %s is on it" % (bid, root))
    return out


def check(cfg):
    """``cfg`` unchanged, or BoardError naming the first problem (and how many there are)."""
    found = problems(cfg)
    if found:
        more = " (and %d more)" % (len(found) - 1) if len(found) > 1 else ""
        raise BoardError(found[0] + more, hint="fix boards/%s/board.json (docs/boards.md)" % cfg.get("id", "<id>"))
    return cfg
