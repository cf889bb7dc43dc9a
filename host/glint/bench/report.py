"""Bench reports: one row per item as CSV and JSON, and a one-page HTML summary."""

from __future__ import annotations

import csv
import html
import json
import statistics
import time
from dataclasses import fields
from pathlib import Path

from glint.bench.runner import BatchResult, ItemResult
from glint.svgplot import histogram

STAGES = [("capture", "t_capture_ms"), ("detect", "t_detect_ms"), ("sign", "t_sign_ms"), ("link", "t_link_ms"),
          ("host checks", "t_check_ms"), ("match", "t_match_ms"), ("ledger", "t_ledger_ms"), ("total", "t_total_ms")]
COLUMNS = [f.name for f in fields(ItemResult)]


def stage_medians(results: list[ItemResult]) -> dict[str, float | None]:
    """Median milliseconds of each stage over the items that reached it."""
    out = {}
    for label, attr in STAGES:
        vals = [getattr(r, attr) for r in results if getattr(r, attr) is not None]
        out[label] = round(statistics.median(vals), 2) if vals else None
    return out


def summary(batch: BatchResult) -> dict:
    res = batch.results
    per_port: dict[str, dict] = {}
    for r in res:
        p = per_port.setdefault(r.port, {"items": 0, "failed": 0})
        p["items"] += 1
        p["failed"] += int(not r.ok)
    return {
        "batch": batch.batch_id, "items": len(res), "ok": sum(r.ok for r in res), "failed": len(batch.failures),
        "outcomes": {k: sum(r.outcome == k for r in res) for k in ("pass", "fail", "error")},
        "scanners": batch.scanners, "per_scanner": per_port,
        "started": batch.started, "finished": batch.finished,
        "seconds": round(batch.finished - batch.started, 3),
        "scans_per_minute": round(batch.scans_per_minute, 2), "stopped_early": batch.stopped_early,
        "interrupted": batch.interrupted, "stopped_by": batch.stopped_by,
        "certificates": sum(1 for r in res if r.certificate),
        "stage_median_ms": stage_medians(res),
    }


def write_reports(batch: BatchResult, out_dir: str | Path) -> dict[str, Path]:
    """Write report.csv, report.json and report.html into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "report.csv", "json": out / "report.json", "html": out / "report.html"}
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in batch.results:
            w.writerow(r.as_dict())
    paths["json"].write_text(json.dumps({"summary": summary(batch), "items": [r.as_dict() for r in batch.results]},
                                        indent=1), encoding="utf-8")
    paths["html"].write_text(render_html(batch), encoding="utf-8")
    return paths


def render_html(batch: BatchResult) -> str:
    s = summary(batch)
    e = html.escape
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(batch.started))
    stage_rows = "".join(f"<tr><td>{e(k)}</td><td>{'' if v is None else f'{v:.2f}'}</td></tr>"
                         for k, v in s["stage_median_ms"].items())
    port_rows = "".join(f"<tr><td>{e(p)}</td><td>{v['items']}</td><td>{v['failed']}</td></tr>"
                        for p, v in s["per_scanner"].items())
    fail_rows = "".join(
        f"<tr><td>{r.n + 1}</td><td>{e(r.item or '')}</td><td>{e(r.mode)}</td><td>{e(r.outcome)}</td>"
        f"<td>{e(r.matched or '')}</td><td>{e(r.port)}</td><td>{e(r.error)}</td></tr>" for r in batch.failures)
    fails = (f"<h2>Exceptions ({len(batch.failures)})</h2><table><tr><th>#</th><th>item</th><th>mode</th>"
             f"<th>outcome</th><th>matched</th><th>scanner</th><th>reason</th></tr>{fail_rows}</table>"
             if batch.failures else "<h2>No exceptions</h2>")
    status = "all items as expected" if not batch.failures else f"{len(batch.failures)} item(s) need attention"
    item_rows = "".join(
        f"<tr class=\"{'good' if r.ok else 'bad'}\"><td>{r.n + 1}</td><td>{e(r.item or r.matched or '')}</td>"
        f"<td>{e(r.outcome.upper())}{'' if r.ok else ' (expected ' + e(r.expect or 'no error') + ')'}</td>"
        f"<td>{'' if r.log10_far is None else f'{r.log10_far:.1f}'}</td><td>{e(r.time)}</td><td>{e(r.operator)}</td>"
        f"<td>{e(r.port)}</td><td>"
        + (f"<a href=\"{e(r.certificate)}\">{e(r.certificate.rsplit('/', 1)[-1])}</a>" if r.certificate else "")
        + "</td></tr>" for r in batch.results)
    fars = [r.log10_far for r in batch.results if r.log10_far is not None]
    hist = histogram(fars, bins=min(12, max(1, len(fars))), title="log10 FAR of the scans", xlabel="log10 FAR")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>glint bench {e(batch.batch_id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:left}}th{{background:#eee}}
.bad{{color:#a00}}.good{{color:#070}}</style></head><body>
<h1>glint bench {e(batch.batch_id)}</h1>
<p>{e(when)} &middot; {s['items']} items on {len(batch.scanners)} scanner(s) in {s['seconds']:.1f} s
&middot; <b>{s['scans_per_minute']:.1f} scans/min</b></p>
<p class="{'good' if not batch.failures else 'bad'}"><b>{e(status)}</b>: {s['outcomes']['pass']} pass,
{s['outcomes']['fail']} fail, {s['outcomes']['error']} error{' (stopped early)' if batch.stopped_early else ''}</p>
<h2>Scanners</h2><table><tr><th>scanner</th><th>items</th><th>not as expected</th></tr>{port_rows}</table>
<h2>Where the time goes (median ms per item)</h2><table><tr><th>stage</th><th>ms</th></tr>{stage_rows}</table>
{fails}
<h2>Items ({len(batch.results)})</h2>
<table><tr><th>#</th><th>item</th><th>verdict</th><th>log10 FAR</th><th>time (UTC)</th><th>operator</th>
<th>scanner</th><th>certificate</th></tr>{item_rows}</table>
<h2>log10 FAR</h2>
{hist}
<p>Lower is stronger: log10 FAR -40 means a chance of 1 in 10<sup>40</sup> that another coating matches.
Every stage's time per item: report.csv, report.json.</p>
</body></html>
"""
