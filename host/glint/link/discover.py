"""Finding scanners on USB: match serial ports against the VID/PID in boards/*/board.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import NamedTuple

_log = logging.getLogger(__name__)


class Found(NamedTuple):
    """A serial port whose USB VID/PID belongs to a board. ``board_id`` is ``a|b`` when
    several boards share the VID/PID (the device's INFO says which one it is)."""

    port: str
    board_id: str


def boards_dir() -> Path | None:
    """The repository's boards/ directory (None when glint runs without its source tree)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "boards").is_dir() and (parent / "shared" / "glintcore").is_dir():
            return parent / "boards"
    return None


def usb_table(root: Path | None = None) -> dict[tuple[int, int], list[str]]:
    """(vid, pid) -> board ids, from every boards/<id>/board.json: its ``usb`` IDs and each ``usb.alt``."""
    root = root or boards_dir()
    table: dict[tuple[int, int], list[str]] = {}
    if root is None:
        return table
    for path in sorted(root.glob("*/board.json")):
        try:
            cfg = json.loads(path.read_text())
            usb = cfg.get("usb") or {}
            keys = [(int(u["vid"]), int(u["pid"])) for u in [usb] + list(usb.get("alt") or ())]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if cfg.get("port") == "sim":
            continue  # never enumerates (test VID/PID)
        bid = cfg.get("id", path.parent.name)
        for key in keys:  # the current firmware's IDs and every previous one (usb.alt)
            ids = table.setdefault(key, [])
            if bid not in ids:
                ids.append(bid)
    return table


def discover(root: Path | None = None) -> list[Found]:
    """Serial ports that look like glint scanners, by USB VID/PID; sorted by port name."""
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
