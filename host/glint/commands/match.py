"""glint enroll / verify / identify: a thin CLI over glint.match (see docs/matching.md)."""

from __future__ import annotations

import json
from pathlib import Path

from glint.cli import add_port_argument
from glint.errors import MatchError, UsageError

INPUT_HELP = "8-bit grayscale PNG/PGM, a JPEG photograph, or a signed scan (COSE_Sign1)"


def _load(paths, args=None):
    """Spots of each file; a signed scan only after its signature checked (glint.checks), or
    with --unchecked. A file is never fresh: nonce and counter are not checked here."""
    from glint.imagefiles import HEAD_BYTES, is_image
    from glint.match import load_spots, spots_from_descriptor
    from glint.match.spots import MAX_INPUT_BYTES

    out = []
    for p in paths:
        path = Path(p)
        try:
            head = path.open("rb").read(HEAD_BYTES) if path.stat().st_size <= MAX_INPUT_BYTES else b""
        except OSError:
            head = b""
        if not head or is_image(head) or getattr(args, "unchecked", False):
            out.append(load_spots(p))
            continue
        out.append(spots_from_descriptor(_checked_payload(path, args), str(p)))
    return out


def _checked_payload(path: Path, args) -> bytes:
    from glint.checks import verify_scan_signature
    from glint.home import Home

    pub = None
    if getattr(args, "pubkey", None):
        from glint.keys import load_public_key

        pub = load_public_key(args.pubkey)
    home = Home(getattr(args, "home", None))
    if pub is None and home.has_db():
        from glint.registry import Registry

        with Registry.open(home) as reg:
            return verify_scan_signature(path.read_bytes(), reg=reg)
    return verify_scan_signature(path.read_bytes(), pub)


def _db(path: str, must_exist: bool = True):
    from glint.match import Database

    db = Database(path)
    if must_exist and len(db) == 0:
        raise MatchError(f"database {path} is empty", hint="enroll items first: glint enroll --db DIR --item ID FILE")
    return db


def cmd_enroll(args) -> int:
    from glint.match import enroll

    if args.port:  # scanner source: checked scans into the home's database and ledger (glint.workflows)
        return _enroll_from_scanner(args)
    given = [o for o, v in (("--provenance", args.provenance), ("--reason", args.reason), ("--by", args.by),
                            ("--operator", args.operator), ("--brand-key-file", args.brand_key_file)) if v]
    if given:
        raise UsageError(f"{given[0]} is for enrollments from a scanner (-p), which write the ledger",
                         "a --db enrollment writes only the matcher database")
    if not args.db or not args.files:
        raise UsageError("give --db DIR and capture FILES, or --port URL to enroll from a scanner")
    db = _db(args.db, must_exist=False)
    if args.item in db and not args.replace:
        raise MatchError(f"item {args.item!r} is already enrolled", hint="use --replace to re-enroll it")
    captures = _load(args.files, args)
    cal = None
    if args.calibration:
        if db.params is not None:
            raise UsageError("--calibration is for a new database",
                             hint=f"store it in {args.db} with: glint lab calibrate --captures DIR --apply {args.db}")
        try:
            cal = json.loads(Path(args.calibration).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read calibration {args.calibration}: {e}") from None
    ref = enroll(captures, db.params, item=args.item, calibration=cal)
    db.add(args.item, ref, replace=args.replace)
    out = {"item": args.item, "spots": len(ref.xy), "captures": ref.captures, "quality": ref.info}
    print(json.dumps(out) if args.json else f"enrolled {args.item}: {len(ref.xy)} spots from {ref.captures} capture(s)")
    return 0


def _enroll_from_scanner(args) -> int:
    """``glint enroll -p URL --item ID [--captures N]``: checked scans into the home's matcher and ledger."""
    import sys

    from glint.address import resolve_port
    from glint.home import home_of
    from glint.link import Timeouts, open_scanner
    from glint.workflows import HostSession, enroll_from_scanner

    if args.files:
        raise UsageError("give either capture FILES or -p/--port, not both")
    home = home_of(args)
    if args.db and Path(args.db).resolve() != home.match_dir.resolve():
        raise UsageError("with -p/--port the database is the home's (HOME/match)", hint="use --home instead of --db")
    from glint.commands.lifecycle import _brand_secret
    from glint.textsafe import clean
    from glint.workflows.enroll import provenance_for

    with HostSession(home, operator=args.operator) as host:
        prov = None
        if not host.ledger.store.item_leaves(args.item):  # a new item: its provenance, checked before any capture
            prov = provenance_for(host, args.provenance, args.by, args.reason, _brand_secret(args))
        elif args.provenance or args.reason or args.by:
            raise UsageError(f"item {args.item} is already registered ({host.ledger.item(args.item).provenance_line()})",
                             "--provenance, --reason and --by describe a new item")
        with open_scanner(resolve_port(args.port), Timeouts.from_config(home.section("link"))) as sc:
            out = enroll_from_scanner(host, sc, args.item, captures=args.captures, replace=args.replace,
                                      between=lambda i: print(f"capture {i + 1}/{args.captures}", file=sys.stderr),
                                      on_guidance=lambda t: print(f"capture: {t}; scanning again", file=sys.stderr),
                                      provenance=prov)
        line = host.ledger.item(out.item).provenance_line()
    if args.json:
        print(json.dumps({"item": out.item, "spots": out.spots, "captures": out.captures,
                          "ledger_index": out.ledger_index, "provenance": prov}))
    else:
        print(clean(f"enrolled {out.item}: {out.spots} spots from {out.captures} scanner capture(s), "
                    f"ledger event {out.ledger_index}; {line}"))
    return 0


def cmd_verify(args) -> int:
    from glint.match import verify

    db = _db(args.db)
    ref = db.reference(args.item)
    (probe,) = _load([args.file], args)
    res = verify(ref, probe)
    d = {"item": args.item, **res.to_dict()}
    if args.json:
        print(json.dumps(d))
    else:
        verdict = "MATCH" if res.match else "NO MATCH"
        noise = ""
        if res.residual_p is not None:
            noise = (f", residual {res.residual:.3f} px vs expected {res.expected_noise:.3f} px "
                     f"(p {res.residual_p:.2g})")
        print(f"{verdict} {args.item}: log10 FAR {res.log10_far:.1f}, {res.matched} spots matched{noise}, {res.reason}")
    return 0 if res.match else 1


def cmd_identify(args) -> int:
    from glint.match import identify

    db = _db(args.db)
    if args.rebuild:
        db.rebuild()
    (probe,) = _load([args.file], args)
    res = identify(db, probe)
    if args.json:
        print(json.dumps(res.to_dict()))
    else:
        print(f"{res.item or 'no item'} (log10 FAR {res.log10_far:.1f}, {len(res.candidates)} candidates)")
    return 0 if res.item else 1


def cmd_unenroll(args) -> int:
    db = _db(args.db)
    db.remove(args.item)
    print(json.dumps({"item": args.item, "removed": True}) if args.json else f"removed {args.item}")
    return 0


def _add_scan_key_arguments(p) -> None:
    p.add_argument("--pubkey", metavar="KEY", help="check a signed scan with this device key (SEC1 hex or PEM); "
                   "default: the device provisioned in the home")
    p.add_argument("--unchecked", action="store_true",
                   help="match a signed scan without checking its signature (lab use; the result proves nothing)")


def register(sub) -> None:
    p = sub.add_parser("enroll", help="enroll an item from one or more captures (images or signed scans)")
    p.add_argument("--db", metavar="DIR", help="database directory (created if missing; with -p: HOME/match)")
    p.add_argument("--item", required=True, help="item id")
    add_port_argument(p, default_help="none: enroll from FILES; with -p the scanner's checked scans go to the "
                                      "home's matcher and ledger")
    p.add_argument("--captures", type=int, default=3, help="with -p/--port: captures per item (default 3)")
    p.add_argument("--replace", action="store_true", help="re-enroll an item that is already enrolled")
    p.add_argument("--provenance", choices=("factory", "later"),
                   help="with -p, a new item's provenance: factory (the brand's act: needs the brand credential, "
                        "as glint intake --brand) or later; default [enroll] provenance of config.toml, else later")
    p.add_argument("--reason", choices=("vintage", "pre-owned", "re-coated"),
                   help="with -p, why a later enrollment is after the factory (recorded; default none given)")
    p.add_argument("--by", help="with -p, who authenticated a later enrollment (default --operator, else user@host)")
    p.add_argument("--operator", help="with -p, who enrolls (recorded in the ledger)")
    p.add_argument("--brand-key-file", type=Path, metavar="FILE",
                   help="with -p and factory provenance: file holding the brand credential (an API key of role "
                        "brand of this home); default $GLINT_BRAND_KEY")
    p.add_argument("--calibration", metavar="FILE", help="a new database: use this scanner calibration "
                   "(glint lab calibrate --captures DIR --out FILE)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("files", nargs="*", metavar="IMAGE_OR_SCAN", help=INPUT_HELP)
    _add_scan_key_arguments(p)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("verify", help="1:1: does a capture show the enrolled item?")
    p.add_argument("--db", required=True, metavar="DIR", help="matcher database directory")
    p.add_argument("--item", required=True, help="the enrolled item to compare with")
    p.add_argument("--json", action="store_true", help="print one JSON object (match, log10_far, matched, ...)")
    p.add_argument("file", metavar="IMAGE_OR_SCAN", help=INPUT_HELP)
    _add_scan_key_arguments(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("identify", help="1:N: which enrolled item does a capture show?")
    p.add_argument("--db", required=True, metavar="DIR", help="matcher database directory")
    p.add_argument("--json", action="store_true", help="print one JSON object (item, log10_far, candidates, ...)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the index first (drops removed items)")
    p.add_argument("file", metavar="IMAGE_OR_SCAN", help=INPUT_HELP)
    _add_scan_key_arguments(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("unenroll", help="remove an item from a database")
    p.add_argument("--db", required=True, metavar="DIR", help="matcher database directory")
    p.add_argument("--item", required=True, help="the item to remove")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_unenroll)
