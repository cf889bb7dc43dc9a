"""glint api-key: the HTTP API's keys of this (server) home (glint.server.auth, docs/api.md).

    glint api-key create --role ROLE --label HOST [--owner NAME] [--rate N] [--quota BYTES]   prints the key once
    glint api-key list [--json]                                                 keys, roles, usage
    glint api-key revoke ID                                                     refused from the next request
"""

from __future__ import annotations

import json
import time

from glint.home import home_of
from glint.textsafe import clean


def register(sub) -> None:
    p = sub.add_parser("api-key", help="create, list and revoke the API keys of this server's HTTP API")
    ksub = p.add_subparsers(dest="api_key_cmd", metavar="SUBCOMMAND", required=True)

    from glint.server.auth import DEFAULT_QUOTA_BYTES, DEFAULT_RATE_PER_S, ROLES

    q = ksub.add_parser("create", help="create a key for one host (shown once; only its hash is kept)")
    q.add_argument("--role", required=True, choices=ROLES,
                   help="bench/field: upload scans and their events; brand: manage items; auditor: read all of its --org; "
                        "owner/regulator/recycler: read the passport fields of that audience")
    q.add_argument("--owner", metavar="NAME",
                   help="an owner key's owner identity, as transfers name it (required with --role owner): "
                        "it reads owner fields only of the items NAME owns now")
    q.add_argument("--org", metavar="ORG",
                   help="the organization the key acts for (glint org create; default: the deployment's own, "
                        "'default'): it reads and changes only that organization's items and those shared with it")
    q.add_argument("--label", required=True, help="the host or person the key is for (e.g. bench-paris-1)")
    q.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_S,
                   help=f"requests per second (default {DEFAULT_RATE_PER_S:g}; bursts of twice that)")
    q.add_argument("--quota", type=int, default=DEFAULT_QUOTA_BYTES,
                   help=f"bytes of events and scans the key may add (default {DEFAULT_QUOTA_BYTES})")
    q.add_argument("--json", action="store_true", help="print one JSON object (the record and the key)")
    q.set_defaults(func=cmd_create)

    q = ksub.add_parser("list", help="list keys: id, role, label, usage, revoked")
    q.add_argument("--json", action="store_true", help="print the keys as a JSON list")
    q.set_defaults(func=cmd_list)

    q = ksub.add_parser("revoke", help="revoke a key: refused from its next request on")
    q.add_argument("key_id", metavar="ID", help="the key's id (8 hex digits) or the key itself")
    q.add_argument("--json", action="store_true", help="print the revoked key's record as JSON")
    q.set_defaults(func=cmd_revoke)


def _store(args):
    from glint.server.auth import KeyStore

    return KeyStore(home_of(args).db)


def _when(t):
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def cmd_create(args) -> int:
    ks = _store(args)
    try:
        rec, key = ks.create(args.role, args.label, args.rate, args.quota, owner=args.owner, org=args.org)
    finally:
        ks.close()
    if args.json:
        print(json.dumps({**rec.to_dict(), "key": key}))
    else:
        bound = (f" (owner {rec.owner})" if rec.owner else "") + (f" of {rec.org}" if rec.org else "")
        print(clean(f"created {rec.role} key {rec.key_id}{bound} for {rec.label}; give it to that host (shown once):"))
        print(key)
    return 0


def cmd_list(args) -> int:
    ks = _store(args)
    try:
        keys = ks.list()
    finally:
        ks.close()
    if args.json:
        print(json.dumps([k.to_dict() for k in keys]))
        return 0
    if not keys:
        print("no API keys (glint api-key create --role ROLE --label HOST)")
    for k in keys:
        state = f"REVOKED {_when(k.revoked_at)}" if k.revoked_at else "active"
        role = f"{k.role}={k.owner}" if k.owner else k.role
        print(clean(f"{k.key_id}  {role:<9} {k.organization:<12} {k.label:<20} {k.rate_per_s:g}/s  "
                    f"{k.bytes_used}/{k.quota_bytes} bytes  last used {_when(k.last_used)}  {state}"))
    return 0


def cmd_revoke(args) -> int:
    ks = _store(args)
    try:
        k = ks.revoke(args.key_id)
    finally:
        ks.close()
    if args.json:
        print(json.dumps(k.to_dict()))
    else:
        print(clean(f"revoked {k.role} key {k.key_id} ({k.label}): refused from its next request"))
    return 0
