"""Manifests, progress bar and reports of glint bench (no scanners needed)."""

import csv
import io
import json

import pytest

from glint.bench import (BatchResult, ExceptionQueue, ItemResult, Progress, identify_only, load_manifest,
                         queue_failures, write_reports)
from glint.errors import UsageError
from glint.server.store import connect


def test_csv_and_json_manifests(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("item,mode,expect,seed,note\nacme:A,,,3,x\n,identify,,,\nacme:B,identify,fail,,\n")
    rows = load_manifest(p)
    assert [(r.item, r.mode, r.expect) for r in rows] == [("acme:A", "verify", "pass"), (None, "identify", ""),
                                                          ("acme:B", "identify", "fail")]
    assert rows[0].lens == {"lens": "item", "item_seed": 3, "capture_seed": 1} and rows[1].lens is None
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"items": [{"item": "acme:A", "lens": "counterfeit", "seed": 2}]}))
    assert load_manifest(j)[0].lens["lens"] == "counterfeit"
    assert len(identify_only(3)) == 3


@pytest.mark.parametrize("text,err", [
    ("name\nx\n", "'item' column"),
    ("item,mode\nacme:A,weigh\n", "not verify or identify"),
    ("item,mode\n,verify\n", "needs an item"),
    ("item,expect\nacme:A,maybe\n", "not pass or fail"),
    ("item\n", "no rows"),
    ("[1, 2]", "list of objects"),
])
def test_bad_manifests_are_one_line(tmp_path, text, err):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(UsageError, match=err):
        load_manifest(p)


def test_progress_plain_text_when_not_a_tty():
    out = io.StringIO()
    pr = Progress(20, stream=out)
    for i in range(20):
        pr.advance(failed=(i == 3))
    pr.finish()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and 2 <= len(lines) <= 21
    assert lines[-1].startswith("bench [" + "#" * 30 + "] 20/20 1 failed")


def test_reports_and_exception_queue(tmp_path):
    ok = ItemResult(0, "acme:A", "verify", "pass", port="p0", outcome="pass", ok=True, t_match_ms=5.0,
                    t_ledger_ms=2.0, t_total_ms=9.0)
    bad = ItemResult(1, "acme:<B>", "verify", "pass", port="p1", outcome="fail", ok=False, t_match_ms=7.0,
                     error="expected pass, got fail")
    batch = BatchResult("b1", [ok, bad], 100.0, 160.0, ["p0", "p1"])
    paths = write_reports(batch, tmp_path / "r")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["outcome"] for r in rows] == ["pass", "fail"]
    rep = json.loads(paths["json"].read_text())
    assert rep["summary"]["scans_per_minute"] == 2.0 and rep["summary"]["stage_median_ms"]["match"] == 6.0
    html = paths["html"].read_text()
    assert "acme:&lt;B&gt;" in html and "<B>" not in html and "Exceptions (1)" in html
    db = connect(tmp_path / "glint.db")
    assert queue_failures(db, batch) == 1
    q = ExceptionQueue(db)
    [e] = q.list()
    assert (e.source, e.subject, e.detail["batch"]) == ("bench", "acme:<B>", "b1")
    assert q.resolve(e.id) and not q.resolve(e.id) and q.open_count() == 0
