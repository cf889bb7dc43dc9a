"""Where glint finds the files it ships to scanners, and the one board registry.

The device tree is laid out the same way wherever glint runs::

    <device root>/boards/<id>/board.json, board.py    one folder per board (docs/boards.md)
    <device root>/firmware/main.py, glintfw/          the device application
    <device root>/shared/glintcore/                   the portable core (device half)

From a source checkout (editable install) the device root is the checkout itself. An
installed wheel carries a copy of the same tree as package data in ``glint/_device``
(``setup.py`` copies it at build time). Every module asks here instead of working out
paths from ``__file__``, and boards are looked up through :func:`load_board` /
:func:`list_boards` (the registry, as esptool keeps its chip table).

Build outputs (compiled firmware, stub folders, type-check caches) go to
:func:`build_dir`: ``<checkout>/build`` in a checkout, else ``$XDG_CACHE_HOME/glint``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glint.errors import ToolError, UsageError

PACKAGED = Path(__file__).resolve().parent / "_device"
CHECKOUT = Path(__file__).resolve().parents[2]  # host/glint/resources.py -> the checkout


def _is_device_root(p: Path) -> bool:
    return (p / "boards").is_dir() and (p / "firmware" / "glintfw").is_dir() and (p / "shared" / "glintcore").is_dir()


def source_checkout() -> Path | None:
    """The source checkout glint runs from (an editable install), or None for an installed wheel."""
    return CHECKOUT if _is_device_root(CHECKOUT) and (CHECKOUT / "host" / "glint").is_dir() else None


def device_root() -> Path:
    """The folder holding ``boards/``, ``firmware/`` and ``shared/glintcore``."""
    if _is_device_root(PACKAGED):
        return PACKAGED
    root = source_checkout()
    if root is None:
        raise ToolError("glint's device files (boards/, firmware/) are missing from this installation",
                        hint="reinstall glint: pip install . (or pip install -e . in a checkout)")
    return root


def boards_dir() -> Path:
    return device_root() / "boards"


def firmware_dir() -> Path:
    return device_root() / "firmware"


def glintcore_dir() -> Path:
    """The device-side copy of the portable core (the same sources the host imports)."""
    return device_root() / "shared" / "glintcore"


def build_dir() -> Path:
    """Where build outputs go: ``<checkout>/build``, else ``$XDG_CACHE_HOME/glint`` (~/.cache/glint)."""
    root = source_checkout()
    if root is not None:
        return root / "build"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glint"


def node_modules_dirs() -> list[Path]:
    """Where a ``node_modules`` (npm ci) may hold the MicroPython WebAssembly port: the checkout, the cwd."""
    root = source_checkout()
    return [p / "node_modules" for p in ([root] if root else []) + [Path.cwd()]]


# --- the board registry -------------------------------------------------------------------------


def list_boards(root: Path | None = None) -> list[str]:
    """Every board id (boards/<id>/board.json), sorted."""
    base = (root or device_root()) / "boards"
    return sorted(p.parent.name for p in base.glob("*/board.json"))


def board_dir(board_id: str, root: Path | None = None) -> Path:
    """boards/<id>/ (UsageError naming the known boards when there is no such board)."""
    d = (root or device_root()) / "boards" / board_id
    if not board_id or "/" in board_id or board_id.startswith(".") or not (d / "board.json").is_file():
        raise UsageError(f"unknown board {board_id!r}", hint="known boards: " + ", ".join(list_boards(root)))
    return d


def load_board(board_id: str, root: Path | None = None) -> dict:
    """boards/<id>/board.json as a dict, checked as the firmware's board layer checks it at boot
    (glintcore.boardspec); UsageError naming the known boards otherwise."""
    from glintcore import boardspec
    from glintcore.errors import BoardError

    path = board_dir(board_id, root) / "board.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    try:
        return boardspec.check(cfg)
    except BoardError as e:
        raise UsageError(e.msg, hint=e.hint) from None


def usb_table(boards: Path | None = None) -> dict[tuple[int, int], list[str]]:
    """(vid, pid) -> board ids, from every board.json of ``boards`` (default boards_dir()): its ``usb``
    IDs and each ``usb.alt`` (a previous firmware's); simulated boards left out."""
    base = boards or boards_dir()
    table: dict[tuple[int, int], list[str]] = {}
    for path in sorted(base.glob("*/board.json")):
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


__all__ = ["device_root", "boards_dir", "firmware_dir", "glintcore_dir", "build_dir", "source_checkout",
           "node_modules_dirs", "list_boards", "board_dir", "load_board", "usb_table"]
