"""`glint passport`: product passport fields with audiences (who may read each field).

    glint passport set ITEM FIELD=VALUE ... --audience public|owner|regulator|recycler|brand
    glint passport show ITEM [--as READER]     every field locally, or what READER may read
    glint passport erase ITEM (FIELD ... | --all)   drop stored sealed values (erasure); the log still verifies

Library: glint.ledger.passport (set_fields, visible); HTTP: GET /v1/items/<id>/passport
returns the fields the API key's role may read (docs/lifecycle.md).
"""

from __future__ import annotations

import argparse
import json

from glint.home import home_of
from glint.ledger import events as ev
from glint.textsafe import clean


def register(subparsers) -> None:
    p = subparsers.add_parser("passport", help="product passport fields with audiences",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="passport_cmd", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser("set", help="set passport fields for one audience")
    s.add_argument("item", help="item id")
    s.add_argument("fields", nargs="+", metavar="FIELD=VALUE", help="passport fields to set (text values)")
    s.add_argument("--audience", required=True, choices=ev.AUDIENCES,
                   help="who may read these fields (brand reads every field; the others read public ones too)")
    s.add_argument("--operator", help="operator recorded with the event")
    s.add_argument("--json", action="store_true", help="print one JSON object (index, item, fields, audience)")
    s.set_defaults(func=cmd_set)
    s = sub.add_parser("show", help="an item's passport: every field locally, or what one reader may read")
    s.add_argument("item", help="item id")
    s.add_argument("--as", dest="reader", choices=ev.AUDIENCES,
                   help="show only what this reader may read (default: every field, with its audience)")
    s.add_argument("--json", action="store_true", help="print one JSON object {field: {value, audience}}")
    s.set_defaults(func=cmd_show)
    s = sub.add_parser("erase", help="erase an item's sealed values (salt and value): the log still verifies")
    s.add_argument("item", help="item id")
    s.add_argument("fields", nargs="*", metavar="FIELD",
                   help="passport field names, or event fields such as op, loc, owner (glint.ledger.sealed)")
    s.add_argument("--all", action="store_true", help="erase every sealed value of the item")
    s.add_argument("--json", action="store_true", help="print one JSON object (item, fields, dropped)")
    s.set_defaults(func=cmd_erase)


def cmd_set(args) -> int:
    from glint.ledger import Keys, Ledger
    from glint.ledger.passport import parse_assignments, set_fields

    home = home_of(args)
    fields = parse_assignments(args.fields)
    with Ledger.open(home.ledger_target, keys=Keys.load(home.ledger_dir, create=True)) as led:
        a = set_fields(led, args.item, fields, args.audience, args.operator)
    if args.json:
        print(json.dumps({"index": a.index, "item": a.item, "fields": fields, "audience": args.audience}))
    else:
        print(clean(f"passport of {a.item}: {', '.join(sorted(fields))} for {args.audience} (event {a.index})"))
    return 0


def cmd_show(args) -> int:
    from glint.ledger import Ledger
    from glint.ledger.passport import audience_of, visible

    home = home_of(args)
    with Ledger.open(home.ledger_target, readonly=True) as led:
        st = led.item(args.item)
    fields = visible(st, args.reader) if args.reader else st.passport
    obj = {k: {"value": v, "audience": audience_of(st, k)} for k, v in sorted(fields.items())}
    if args.json:
        print(json.dumps({"item": st.item, "reader": args.reader, "fields": obj}))
    else:
        print("\n".join(clean(f"{k}: {o['value']}  [{o['audience']}]") for k, o in obj.items())
              or "(no passport fields" + (f" {args.reader} may read)" if args.reader else ")"))
    return 0


def cmd_erase(args) -> int:
    from glint.errors import UsageError
    from glint.ledger import Keys, Ledger

    if bool(args.fields) == bool(args.all):
        raise UsageError("name the fields to erase, or --all (not both)")
    home = home_of(args)
    with Ledger.open(home.ledger_target, keys=Keys.load(home.ledger_dir, create=True)) as led:
        dropped = led.erase(args.item, None if args.all else args.fields)
        ok = led.verify().ok
    if args.json:
        print(json.dumps({"item": args.item, "fields": args.fields or None, "dropped": dropped, "log_ok": ok}))
    else:
        print(clean(f"erased {dropped} sealed values of {args.item}; the log " + ("verifies" if ok else "does NOT verify")))
    return 0 if ok else 1
