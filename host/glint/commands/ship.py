"""glint ship: shipments between the organizations of a deployment (glint.orgs).

    glint ship offer ITEM... --to ORG [--note T]   a shipment: pending until the receiver accepts
    glint ship accept|reject|cancel ID [--reason T]
    glint ship list [--org ORG] [--json]

Run on the deployment's home, these act as its operator (for either side of a shipment); each
organization's own hosts do the same over HTTP with their keys (docs/api.md: /v1/shipments).
Organizations: glint org; read access for another organization: glint share.
"""

from __future__ import annotations

import argparse
import json

from glint.home import home_of
from glint.textsafe import clean


def register(sub) -> None:
    p = sub.add_parser("ship", help="shipments: hand items to another organization, once it accepts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = p.add_subparsers(dest="ship_cmd", metavar="SUBCOMMAND", required=True)
    q = ssub.add_parser("offer", help="offer items to another organization (pending until it accepts)")
    q.add_argument("items", nargs="+", metavar="ITEM", help="the items (all of one organization)")
    q.add_argument("--to", required=True, metavar="ORG", help="the receiving organization")
    q.add_argument("--note", help="a note for the receiver (e.g. the order number)")
    q.add_argument("--op", help="who offers it (operator)")
    q.add_argument("--json", action="store_true", help="print the shipment as JSON")
    q.set_defaults(func=cmd_offer)
    for act, text in (("accept", "accept a shipment: its items become the receiver's"),
                      ("reject", "refuse a shipment: the sender keeps its items"),
                      ("cancel", "withdraw a shipment offer")):
        q = ssub.add_parser(act, help=text)
        q.add_argument("id", metavar="ID", help="the shipment id (12 hex digits, glint ship list)")
        q.add_argument("--reason", help="why (recorded in each item's history)")
        q.add_argument("--op", help="who decides (operator)")
        q.add_argument("--json", action="store_true", help="print the shipment as JSON")
        q.set_defaults(func=_DECIDE[act], act=act)
    q = ssub.add_parser("list", help="list shipments and their state (pending, accepted, ...)")
    q.add_argument("--org", help="only those from or to this organization")
    q.add_argument("--json", action="store_true", help="print the shipments as a JSON list")
    q.set_defaults(func=cmd_list)


class _Deployment:
    """The home's ledger and its glint.db's organizations, for one command."""

    def __init__(self, args):
        from glint.db import connect
        from glint.ledger import Keys, Ledger
        from glint.orgs import Orgs

        home = home_of(args)
        self.db = connect(home.db)
        self.orgs = Orgs(self.db)
        self._open = lambda: Ledger.open(home.ledger_target, keys=Keys.load(home.ledger_dir, create=True))

    def __enter__(self):
        self.led = self._open()
        return self

    def __exit__(self, *exc):
        self.led.close()
        self.db.close()


def _print_shipment(args, s) -> int:
    if args.json:
        print(json.dumps(s.to_dict()))
    else:
        print(clean(f"shipment {s.id} from {s.sender} to {s.receiver}: {s.state} ({len(s.items)} item"
                    f"{'s' if len(s.items) != 1 else ''}: {', '.join(s.items[:5])}{' ...' if len(s.items) > 5 else ''})"))
    return 0


def cmd_offer(args) -> int:
    from glint.orgs import offer

    with _Deployment(args) as d:
        s = offer(d.led, d.orgs, args.items, args.to, operator=args.op, note=args.note)
    return _print_shipment(args, s)


def _decide(args) -> int:
    from glint.orgs import decide

    with _Deployment(args) as d:
        s = decide(d.led, d.orgs, args.id, args.act, operator=args.op, reason=args.reason)
    return _print_shipment(args, s)


def cmd_accept(args) -> int:
    return _decide(args)


def cmd_reject(args) -> int:
    return _decide(args)


def cmd_cancel(args) -> int:
    return _decide(args)


_DECIDE = {"accept": cmd_accept, "reject": cmd_reject, "cancel": cmd_cancel}


def cmd_list(args) -> int:
    from glint.ledger.events import check_org
    from glint.orgs import shipments

    with _Deployment(args) as d:
        found = shipments(d.led, d.orgs, check_org(args.org) if args.org else None)
    if args.json:
        print(json.dumps([s.to_dict() for s in found]))
        return 0
    if not found:
        print("no shipments (glint ship offer ITEM --to ORG)")
    for s in found:
        _print_shipment(args, s)
    return 0
