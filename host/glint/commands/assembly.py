"""`glint assembly`: an item made of marked parts (each part an enrolled item of its own).

    glint assembly define ITEM --part NAME=PART_ITEM [--part ...]
    glint assembly show ITEM
    glint scan --item ITEM --parts [--feeder CMD | --yes]     scan it part by part

Library: glint.workflows.assembly (define_assembly, scan_assembly).
"""

from __future__ import annotations

import argparse
import json

from glint.home import home_of
from glint.textsafe import clean


def register(subparsers) -> None:
    p = subparsers.add_parser("assembly", help="assemblies: define an item's marked parts, show them",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="assembly_cmd", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser("define", help="record the parts of an assembly (one commit: the assembly and each part)")
    s.add_argument("item", help="the assembly's item id")
    s.add_argument("--part", action="append", required=True, metavar="NAME=PART_ITEM",
                   help="a part: its name in the assembly and its own item id (repeatable)")
    s.add_argument("--operator", help="operator recorded with the events")
    s.add_argument("--json", action="store_true", help="print one JSON object (item, parts, events)")
    s.set_defaults(func=cmd_define)
    s = sub.add_parser("show", help="an assembly's parts (or a part's assembly)")
    s.add_argument("item", help="item id")
    s.add_argument("--json", action="store_true", help="print one JSON object (item, parts, assembly, part)")
    s.set_defaults(func=cmd_show)


def cmd_define(args) -> int:
    from glint.workflows import HostSession
    from glint.workflows.assembly import define_assembly, parse_parts

    parts = parse_parts(args.part)
    with HostSession(home_of(args), operator=args.operator) as host:
        added = define_assembly(host, args.item, parts, operator=args.operator)
    if args.json:
        print(json.dumps({"item": args.item, "parts": parts, "events": [a.index for a in added]}))
    else:
        print(clean(f"assembly {args.item}: " + ", ".join(f"{k}={v}" for k, v in sorted(parts.items()))
                    + f" (events {added[0].index}..{added[-1].index})"))
    return 0


def cmd_show(args) -> int:
    from glint.ledger import Ledger

    with Ledger.open(home_of(args).ledger_target, readonly=True) as led:
        st = led.item(args.item)
    obj = {"item": st.item, "parts": st.parts, "assembly": st.assembly, "part": st.part_name}
    if args.json:
        print(json.dumps(obj))
        return 0
    lines = [f"{name}: {item}" for name, item in sorted(st.parts.items())]
    if st.assembly:
        lines.append(f"part {st.part_name!r} of {st.assembly}")
    print("\n".join(clean(ln) for ln in lines) or f"{clean(st.item)} is neither an assembly nor a part")
    return 0
