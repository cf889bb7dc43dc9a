"""The OpenMV USB drive: not exported while glint is in protocol mode (docs/security.md).

Current OpenMV firmware runs its frozen _boot.py before USB starts: the internal flash is
mounted at /flash and an SD card, if one is inserted (and /flash/SKIPSD is absent), at
/sdcard (openmv scripts/libraries/_boot.py). Then the firmware picks the USB mass-storage
medium: the SD card if /sdcard is mounted, else the internal flash, and starts USB as serial +
drive before boot.py runs (openmv ports/stm32/main.c ``pyb_usb_storage_medium``,
ports/mimxrt/main.c ``mimxrt_msc_medium``). A PC seeing the flash could copy the sealed key
and rewrite the counter, spool and config under /flash/glint while the firmware writes them.
Before the app touches its state, ``protect(cfg)`` makes sure no PC sees them, by board.json:

* ``storage_drive`` false (ESP32 family, sim): no drive; nothing to do.
* ``usb_drive`` "pyb.usb_mode" (OpenMV STM32 boards): USB restarts as a CDC-only device with the
  board's own VID:PID. The stm32 port initialises USB once per power cycle and ignores a later
  ``pyb.usb_mode(mode)`` while USB is up (``pyb_usb_dev_init``, micropython ports/stm32/usb.c),
  and current OpenMV firmware starts USB as VCP+MSC before boot.py runs, so the device is first
  turned off (``pyb.usb_mode(None)``) and then on as ``"VCP"``; ``pyb.usb_mode()`` must then read
  "VCP", or the drive is still there.
* ``usb_drive`` "sdcard" (the RT1062): TinyUSB cannot be reconfigured from Python there
  (``machine.USBDevice`` needs MICROPY_HW_ENABLE_USB_RUNTIME_DEVICE, which neither the mimxrt port
  nor OpenMV's OPENMV_RT1060 board config sets; no ``pyb`` module), so the drive stays; but it is
  the SD card whenever /sdcard was mounted when the firmware chose the medium. Protocol mode
  starts only if /sdcard is mounted, ``storage_root`` is on another mounted volume (/flash), and
  no boot.py is on either (boot.py runs after the medium was chosen and could have mounted
  /sdcard itself, which would leave the flash as the drive). The PC then sees the card: glint's
  code is on it (main.py runs from /sdcard), its state is not.
* ``usb_drive`` "exported": the board owner accepts the drive (the key on it is sealed, docs/security.md);
  the self-test reports it.
* anything else (null): refused.

``protect`` returns the state ("none", "hidden", "sdcard", "exported") and keeps it in ``state``
for the self-test; it raises DriveExported, with the reason, where glint's state stays on an
exported drive unasked. The boot path (glintfw.link.main) then does not start protocol mode.

How to get the drive back for bring-up on the STM32 boards (not in protocol mode): an unlocked
scanner's REPL runs ``import pyb; pyb.usb_mode(None); pyb.usb_mode("VCP+MSC")`` (until the next
hard reset). On the RT1062 the flash is the drive whenever it boots without an SD card.
"""

from glintcore.boardspec import USB_DRIVE_EXPORTED as EXPORTED
from glintcore.boardspec import USB_DRIVE_HIDE_PYB as HIDE_PYB
from glintcore.boardspec import SDCARD
from glintcore.boardspec import USB_DRIVE_SDCARD as ON_SDCARD

CDC_ONLY = "VCP"  # pyb.usb_mode() of a USB device with the serial port only
OFF_MS = 200  # USB off this long, so the PC sees the device leave and enumerate again

NONE = "none"
HIDDEN = "hidden"

state = None  # what protect() found at boot (None: not run, e.g. the virtual scanner)


class DriveExported(OSError):
    """The USB drive is still exported: protocol mode must not start (the message says why)."""


class Volumes:
    """The mounted volumes as the firmware sees them (tests pass a stand-in with the same two calls)."""

    def mounts(self):
        """The mount points, e.g. ["/flash", "/sdcard"]."""
        try:
            import vfs

            return [m[1] for m in vfs.mount()]  # MicroPython 1.24+: the mount table
        except Exception:
            import os

            # OpenMV mounts nothing at "/", so the root lists the mount points
            return ["/" + n for n in os.listdir("/")]

    def exists(self, path):
        import os

        try:
            os.stat(path)
            return True
        except OSError:
            return False


def _volume(path, mounts):
    """The mount point ``path`` is on (the longest one that contains it), or None."""
    best = None
    for m in mounts:
        if m == "/" or path == m or path.startswith(m + "/"):
            if best is None or len(m) > len(best):
                best = m
    return best


def _on_sdcard(cfg, fs):
    """The "sdcard" way: the drive is the SD card, and glint's state is on another volume."""
    root = (cfg.get("storage_root") or "/").rstrip("/") or "/"
    mounts = fs.mounts()
    if SDCARD not in mounts:
        raise DriveExported("no SD card is mounted at %s, so the USB drive is the internal flash with glint's state: "
                            "insert a FAT SD card and power-cycle (and remove /flash/SKIPSD)" % SDCARD)
    vol = _volume(root, mounts)
    if vol is None or vol == SDCARD or vol == "/":
        raise DriveExported("storage_root %s is not on a volume apart from the SD card (mounted: %s)"
                            % (root, " ".join(sorted(mounts))))
    for d in (vol, SDCARD):
        if fs.exists(d + "/boot.py"):
            raise DriveExported("%s/boot.py runs after the firmware chose the USB drive, so the drive cannot be "
                                "checked: remove it" % d)
    return ON_SDCARD


def protect(cfg, pyb=None, sleep_ms=None, fs=None):
    """Keep board ``cfg``'s state off the USB drive for protocol mode -> "none", "hidden", "sdcard" or "exported".

    ``pyb``/``sleep_ms``/``fs``: the port's module, delay and volumes (tests pass stand-ins for a board they lack)."""
    global state
    if not cfg.get("storage_drive"):
        state = NONE
        return state
    how = cfg.get("usb_drive")
    if how == EXPORTED:
        state = EXPORTED
        return state
    if how == ON_SDCARD:
        state = _on_sdcard(cfg, fs or Volumes())
        return state
    if how != HIDE_PYB:
        raise DriveExported("board %s exports its storage as a USB drive and board.json usb_drive (%s) names "
                            "no way to hide it: flash a firmware without USB mass storage, or accept the drive "
                            "with usb_drive \"exported\" (docs/security.md)" % (cfg.get("id", "?"), how or "null"))
    if pyb is None:
        try:
            import pyb
        except ImportError:
            raise DriveExported("board.json usb_drive %r needs the pyb module, which this firmware lacks" % how)
    if sleep_ms is None:
        import time

        sleep_ms = time.sleep_ms
    try:
        if pyb.usb_mode() != CDC_ONLY:
            usb = cfg.get("usb") or {}
            pyb.usb_mode(None)
            sleep_ms(OFF_MS)
            pyb.usb_mode(CDC_ONLY, vid=usb["vid"], pid=usb["pid"])
        mode = pyb.usb_mode()
    except (OSError, ValueError) as e:
        raise DriveExported("pyb.usb_mode failed: %s" % (e,))
    if mode != CDC_ONLY:
        raise DriveExported("the USB drive is still exported (USB mode %s after asking for %s)" % (mode, CDC_ONLY))
    state = HIDDEN
    return state
