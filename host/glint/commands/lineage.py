"""`glint derive`, `glint bind`, `glint lookup`: lineage and secondary identifiers.

    glint derive PARENT --child ITEM [--child ...] --how cut|machined|split|...
    glint bind ITEM (--qr | --nfc | --serial) VALUE
    glint lookup (--qr | --nfc | --serial) VALUE

A derived item's twin (and so its certificates) says what it was made from; an identifier
finds a twin but does not authenticate it: `glint scan --qr VALUE` still checks the coating.
Library: glint.workflows.lineage.
"""

from __future__ import annotations

import json

from glint.home import home_of
from glint.textsafe import clean


def _id_options(p, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--qr", metavar="VALUE", help="a QR code label (its text or URL)")
    g.add_argument("--nfc", metavar="VALUE", help="an NFC chip's id")
    g.add_argument("--serial", metavar="VALUE", help="a printed or engraved serial / barcode")


def _scheme(args) -> tuple[str, str]:
    return next((s, getattr(args, s)) for s in ("qr", "nfc", "serial") if getattr(args, s) is not None)


def register(sub) -> None:
    from glint.workflows.lineage import HOW

    p = sub.add_parser("derive", help="create items derived from a parent (cut, machined, split)",
                       description="Record that PARENT was made into each --child (new items, with the lineage "
                                   "in both twins and in the children's certificates). Enroll each child's own "
                                   "coating afterwards with glint enroll -p URL --item CHILD.")
    p.add_argument("parent", help="the parent item (e.g. a billet)")
    p.add_argument("--child", action="append", required=True, metavar="ITEM", help="a new item made from it (repeatable)")
    p.add_argument("--how", choices=HOW, default="cut", help="how the children were made (default cut)")
    p.add_argument("--operator", help="operator recorded with the event")
    p.add_argument("--location", help="where it was done (recorded with the event)")
    p.add_argument("--note", help="free text recorded with the event")
    p.add_argument("--json", action="store_true", help="print one JSON object (parent, children, events)")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("bind", help="bind a secondary identifier (QR, NFC, serial) to an item")
    p.add_argument("item", help="item id")
    _id_options(p)
    p.add_argument("--operator", help="operator recorded with the event")
    p.add_argument("--json", action="store_true", help="print one JSON object (item, scheme, value, index)")
    p.set_defaults(func=cmd_bind)

    p = sub.add_parser("lookup", help="find the item a secondary identifier is bound to")
    _id_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (item, scheme, value, twin)")
    p.set_defaults(func=cmd_lookup)


def cmd_derive(args) -> int:
    from glint.workflows import HostSession
    from glint.workflows.lineage import derive

    with HostSession(home_of(args), operator=args.operator, location=args.location) as host:
        added = derive(host, args.parent, args.child, args.how, args.operator, args.location, args.note)
    if args.json:
        print(json.dumps({"parent": args.parent, "children": args.child, "how": args.how,
                          "events": [a.index for a in added]}))
    else:
        print(clean(f"{args.parent} {args.how} into {', '.join(args.child)} (events {added[0].index}.."
                    f"{added[-1].index}); enroll each: glint enroll -p URL --item CHILD"))
    return 0


def cmd_bind(args) -> int:
    from glint.workflows import HostSession
    from glint.workflows.lineage import bind

    scheme, value = _scheme(args)
    with HostSession(home_of(args), operator=args.operator) as host:
        a = bind(host, args.item, scheme, value, args.operator)
    if args.json:
        print(json.dumps({"item": a.item, "scheme": scheme, "value": value, "index": a.index}))
    else:
        print(clean(f"{scheme} {value} -> {a.item} (event {a.index}); it finds the twin, the coating authenticates"))
    return 0


def cmd_lookup(args) -> int:
    from glint.workflows import HostSession
    from glint.workflows.lineage import lineage_line, resolve

    scheme, value = _scheme(args)
    with HostSession(home_of(args)) as host:
        item = resolve(host, scheme, value)
        st = host.ledger.item(item)
    if args.json:
        print(json.dumps({"item": item, "scheme": scheme, "value": value, "twin": st.as_dict()}, default=str))
    else:
        line = lineage_line(st)
        print(clean(f"{item} ({st.brand}, {st.provenance_line()})" + (f"; {line}" if line else "")))
    return 0
