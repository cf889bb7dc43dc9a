"""glint virtual-scanner: the firmware on real MicroPython (the Unix port, else WebAssembly), its link on TCP.

    glint virtual-scanner --listen 127.0.0.1:7777 --flash ./vflash --item-seed 7 --control 127.0.0.1:7778

pyserial's socket://127.0.0.1:7777 (and mpremote) reach it like a USB board. The flash
defaults to <glint home>/virtual-scanner/flash. Every capture is a new placement of the
item (rotation, shift, scale, tilt), noise and exposure unless a capture seed is pinned
(--capture-seed, or "capture_seed" on the control port). The control port takes JSON
lines, one answer line each (glint.vscanner.control).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from glint.address import parse_listen
from glint.errors import UsageError
from glint.vscanner.lens import LensSpec
from glint.vscanner.server import RUNTIME_NAMES, RUNTIMES, VirtualScanner, default_runtime

_log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("virtual-scanner", help="run the scanner firmware as a virtual device on TCP")
    p.add_argument("--listen", default="127.0.0.1:7777", metavar="HOST:PORT",
                   help="address of the device link (default 127.0.0.1:7777; port 0 picks a free one)")
    p.add_argument("--flash", default=None,
                   help="host directory holding the device flash, kept across reboots "
                        "(default: <glint home>/virtual-scanner/flash)")
    lens = p.add_mutually_exclusive_group()
    lens.add_argument("--item-seed", type=int, default=None, help="an enrolled item's coating under the lens")
    lens.add_argument("--empty", action="store_true", help="nothing under the lens")
    lens.add_argument("--frames", default=None, metavar="DIR", help="play a folder of PNG/PGM frames")
    p.add_argument("--counterfeit", action="store_true", help="a counterfeit of --item-seed (another coating)")
    p.add_argument("--capture-seed", type=int, default=None,
                   help="pin the placement/noise/exposure seed (default: a new capture every time)")
    p.add_argument("--profile", default="field", help="simulator profile: bench, field, harsh")
    p.add_argument("--control", default=None, metavar="HOST:PORT", help="JSON-lines control port")
    p.add_argument("--blank", action="store_true",
                   help="MicroPython only, no firmware image: install it with 'glint fw deploy'")
    p.add_argument("--heap", default=None, metavar="BYTES|BOARD",
                   help="the device's heap (unix runtime: -X heapsize): bytes, or a board id for its board.json "
                        "heap_bytes, to run the scanner under that board's budget")
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="unix (the MicroPython Unix port, default where installed), node (MicroPython "
                        "WebAssembly under Node) or cpython (only where neither is installed)")
    p.set_defaults(func=cmd_virtual_scanner)


def default_flash(home=None) -> Path:
    """<glint home>/virtual-scanner/flash (home: --home, else $GLINT_HOME, else ~/.glint; it must exist)."""
    from glint.home import Home

    root = Home(home).root
    if not root.is_dir():
        raise UsageError(f"no glint home at {root} for the virtual scanner's flash",
                         hint="create it with 'glint init', or give --flash DIR")
    return root / "virtual-scanner" / "flash"


def heap_of(text: str | None) -> int | None:
    """--heap: a byte count, or a board id whose board.json gives heap_bytes."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    from glint.fw.build import load_board

    heap = load_board(text).get("heap_bytes")
    if not isinstance(heap, int):
        raise UsageError(f"board {text!r} states no heap_bytes", hint="give --heap BYTES")
    return heap


def lens_from_args(args) -> LensSpec:
    if args.frames:
        return LensSpec("frames", frames=args.frames)
    if args.empty:
        return LensSpec("empty", capture_seed=args.capture_seed)
    seed = 1 if args.item_seed is None else args.item_seed
    return LensSpec("counterfeit" if args.counterfeit else "item", item_seed=seed,
                    capture_seed=args.capture_seed, profile=args.profile)


def _check_free(listen: str, what: str) -> None:
    """Refuse a busy address here, in one line, before the device process fails on it."""
    import socket

    host, port = parse_listen(listen, what)
    if port == 0:
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise UsageError(f"cannot listen on {listen}: {e.strerror or e}",
                         hint=f"is another program on that port? choose another {what.split()[0]} "
                              "(port 0 picks a free one)") from None


def cmd_virtual_scanner(args) -> int:
    from glint.vscanner.control import serve_control

    if args.counterfeit and args.item_seed is None:
        raise UsageError("--counterfeit needs --item-seed N (the item it imitates)")
    _check_free(args.listen, "--listen address")
    flash = Path(args.flash) if args.flash else default_flash(getattr(args, "home", None))
    try:
        flash.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the flash folder {flash}: {e.strerror or e}",
                         hint="give --flash a folder you can write") from None
    vs = VirtualScanner(flash, listen=args.listen, lens=lens_from_args(args),
                        runtime=args.runtime or default_runtime(), image=not args.blank, heap=heap_of(args.heap))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    vs.start()
    ctl = None
    try:
        if args.control:
            ctl = serve_control(vs, args.control)
        where = f", control on {parse_listen(args.control)[0]}:{ctl.server_address[1]}" if ctl else ""
        print(f"glint virtual scanner ({vs.runtime}: firmware on {RUNTIME_NAMES[vs.runtime]}) on {vs.url}, "
              f"flash {vs.flash_dir}{where}", flush=True)
        while not stop.is_set():
            if vs.proc is None or vs.proc.poll() is not None:
                print("glint: virtual scanner process ended", file=sys.stderr)
                return 1
            stop.wait(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if ctl:
            ctl.shutdown()
        vs.close()
