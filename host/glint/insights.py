"""Insights for brands, read from the ledger's scan (verify) and transfer events.

    ins = collect(ledger, resale_days=30, regions={"Paris": "EU"}, brand="ACME")
    ins.resales            items transferred again within N days of their first sale (with location)
    ins.resales_by_location
    ins.out_of_market      scans in a region other than the item's market
    ins.scans_per_month    {(item, "YYYY-MM"): scans}
    write_insights(ins, "out/")   resales.csv, out_of_market.csv, scans_per_month.csv, insights.html

Definitions (docs/lifecycle.md):

- first sale: an item's first ``transfer`` naming an owner; a resale: a later transfer naming an
  owner, within ``resale_days`` of the first. Its location is the transfer's ``loc`` when it has
  one, else the location of the item's last scan before it (else "unknown").
- market: the passport field ``market`` of the item (any audience: this is the brand's view).
- region of a scan: ``regions[loc]`` when a mapping is given (JSON {location: region}), else the
  last comma-separated part of the scan's ``loc`` ("Milan, IT" -> "IT"); compared with the market
  case-insensitively. Scans without a location or items without a market are not judged.
- scans: verify events (pass or fail), counted per item and calendar month (UTC).

One pass over the log; memory grows with the number of items, not events.
"""

from __future__ import annotations

import csv
import html
import time as _time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from glint.errors import UsageError
from glint.ledger import events as ev

DAY = 86400
DEFAULT_RESALE_DAYS = 30


@dataclass
class Insights:
    resale_days: int
    resales: list[dict] = field(default_factory=list)
    out_of_market: list[dict] = field(default_factory=list)
    scans_per_month: dict = field(default_factory=dict)    # (item, month) -> count
    items: int = 0
    events: int = 0

    @property
    def resales_by_location(self) -> dict:
        return dict(Counter(r["location"] for r in self.resales).most_common())

    @property
    def out_of_market_by_region(self) -> dict:
        return dict(Counter(r["region"] for r in self.out_of_market).most_common())

    @property
    def scans_by_month(self) -> dict:
        c: Counter = Counter()
        for (_item, month), n in self.scans_per_month.items():
            c[month] += n
        return dict(sorted(c.items()))

    def to_dict(self) -> dict:
        return {"resale_days": self.resale_days, "items": self.items, "events": self.events,
                "resales": self.resales, "resales_by_location": self.resales_by_location,
                "out_of_market": self.out_of_market, "out_of_market_by_region": self.out_of_market_by_region,
                "scans_per_month": [{"item": i, "month": m, "scans": n}
                                    for (i, m), n in sorted(self.scans_per_month.items())],
                "scans_by_month": self.scans_by_month}


def _month(t: int) -> str:
    return _time.strftime("%Y-%m", _time.gmtime(t))


def region_of(loc: str | None, regions: dict | None) -> str | None:
    if not loc:
        return None
    if regions is not None:
        return regions.get(loc)
    return loc.rsplit(",", 1)[-1].strip() or None


def collect(led, resale_days: int = DEFAULT_RESALE_DAYS, regions: dict | None = None,
            brand: str | None = None, only: set | frozenset | None = None) -> Insights:
    """Read every event of ``led`` (a Ledger) once; ``brand`` keeps only that brand's items, ``only``
    only these items (an organization's: glint.orgs.items_of)."""
    if resale_days < 0:
        raise UsageError("--days must not be negative")
    ins = Insights(resale_days)
    brand_of: dict[str, str] = {}
    market: dict[str, str] = {}
    last_loc: dict[str, str] = {}
    first_sale: dict[str, int] = {}
    scans: list[tuple] = []          # (item, time, loc, index): judged once every market is known
    per_month: Counter = Counter()
    for e in led.events():
        if only is not None and e.item not in only:
            continue
        ins.events += 1
        d = e.data
        if e.kind == ev.REGISTER:
            brand_of[e.item] = d.get("brand", "")
            m = (d.get("passport") or {}).get("market")
            if isinstance(m, str):
                market[e.item] = m
            continue
        if brand is not None and brand_of.get(e.item) != brand:
            continue
        if e.kind == ev.PASSPORT and isinstance(d["set"].get("market"), str):
            market[e.item] = d["set"]["market"]
        elif e.kind == ev.VERIFY:
            per_month[(e.item, _month(e.time))] += 1
            loc = d.get("loc")
            if isinstance(loc, str) and loc:
                last_loc[e.item] = loc
                scans.append((e.item, e.time, loc, e.index, d.get("res")))
        elif e.kind == ev.TRANSFER and d.get("owner"):
            loc = d.get("loc") if isinstance(d.get("loc"), str) else None
            loc = loc or last_loc.get(e.item) or "unknown"
            t0 = first_sale.get(e.item)
            if t0 is None:
                first_sale[e.item] = e.time
            elif e.time - t0 <= resale_days * DAY:
                ins.resales.append({"item": e.item, "first_sale": t0, "resale": e.time,
                                    "days": round((e.time - t0) / DAY, 2), "location": loc,
                                    "owner": d.get("owner"), "index": e.index})
        elif e.kind in (ev.SERVICE,) and isinstance(d.get("loc"), str):
            last_loc[e.item] = d["loc"]
    for item, t, loc, index, res in scans:
        m = market.get(item)
        r = region_of(loc, regions)
        if m and r and r.casefold() != m.casefold():
            ins.out_of_market.append({"item": item, "market": m, "location": loc, "region": r, "time": t,
                                      "result": res, "index": index})
    ins.scans_per_month = dict(per_month)
    ins.items = len(brand_of) if brand is None else sum(1 for b in brand_of.values() if b == brand)
    return ins


def _iso(t: int) -> str:
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(t))


CSV_TABLES = ("resales", "out_of_market", "scans_per_month")


def csv_rows(ins: Insights, table: str) -> list[list]:
    """The rows (header first) of one CSV table: resales, out_of_market or scans_per_month."""
    if table == "resales":
        return [["item", "first_sale", "resale", "days", "location", "owner", "index"]] + [
            [r["item"], _iso(r["first_sale"]), _iso(r["resale"]), r["days"], r["location"], r["owner"], r["index"]]
            for r in ins.resales]
    if table == "out_of_market":
        return [["item", "market", "location", "region", "time", "result", "index"]] + [
            [r["item"], r["market"], r["location"], r["region"], _iso(r["time"]), r["result"], r["index"]]
            for r in ins.out_of_market]
    if table == "scans_per_month":
        return [["item", "month", "scans"]] + [[item, month, n]
                                               for (item, month), n in sorted(ins.scans_per_month.items())]
    raise UsageError(f"no insights table {table!r}", "one of " + ", ".join(CSV_TABLES))


def csv_text(ins: Insights, table: str) -> str:
    """One CSV table as text (what write_insights writes to TABLE.csv)."""
    import io

    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(csv_rows(ins, table))
    return buf.getvalue()


def write_insights(ins: Insights, out_dir: str | Path) -> dict[str, Path]:
    """resales.csv, out_of_market.csv, scans_per_month.csv and insights.html in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {t: out / f"{t}.csv" for t in CSV_TABLES}
    paths["html"] = out / "insights.html"
    for t in CSV_TABLES:
        with open(paths[t], "w", newline="", encoding="utf-8") as f:
            f.write(csv_text(ins, t))
    paths["html"].write_text(render_html(ins), encoding="utf-8")
    return paths


def render_html(ins: Insights) -> str:
    from glint.svgplot import bar_chart

    e = html.escape
    by_loc = ins.resales_by_location
    by_region = ins.out_of_market_by_region
    months = ins.scans_by_month

    def table(head, rows):
        return ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>") if rows else "<p>none</p>"

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>glint insights</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:62em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #bbb;padding:.2em .5em;text-align:left}}th{{background:#eee}}</style></head><body>
<h1>glint insights</h1>
<p>{ins.items} items, {ins.events} events read. Files: resales.csv, out_of_market.csv, scans_per_month.csv.</p>
<h2>Resold within {ins.resale_days} days of the first sale ({len(ins.resales)})</h2>
{bar_chart(list(by_loc), list(by_loc.values()), "quick resales by location", "resales")}
{table(["item", "first sale", "resale", "days", "location"],
       [(r["item"], _iso(r["first_sale"]), _iso(r["resale"]), r["days"], r["location"]) for r in ins.resales])}
<h2>Scanned outside their market ({len(ins.out_of_market)})</h2>
{bar_chart(list(by_region), list(by_region.values()), "out-of-market scans by region", "scans")}
{table(["item", "market", "location", "region", "time", "result"],
       [(r["item"], r["market"], r["location"], r["region"], _iso(r["time"]), r["result"]) for r in ins.out_of_market])}
<h2>Scans per month</h2>
{bar_chart(list(months), list(months.values()), "scans per month (all items)", "scans")}
<p>Per item and month: scans_per_month.csv.</p>
</body></html>
"""


__all__ = ["collect", "write_insights", "csv_rows", "csv_text", "CSV_TABLES", "render_html", "Insights", "region_of"]
