"""glint scan: one scan on one scanner, checked, matched, recorded in the ledger, certified.

    glint scan [-p URL] [--item ID | --qr V | --nfc V | --serial V] [--json]
    glint scan [-p URL] --item ASSEMBLY --parts [--feeder CMD | --yes] [--json]

Without --item the scan is identified among the enrolled items (1:N). --qr/--nfc/--serial
find the item by a bound identifier (glint bind); the coating still authenticates it.
--parts scans an assembly part by part (glint assembly define), prompting for each. Without -p/--port
(or with -p auto) the only USB scanner found is used. Exit 0 on a pass, 1 on a fail / unknown item,
2 on an error (one line).
"""

from __future__ import annotations

import json
import sys

from glint.cli import add_port_argument
from glint.errors import UsageError
from glint.home import home_of
from glint.textsafe import clean


def register(sub):
    p = sub.add_parser("scan", help="scan an item and verify (--item) or identify it")
    add_port_argument(p)
    p.add_argument("--item", help="the item to verify against (omit to identify)")
    for scheme in ("qr", "nfc", "serial"):
        p.add_argument(f"--{scheme}", metavar="VALUE",
                       help=f"find the item by its bound {scheme} identifier (glint bind); the coating authenticates")
    p.add_argument("--parts", action="store_true",
                   help="--item is an assembly: scan its own coating (if enrolled), then each part in turn")
    p.add_argument("--feeder", metavar="CMD",
                   help="with --parts: run CMD to place each part (env GLINT_ASSEMBLY, GLINT_PART, GLINT_ITEM) "
                        "instead of prompting")
    p.add_argument("--yes", action="store_true", help="with --parts: do not prompt; the parts are placed by other means")
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
    ids = [(s, getattr(args, s)) for s in ("qr", "nfc", "serial") if getattr(args, s)]
    if len(ids) + bool(args.item) > 1:
        raise UsageError("give one of --item, --qr, --nfc, --serial")
    if args.parts and not args.item:
        raise UsageError("--parts needs --item ASSEMBLY")
    if (args.feeder or args.yes) and not args.parts:
        raise UsageError("--feeder and --yes go with --parts")
    guidance = lambda text: print(f"capture: {text}; scanning again", file=sys.stderr)  # noqa: E731
    with HostSession(home, operator=args.operator, location=args.location) as host:
        timeouts = Timeouts.from_config(home.section("link"))
        item, via = args.item, None
        if ids:
            from glint.workflows.lineage import resolve

            via = {"scheme": ids[0][0], "value": ids[0][1]}
            item = resolve(host, *ids[0])
        if args.parts:
            return _scan_parts(args, host, timeouts, guidance)
        with open_scanner(resolve_port(args.port), timeouts) as sc:
            out = host.scan_and_process(sc, item=item, certificate=not args.no_cert, attempts=args.attempts,
                                        on_guidance=guidance, via=via)
    if args.json:
        print(json.dumps(out.to_dict()))
    else:
        c = out.checked
        head = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}[out.result]
        what = out.item or "no enrolled item"
        far = f", log10 FAR {out.log10_far:.1f}" if out.log10_far is not None else ""
        print(f"{head} {what}{far} (device {c.device_id}, counter {c.counter}, {out.reason})")
        if via:
            print(clean(f"found by {via['scheme']} {via['value']}; authenticated by its coating, not the label"))
        if out.ledger_index is not None:
            print(f"ledger event {out.ledger_index}")
        if out.cert_path:
            print(f"certificate {out.cert_path}")
    return 0 if out.passed else 1


def _scan_parts(args, host, timeouts, guidance) -> int:
    from glint.address import resolve_port
    from glint.link import open_scanner
    from glint.workflows.assembly import scan_assembly
    from glint.workflows.placing import choose_placer

    place = choose_placer(args.feeder, args.yes)
    with open_scanner(resolve_port(args.port), timeouts) as sc:
        out = scan_assembly(host, sc, args.item, place=place, certificate=not args.no_cert,
                            attempts=args.attempts, on_guidance=guidance)
    if args.json:
        print(json.dumps(out.to_dict()))
    else:
        for line in out.lines():
            print(clean(line))
        if out.ledger_index is not None:
            print(f"ledger event {out.ledger_index}")
        if out.cert_path:
            print(f"certificate {out.cert_path}")
    return 0 if out.passed else 1
