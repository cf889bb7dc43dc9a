"""The host's link to scanners (docs/host.md).

    from glint.link import open_scanner, discover, Timeouts
    for port, board in discover():               # USB boards by VID/PID (boards/*/board.json)
        ...
    with open_scanner("socket://127.0.0.1:7700") as sc:   # or /dev/ttyACM0, loop://
        sc.info(); sc.scan(nonce); sc.keygen(); sc.spool_list(); sc.poll_events()

Errors: glint.errors.LinkError (cannot open, timeout, unplugged) and DeviceError (the
scanner answered an error status), one line each with a hint.
"""

from glint.link.discover import Found, discover, usb_table
from glint.link.scanner import IDEMPOTENT, Scanner, ScanReply, Timeouts, open_scanner, type_name
from glint.link.transport import Transport

__all__ = ["open_scanner", "Scanner", "ScanReply", "Timeouts", "Transport", "discover", "Found",
           "usb_table", "IDEMPOTENT", "type_name"]
