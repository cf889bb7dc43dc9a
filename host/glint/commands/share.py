"""glint share: sharing grants between the organizations of a deployment (glint.orgs).

    glint share grant|revoke ITEM... --with ORG    read access for another organization

Run on the deployment's home, these act as its operator; each organization's own hosts do the
same over HTTP with their keys (docs/api.md: /v1/shares). Organizations: glint org; handing items
over: glint ship.
"""

from __future__ import annotations

import argparse
import json

from glint.textsafe import clean


def register(sub) -> None:
    p = sub.add_parser("share", help="sharing grants: let another organization read chosen items",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    hsub = p.add_subparsers(dest="share_cmd", metavar="SUBCOMMAND", required=True)
    for act, text in (("grant", "give another organization read access to items"),
                      ("revoke", "end an organization's read access to items")):
        q = hsub.add_parser(act, help=text)
        q.add_argument("items", nargs="+", metavar="ITEM", help="the items")
        q.add_argument("--with", dest="with_org", required=True, metavar="ORG", help="the other organization")
        q.add_argument("--op", help="who grants it (operator)")
        q.add_argument("--json", action="store_true", help="print the events appended as JSON")
        q.set_defaults(func=cmd_grant if act == "grant" else cmd_revoke, act=act)


def _share(args) -> int:
    from glint.commands.ship import _Deployment
    from glint.orgs import share

    with _Deployment(args) as d:
        done = share(d.led, d.orgs, args.items, args.with_org, args.act, operator=args.op)
    if args.json:
        print(json.dumps({"items": args.items, "with": args.with_org, "act": args.act,
                          "events": [a.index for a in done]}))
    else:
        verb = "may now read" if args.act == "grant" else "may no longer read"
        print(clean(f"{args.with_org} {verb} {', '.join(args.items)} (events {', '.join(str(a.index) for a in done)})"))
    return 0


def cmd_grant(args) -> int:
    return _share(args)


def cmd_revoke(args) -> int:
    return _share(args)
