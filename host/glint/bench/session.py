"""One bench run end to end, as a library call: scanners opened (and virtual ones started), the
batch scanned, the reports written and the failures queued.

    from glint.bench.session import run_bench
    run = run_bench(home, load_manifest("batch.csv"), ports=["/dev/ttyACM0"], virtual=0)
    run.batch, run.reports, run.queued, run.scanners, run.notes, run.certificates

``glint bench`` is a thin CLI over it (glint.commands.bench). Ctrl-C during the scans ends the
batch early (glint.bench.runner): the reports of the scans done are still written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from glint.bench.manifest import BenchItem
from glint.bench.progress import Progress
from glint.bench.report import write_reports
from glint.bench.runner import BatchResult, BenchContext, Slot, run_batch
from glint.errors import UsageError
from glint.home import Home
from glint.workflows.placing import Placement, Placer, prompt_placer

LENS_NOTE = ("the manifest's lens column applies only to virtual scanners (--virtual N); on -p scanners the "
             "operator or the --feeder places each item (the feeder gets the row in GLINT_ROW_JSON)")


@dataclass
class BenchRun:
    batch: BatchResult
    reports: dict[str, Path]
    queued: int
    scanners: int
    out: Path
    notes: list[str] = field(default_factory=list)
    certificates: int = 0


def row_placer(place: Placer) -> Callable[[Slot], Callable[[BenchItem], None]]:
    """Slot.place for a real scanner: the operator's prompt or the feeder, told what the row is."""

    def for_slot(slot: Slot) -> Callable[[BenchItem], None]:
        def place_row(it: BenchItem) -> None:
            what = f"row {it.n + 1}"
            if it.lens:
                what += f", lens {it.lens['lens']}"
            if it.note:
                what += f": {it.note}"
            row = {"n": it.n + 1, "item": it.item, "mode": it.mode, "expect": it.expect, "lens": it.lens,
                   "note": it.note, **it.extra}
            place(Placement(it.item, what, slot.name,
                            {"GLINT_ROW": it.n + 1, "GLINT_MODE": it.mode, "GLINT_EXPECT": it.expect,
                             "GLINT_ROW_JSON": json.dumps(row, default=str)}))
        return place_row

    return for_slot


def certify(led, batch: BatchResult, out: Path, call: Callable | None = None) -> int:
    """A certificate for every pass recorded in the ledger, in ``out``/certs (one checkpoint covers
    them all). ``call(fn, *args)`` runs ledger work on the ledger's writer thread (a LedgerWorker's
    ``call``, one call per certificate); None: on ``led`` here."""
    passes = [r for r in batch.results if r.outcome == "pass" and r.ledger_index is not None]
    if not passes:
        return 0
    run = call or (lambda fn, *a: fn(led, *a))
    d = out / "certs"
    d.mkdir(parents=True, exist_ok=True)
    run(lambda lg: lg.checkpoint())
    for r in passes:
        r.certificate = run(_certify_one, r.ledger_index, d)
    return len(passes)


def _certify_one(led, index: int, d: Path) -> str:
    e = led.event(index)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in e.item)
    name = f"{safe}-{index}.cose"
    (d / name).write_bytes(led.issue_certificate(index))
    return f"certs/{name}"


def run_bench(home: Home, items: list[BenchItem], ports: list[str] | tuple[str, ...] = (), virtual: int = 0,
              ledger: bool = True, operator: str | None = None, location: str | None = None,
              out: str | Path | None = None, quiet: bool = True, place: Placer | None = None,
              certificates: bool = True) -> BenchRun:
    """Scan ``items`` on every port in ``ports`` and ``virtual`` virtual scanners, in parallel.

    ``place``: how an item gets under a real (``ports``) scanner before its row is scanned:
    glint.workflows.placing (the operator's prompt, a feeder command, or ``no_placer``). Default:
    the prompt. Virtual scanners set their lens from the row instead. Every pass recorded in
    the ledger gets a certificate in ``<out>/certs`` (``certificates``).
    """
    from glint.bench import queue_failures
    from glint.checks import FirmwarePolicy
    from glint.link import open_scanner
    from glint.match import has_references, open_references
    from glint.registry import Registry

    if not ports and not virtual:
        raise UsageError("no scanners", "pass -p/--port URL (repeatable) or --virtual N")
    matcher = open_references(home) if has_references(home) else None
    notes = [LENS_NOTE] if ports and any(it.lens for it in items) else []
    n_certs = 0
    fleet, links, worker = None, [], None
    slots: list[Slot] = []
    try:
        if virtual:
            from glint.bench.virtual import VirtualFleet

            fleet = VirtualFleet(virtual, home).start()
            slots += fleet.slots()
        placer = row_placer(place or prompt_placer())
        for url in ports:
            link = open_scanner(url)
            links.append(link)
            slot = Slot(link, None, url)
            slot.place = placer(slot)
            slots.append(slot)
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
        dest = Path(out) if out else home.root / "bench" / batch.batch_id
        if worker is not None and certificates:
            n_certs = certify(None, batch, dest, call=worker.call)
    finally:
        if worker is not None:
            worker.close()
        for link in links:
            link.close()
        if fleet is not None:
            fleet.close()
    reports = write_reports(batch, dest)
    with Registry.open(home) as reg:
        queued = queue_failures(reg.conn, batch)
    return BenchRun(batch, reports, queued, len(slots), dest, notes, n_certs)


__all__ = ["run_bench", "BenchRun"]
