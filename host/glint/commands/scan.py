"""glint scan: one scan on one scanner, checked, matched, recorded in the ledger, certified.

    glint scan [-p URL] [--item ID] [--json]

Without --item the scan is identified among the enrolled items (1:N). Without -p/--port
(or with -p auto) the only USB scanner found is used. Exit 0 on a pass, 1 on a fail / unknown item,
2 on an error (one line).
"""

from __future__ import annotations

import json
import sys

from glint.cli import add_port_argument
from glint.home import home_of


def register(sub):
    p = sub.add_parser("scan", help="scan an item and verify (--item) or identify it")
    add_port_argument(p)
    p.add_argument("--item", help="the item to verify against (omit to identify)")
    p.add_argument("--attempts", type=int, default=3, help="poor captures retried this many times (default 3)")
    p.add_argument("--operator", help="operator recorded in the ledger")
    p.add_argument("--location", help="location recorded in the ledger")
    p.add_argument("--no-cert", action="store_true", help="do not issue a certificate")
    p.add_argument("--json", action="store_true", help="print one JSON object (result, item, log10_far, ...)")
    p.set_defaults(func=cmd_scan)


def cmd_scan(args) -> int:
    from glint.address import resolve_port
    from glint.link import Timeouts, open_scanner
    from glint.workflows import HostSession

    home = home_of(args)
    with HostSession(home, operator=args.operator, location=args.location) as host:
        timeouts = Timeouts.from_config(home.section("link"))
        with open_scanner(resolve_port(args.port), timeouts) as sc:
            out = host.scan_and_process(
                sc, item=args.item, certificate=not args.no_cert, attempts=args.attempts,
                on_guidance=lambda text: print(f"capture: {text}; scanning again", file=sys.stderr))
    if args.json:
        print(json.dumps(out.to_dict()))
    else:
        c = out.checked
        head = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}[out.result]
        what = out.item or "no enrolled item"
        far = f", log10 FAR {out.log10_far:.1f}" if out.log10_far is not None else ""
        print(f"{head} {what}{far} (device {c.device_id}, counter {c.counter}, {out.reason})")
        if out.ledger_index is not None:
            print(f"ledger event {out.ledger_index}")
        if out.cert_path:
            print(f"certificate {out.cert_path}")
    return 0 if out.passed else 1
