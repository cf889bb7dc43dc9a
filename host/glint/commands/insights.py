"""`glint insights`: quick resales by location, out-of-market scans, scans per item per month.

    glint insights [--days N] [--regions FILE.json] [--brand B] [--out DIR] [--json]

Reads the home's ledger (scan and transfer events); writes CSV files and insights.html
(inline SVG charts) into DIR (default <home>/insights). Library: glint.insights.
"""

from __future__ import annotations

import json
from pathlib import Path

from glint.errors import UsageError
from glint.home import home_of


def register(sub) -> None:
    p = sub.add_parser("insights", help="brand insights: quick resales, out-of-market scans, scans per month",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=30, metavar="N",
                   help="a resale is a transfer within N days of the item's first sale (default 30)")
    p.add_argument("--regions", metavar="FILE",
                   help="JSON {location: region} for scan locations (default: the last comma part of the location)")
    p.add_argument("--brand", help="only this brand's items")
    p.add_argument("--out", metavar="DIR", help="report directory (default <home>/insights)")
    p.add_argument("--json", action="store_true", help="print every figure as one JSON object")
    p.set_defaults(func=cmd_insights)


def _regions(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read --regions {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"--regions {path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UsageError(f"--regions {path}: expected a JSON object of location -> region strings")
    return data


def cmd_insights(args) -> int:
    from glint.insights import collect, write_insights
    from glint.ledger import Ledger

    home = home_of(args)
    regions = _regions(args.regions)
    with Ledger.open(home.ledger_target, readonly=True) as led:
        ins = collect(led, args.days, regions, args.brand)
    paths = write_insights(ins, Path(args.out) if args.out else home.root / "insights")
    if args.json:
        print(json.dumps(dict(ins.to_dict(), reports={k: str(v) for k, v in paths.items()})))
    else:
        print(f"{ins.items} items, {ins.events} events: {len(ins.resales)} resold within {args.days} days, "
              f"{len(ins.out_of_market)} scans outside their market, "
              f"{sum(ins.scans_per_month.values())} scans in {len(ins.scans_by_month)} month(s)")
        print(f"reports: {paths['html']}  {paths['resales'].name}  {paths['out_of_market'].name}  "
              f"{paths['scans_per_month'].name}")
    return 0
