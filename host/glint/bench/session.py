"""One bench run end to end, as a library call: scanners opened (and virtual ones started), the
batch scanned, the reports written and the failures queued.

    from glint.bench.session import run_bench
    run = run_bench(home, load_manifest("batch.csv"), ports=["/dev/ttyACM0"], virtual=0)
    run.batch, run.reports, run.queued, run.scanners

``glint bench`` is a thin CLI over it (glint.commands.bench). Ctrl-C during the scans ends the
batch early (glint.bench.runner): the reports of the scans done are still written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glint.bench.manifest import BenchItem
from glint.bench.progress import Progress
from glint.bench.report import write_reports
from glint.bench.runner import BatchResult, BenchContext, Slot, run_batch
from glint.errors import UsageError
from glint.home import Home


@dataclass
class BenchRun:
    batch: BatchResult
    reports: dict[str, Path]
    queued: int
    scanners: int
    out: Path


def run_bench(home: Home, items: list[BenchItem], ports: list[str] | tuple[str, ...] = (), virtual: int = 0,
              ledger: bool = True, operator: str | None = None, location: str | None = None,
              out: str | Path | None = None, quiet: bool = True) -> BenchRun:
    """Scan ``items`` on every port in ``ports`` and ``virtual`` virtual scanners, in parallel."""
    from glint.bench import queue_failures
    from glint.checks import FirmwarePolicy
    from glint.link import open_scanner
    from glint.match import has_references, open_references
    from glint.registry import Registry

    if not ports and not virtual:
        raise UsageError("no scanners", "pass -p/--port URL (repeatable) or --virtual N")
    matcher = open_references(home) if has_references(home) else None
    fleet, links, worker = None, [], None
    slots: list[Slot] = []
    try:
        if virtual:
            from glint.bench.virtual import VirtualFleet

            fleet = VirtualFleet(virtual, home).start()
            slots += fleet.slots()
        for url in ports:
            link = open_scanner(url)
            links.append(link)
            slots.append(Slot(link, None, url))
        record = None
        if ledger:
            from glint.ledger import Keys, Ledger
            from glint.ledger.group import LedgerWorker

            worker = LedgerWorker(lambda: Ledger.open(home.ledger_target, keys=Keys.load(home.ledger_dir, create=True)),
                                  lambda led: led.close())
            record = worker.call
        ctx = BenchContext(home.db, matcher, record, FirmwarePolicy.from_config(home.section("firmware")),
                           operator, location)
        try:
            batch = run_batch(items, slots, ctx, Progress(len(items), quiet=quiet))
        finally:
            ctx.close()
    finally:
        if worker is not None:
            worker.close()
        for link in links:
            link.close()
        if fleet is not None:
            fleet.close()
    dest = Path(out) if out else home.root / "bench" / batch.batch_id
    reports = write_reports(batch, dest)
    with Registry.open(home) as reg:
        queued = queue_failures(reg.conn, batch)
    return BenchRun(batch, reports, queued, len(slots), dest)


__all__ = ["run_bench", "BenchRun"]
