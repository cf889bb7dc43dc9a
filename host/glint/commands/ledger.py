"""`glint ledger`: inspect, prove, checkpoint and verify the custody ledger.

    glint ledger log [--from N] [--limit N] [--item ITEM]   list events
    glint ledger show ITEM                                 an item's twin and history
    glint ledger prove INDEX [--size N]                    inclusion proof of an event
    glint ledger prove --consistency SIZE1 [SIZE2]         consistency proof
    glint ledger checkpoint [--show]                       sign (or show) a checkpoint
    glint ledger verify                                    recompute everything; exit 1 naming the bad row
    glint ledger append KIND ITEM [--data JSON] [--scan FILE]   append one event (scripts, demos)

Options common to all: --home DIR (default $GLINT_HOME or ~/.glint), --ledger FILE
(default HOME/ledger.db), --json.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

from glint.db import is_url
from glint.errors import UsageError
from glint.home import home_of
from glint.ledger import Keys, Ledger
from glint.ledger import events as ev
from glint.textsafe import clean


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--ledger", metavar="FILE", help="ledger database file (default HOME/ledger.db)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def register(subparsers) -> None:
    common = _common()
    p = subparsers.add_parser("ledger", help="the tamper-evident custody ledger",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="ledger_cmd", metavar="SUBCOMMAND", required=True)

    s = sub.add_parser("log", parents=[common], help="list events")
    s.add_argument("--from", dest="start", type=int, default=0, help="first log index")
    s.add_argument("--limit", type=int, default=50, help="at most this many events (0: all)")
    s.add_argument("--item", help="only events of this item")
    s.set_defaults(func=cmd_log)

    s = sub.add_parser("show", parents=[common], help="an item's digital twin and history")
    s.add_argument("item", help="item id")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("prove", parents=[common], help="inclusion or consistency proof")
    s.add_argument("index", type=int, nargs="?", help="log index of the event")
    s.add_argument("--size", type=int, help="tree size (default: latest checkpoint, else current)")
    s.add_argument("--consistency", type=int, nargs="+", metavar="SIZE", help="SIZE1 [SIZE2]")
    s.set_defaults(func=cmd_prove)

    s = sub.add_parser("checkpoint", parents=[common], help="sign a checkpoint of the current tree")
    s.add_argument("--show", action="store_true", help="print the latest checkpoint without signing")
    s.set_defaults(func=cmd_checkpoint)

    s = sub.add_parser("verify", parents=[common], help="recompute the tree and check every chain")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("append", parents=[common], help="append one event (scripts and demos)")
    s.add_argument("kind", choices=ev.KINDS, help="event kind")
    s.add_argument("item", help="item id")
    s.add_argument("--data", default="{}", help="event data as JSON; 'ref'/'scan' digests as hex")
    s.add_argument("--scan", type=Path, help="file with the device-signed scan bytes to store")
    s.add_argument("--time", type=int, help="event time (Unix seconds; default now)")
    s.set_defaults(func=cmd_append)


def _path(args) -> Path | str:
    """--ledger FILE (or a postgresql:// URL), else the home's ledger (its database URL or ledger.db)."""
    if args.ledger:
        return args.ledger if is_url(args.ledger) else Path(args.ledger)
    return home_of(args).ledger_target


def _reader(args) -> Ledger:
    return Ledger.open(_path(args), readonly=True)


def _out(args, obj, text: str) -> None:
    if args.json:
        print(json.dumps(obj, default=_jsonable, indent=1))
    else:
        print(text)


def _jsonable(o):
    if isinstance(o, bytes):
        return o.hex()
    raise TypeError(type(o).__name__)


def _ts(t: int) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    except (OverflowError, OSError, ValueError):  # a time no append accepts any more, in an old log
        return f"t={t}"


def _event_dict(e) -> dict:
    return {"index": e.index, "kind": e.kind, "item": e.item, "seq": e.seq, "time": e.time,
            "data": e.data, "leaf_hash": e.hash.hex()}


def cmd_log(args) -> int:
    with _reader(args) as led:
        if args.item:
            evs = led.item(args.item).events[args.start:] if args.start else led.item(args.item).events
        else:
            stop = None if not args.limit else args.start + args.limit
            evs = list(led.events(args.start, stop))
        if args.limit:
            evs = evs[: args.limit]
        _out(args, [_event_dict(e) for e in evs],
             "\n".join(f"{e.index:>8}  {_ts(e.time)}  {clean(e.kind):<13} {clean(e.item)}  {e.summary()}"
                       for e in evs)
             or "(no events)")
    return 0


def cmd_show(args) -> int:
    with _reader(args) as led:
        st = led.item(args.item)
        obj = st.as_dict()
        obj["history"] = [_event_dict(e) for e in st.events]
        lines = [f"item        {st.item}", f"brand       {st.brand}", f"provenance  {st.provenance_line()}"]
        if st.assembly:
            lines.append(f"part        {st.part_name} of {st.assembly}")
        for name, part in sorted(st.parts.items()):
            lines.append(f"part        {name}: {part}")
        for k in ("owner", "custodian", "rented_to"):
            if getattr(st, k):
                lines.append(f"{k:<11} {getattr(st, k)}")
        from glint.ledger import lifecycle as lc

        lines.append(f"state       {lc.STATE_TEXT.get(st.state, st.state)} (since {_ts(st.since or 0)}, event "
                     f"{st.since_index}" + (f": {st.why}" if st.why else "") + ")")
        for k, v in sorted(st.passport.items()):
            lines.append(f"passport    {k}: {v}  [{st.passport_aud.get(k) or 'brand'}]")
        from glint.ledger.cert import lineage_line

        if st.lineage:
            lines.append(f"lineage     {lineage_line(st)}")
        for d in st.derivations:
            lines.append(f"derived     {d['how']} into {', '.join(d['children'])} (event {d['index']})")
        for scheme, values in sorted(st.identifiers.items()):
            lines += [f"identifier  {scheme} {v}" for v in values]
        for c in st.coatings:
            lines.append(f"coating     {c.id} (event {c.enrolled_index})"
                         + ("" if c.active else f", replaced by {c.replaced_by}"))
        lines = [clean(ln) for ln in lines]  # every part of these lines comes from event data
        lines.append("history")
        lines += [f"  {e.index:>8}  {_ts(e.time)}  {clean(e.kind):<13} {e.summary()}" for e in st.events]
        _out(args, obj, "\n".join(lines))
    return 0


def cmd_prove(args) -> int:
    with _reader(args) as led:
        latest = led.latest_checkpoint()
        if args.consistency:
            s1 = args.consistency[0]
            s2 = args.consistency[1] if len(args.consistency) > 1 else (latest[0].size if latest else led.size)
            proof = led.prove_consistency(s1, s2)
            obj = {"size1": s1, "size2": s2, "root1": led.root(s1).hex(), "root2": led.root(s2).hex(),
                   "proof": [h.hex() for h in proof]}
            _out(args, obj, "\n".join(f"{k}: {v}" for k, v in obj.items() if k != "proof")
                 + "\nproof:\n" + "\n".join("  " + h.hex() for h in proof))
            return 0
        if args.index is None:
            raise UsageError("give an event INDEX or --consistency SIZE1 [SIZE2]")
        size = args.size or (latest[0].size if latest and latest[0].size > args.index else led.size)
        p = led.prove(args.index, size)
        p.verify()
        obj = {"index": p.index, "tree_size": p.tree_size, "leaf_hash": p.leaf_hash.hex(),
               "root": p.root.hex(), "proof": [h.hex() for h in p.hashes],
               "checkpoint": latest[1] if latest and latest[0].size == size else None}
        text = (f"index: {p.index}\ntree_size: {p.tree_size}\nleaf_hash: {p.leaf_hash.hex()}\n"
                f"root: {p.root.hex()}\nproof:\n" + "\n".join("  " + h.hex() for h in p.hashes))
        _out(args, obj, text)
    return 0


def cmd_checkpoint(args) -> int:
    if args.show:
        with _reader(args) as led:
            latest = led.latest_checkpoint()
            if latest is None:
                raise UsageError("no checkpoint signed yet", "sign one with 'glint ledger checkpoint'")
            _out(args, {"note": latest[1]}, latest[1].rstrip("\n"))
        return 0
    keys = Keys.load(home_of(args).ledger_dir, create=True)
    with Ledger.open(_path(args), keys=keys) as led:
        note = led.checkpoint()
        _out(args, {"note": note}, note.rstrip("\n"))
    return 0


def cmd_verify(args) -> int:
    with _reader(args) as led:
        rep = led.verify()
    if args.json:
        print(json.dumps(rep.__dict__))
    elif rep.ok:
        print(f"ok: {rep.size} events, {rep.items} items, {rep.checkpoints} checkpoints; every chain and root checks")
    else:
        print(f"glint: ledger verification failed: {rep.problem}", file=sys.stderr)
    return 0 if rep.ok else 1


def _data_from_json(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--data is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise UsageError("--data must be a JSON object")
    for k in ("ref", "scan"):
        if isinstance(data.get(k), str):
            try:
                data[k] = bytes.fromhex(data[k])
            except ValueError:
                try:
                    data[k] = base64.b64decode(data[k], validate=True)
                except ValueError:
                    raise UsageError(f"--data {k} must be hex or base64") from None
    return data


def cmd_append(args) -> int:
    data = _data_from_json(args.data)
    scan = args.scan.read_bytes() if args.scan else None
    with Ledger.open(_path(args)) as led:
        a = led.append_event(args.kind, args.item, data, args.time, scan)
    _out(args, {"index": a.index, "leaf_hash": a.leaf_hash.hex(), "seq": a.seq},
         f"appended event {a.index} ({args.kind} {args.item}, item event {a.seq}) {a.leaf_hash.hex()}")
    return 0
