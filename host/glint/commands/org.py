"""glint org: the organizations of a deployment (glint.orgs; shipments: glint ship, grants: glint share).

    glint org create NAME [--label TEXT]           an organization (its keys: glint api-key create --org NAME)
    glint org list [--json]
    glint ship offer ITEM... --to ORG [--note T]   a shipment: pending until the receiver accepts
    glint ship accept|reject|cancel ID [--reason T]
    glint ship list [--org ORG] [--json]
    glint share grant|revoke ITEM... --with ORG    read access for another organization

Run on the deployment's home, these act as its operator (for either side of a shipment); each
organization's own hosts do the same over HTTP with their keys (docs/api.md: /v1/shipments, /v1/shares).
"""

from __future__ import annotations

import argparse
import json

from glint.home import home_of
from glint.textsafe import clean


def register(sub) -> None:
    p = sub.add_parser("org", help="the organizations of this deployment (who owns which items)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    osub = p.add_subparsers(dest="org_cmd", metavar="SUBCOMMAND", required=True)
    q = osub.add_parser("create", help="create an organization")
    q.add_argument("name", metavar="NAME", help="1..32 of a-z, 0-9 and '-' (e.g. acme-paris)")
    q.add_argument("--label", help="a readable name (default: NAME)")
    q.add_argument("--json", action="store_true", help="print the organization as JSON")
    q.set_defaults(func=cmd_create)
    q = osub.add_parser("list", help="list the organizations (default: the deployment's own)")
    q.add_argument("--json", action="store_true", help="print the organizations as a JSON list")
    q.set_defaults(func=cmd_list)


def cmd_create(args) -> int:
    from glint.db import connect
    from glint.orgs import Orgs

    db = connect(home_of(args).db)
    try:
        org = Orgs(db).create(args.name, args.label)
    finally:
        db.close()
    if args.json:
        print(json.dumps(org.to_dict()))
    else:
        print(clean(f"created organization {org.name} ({org.label}); its keys: glint api-key create --org {org.name}"))
    return 0


def cmd_list(args) -> int:
    from glint.db import connect
    from glint.orgs import Orgs

    db = connect(home_of(args).db)
    try:
        found = Orgs(db).all()
    finally:
        db.close()
    if args.json:
        print(json.dumps([o.to_dict() for o in found]))
    else:
        for o in found:
            print(clean(f"{o.name:<20} {o.label}"))
    return 0
