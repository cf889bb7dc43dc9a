"""Finding scanners on USB: match serial ports against the VID/PID in boards/*/board.json (glint.resources)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from glint.resources import usb_table

_log = logging.getLogger(__name__)


class Found(NamedTuple):
    """A serial port whose USB VID/PID belongs to a board. ``board_id`` is ``a|b`` when
    several boards share the VID/PID (the device's INFO says which one it is)."""

    port: str
    board_id: str


def discover(root: Path | None = None) -> list[Found]:
    """Serial ports that look like glint scanners, by USB VID/PID; sorted by port name.

    ``root``: a boards folder (default glint.resources.boards_dir()).
    """
    from serial.tools import list_ports

    table = usb_table(root)
    found = []
    for p in list_ports.comports():
        if p.vid is None or p.pid is None:
            continue
        boards = table.get((p.vid, p.pid))
        if boards:
            found.append(Found(p.device, "|".join(boards)))
    _log.debug("discovered %d scanner port(s)", len(found))
    return sorted(found)
