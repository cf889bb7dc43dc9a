"""glint daemon: watch scanners, sync their offline spools, upload the outbox, report status."""

from __future__ import annotations

import json
import logging
import signal
import threading

from glint.cli import add_port_argument
from glint.home import home_of

_log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("daemon", help="watch scanners, sync spooled scans, upload to a remote ledger",
                       description="Run the field daemon: opens the configured ports (and USB scanners with "
                                   "--discover), syncs spooled button scans into the ledger exactly once, uploads "
                                   "the outbox to --remote, writes <home>/status.json. Stops on SIGTERM/SIGINT.")
    add_port_argument(p, multiple=True)
    p.add_argument("--discover", action="store_true", help="also watch USB scanners found by VID/PID")
    p.add_argument("--remote", metavar="URL", help="remote ledger to upload to (http://HOST:PORT)")
    p.add_argument("--operator", help="operator recorded with synced scans")
    p.add_argument("--location", help="location recorded with synced scans")
    p.add_argument("--once", action="store_true", help="one pass (connect, sync, upload), print the status, exit")
    p.add_argument("--json", action="store_true", help="with --once: the status as JSON (the default output of --once)")
    p.set_defaults(func=cmd_daemon)


def cmd_daemon(args) -> int:
    from glint.address import port_url
    from glint.daemon import Daemon

    home = home_of(args)
    cfg = home.section("daemon")
    ports = [port_url(p) for p in list(args.port) + [p for p in cfg.get("ports", []) if p not in args.port]]
    d = Daemon(home, ports, discover=args.discover or bool(cfg.get("discover")),
               remote=args.remote or cfg.get("remote"), operator=args.operator or cfg.get("operator"),
               location=args.location or cfg.get("location"))
    if args.once:
        try:
            st = d.run_once()
        finally:
            d.close()
        print(json.dumps(st, indent=1))
        return 0
    stop = threading.Event()

    def _on_signal(signum, _frame):
        _log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(f"glint daemon: running (home {home.root}); stop with Ctrl-C or SIGTERM", flush=True)
        d.run(stop)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    print("glint daemon: stopped", flush=True)
    return 0
