"""Bench runs: batches of items scanned on several scanners in parallel, with reports.

    from glint.bench import load_manifest, run_batch, Slot, BenchContext, write_reports
    batch = run_batch(load_manifest("items.csv"), [Slot(scanner) ...], BenchContext(matcher, key_of, record))
    write_reports(batch, out_dir)       # report.csv, report.json, report.html
    queue_failures(db, batch)           # failures into the exception queue of glint.db

CLI: ``glint bench`` (glint.commands.bench).
"""

from glint.bench.exceptions import ExceptionEntry, ExceptionQueue
from glint.bench.manifest import BenchItem, identify_only, load_manifest
from glint.bench.progress import Progress
from glint.bench.report import render_html, stage_medians, summary, write_reports
from glint.bench.runner import BatchResult, BenchContext, ItemResult, Slot, run_batch, scan_item
from glint.db import transaction


def queue_failures(db, batch: BatchResult) -> int:
    """Put every item that did not go as expected into the exception queue (one transaction)."""
    q = ExceptionQueue(db)
    with transaction(db):
        for r in batch.failures:
            q.add("bench", r.item or r.matched or f"#{r.n + 1}", r.error or f"outcome {r.outcome}",
                  {"batch": batch.batch_id, "n": r.n, "port": r.port, "mode": r.mode, "outcome": r.outcome,
                   "device": r.device_id, "counter": r.counter})
    return len(batch.failures)


__all__ = ["BenchItem", "load_manifest", "identify_only", "Progress", "run_batch", "scan_item", "Slot",
           "BenchContext", "ItemResult", "BatchResult", "write_reports", "render_html", "summary",
           "stage_medians", "ExceptionQueue", "ExceptionEntry", "queue_failures"]
