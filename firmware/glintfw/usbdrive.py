"""The OpenMV USB drive: not exported while glint is in protocol mode (docs/security.md).

OpenMV firmware mounts one FAT volume at "/" (the SD card if one was inserted at boot, else the
internal flash) and exports that same volume as a USB mass-storage drive (openmv
src/omv/ports/stm32/main.c, src/omv/ports/mimxrt/main.c): a PC could copy the sealed key and
rewrite the counter, spool and config under /glint while the firmware writes them. Before the
app touches its state, ``protect(cfg)`` makes sure no PC sees that drive, by board.json:

* ``storage_drive`` false (ESP32 family, sim): no drive; nothing to do.
* ``usb_drive`` "pyb.usb_mode" (OpenMV STM32 boards): USB restarts as a CDC-only device with the
  board's own VID:PID. The stm32 port initialises USB once per power cycle and ignores a later
  ``pyb.usb_mode(mode)`` while USB is up (``pyb_usb_dev_init``, micropython ports/stm32/usb.c),
  and current OpenMV firmware starts USB as VCP+MSC before boot.py runs, so the device is first
  turned off (``pyb.usb_mode(None)``) and then on as ``"VCP"``; ``pyb.usb_mode()`` must then read
  "VCP", or the drive is still there.
* ``usb_drive`` "exported": the board owner accepts the drive (the key on it is sealed, docs/security.md);
  the self-test reports it.
* anything else (the RT1062: TinyUSB with mass storage built in, and no Python call to drop it:
  machine.USBDevice is not in the mimxrt port): refused.

``protect`` returns the state ("none", "hidden", "exported") and keeps it in ``state`` for the
self-test; it raises DriveExported, with the reason, where the drive stays exported unasked.
The boot path (glintfw.link.main) then does not start protocol mode.

How to get the drive back for bring-up (not in protocol mode): an unlocked scanner's REPL runs
``import pyb; pyb.usb_mode(None); pyb.usb_mode("VCP+MSC")`` (until the next hard reset).
"""

from glintcore.boardspec import USB_DRIVE_EXPORTED as EXPORTED
from glintcore.boardspec import USB_DRIVE_HIDE_PYB as HIDE_PYB

CDC_ONLY = "VCP"  # pyb.usb_mode() of a USB device with the serial port only
OFF_MS = 200  # USB off this long, so the PC sees the device leave and enumerate again

NONE = "none"
HIDDEN = "hidden"

state = None  # what protect() found at boot (None: not run, e.g. the virtual scanner)


class DriveExported(OSError):
    """The USB drive is still exported: protocol mode must not start (the message says why)."""


def protect(cfg, pyb=None, sleep_ms=None):
    """Hide board ``cfg``'s USB drive for protocol mode -> "none", "hidden" or "exported".

    ``pyb``/``sleep_ms``: the port's module and delay (tests pass stand-ins for a board they lack)."""
    global state
    if not cfg.get("storage_drive"):
        state = NONE
        return state
    how = cfg.get("usb_drive")
    if how == EXPORTED:
        state = EXPORTED
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
