#!/usr/bin/env python3
"""Benchmark glintcore.p256 (ES256 sign/verify) on the MicroPython WebAssembly port and on CPython.

usage: python tools/bench_p256.py [--runs N] [--teeth T] [--json] [--no-micropython]

Prints the median sign and verify times (wall clock, and on the WASM port also the Node
process's CPU time, which other load on a shared machine disturbs less), the bytes allocated per sign on MicroPython
(gc.mem_alloc() delta with the collector disabled) and the comb table size.
--teeth T benchmarks a comb table regenerated with T teeth per table (mounted in a
temporary copy of glintcore) instead of the committed one, to weigh size against speed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))

from glintcore import p256, p256_gen, p256_table  # noqa: E402

DEFAULT_RUNS = 30
WARMUP = 5  # Node tiers WebAssembly up after the first calls: don't time those
KEY = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721  # RFC 6979 A.2.5

# Runs inside MicroPython: portable (time.ticks_us on a board; the WASM port's ticks_us
# only has millisecond resolution, so there it uses the browser/Node performance clock).
MP_BENCH = """
import gc
from glintcore import p256, p256_table
try:
    import js
    _now = js.performance.now
    def _ms(t0, t1):
        return t1 - t0
    def _cpu():  # Node process CPU time (us): steadier than wall time on a shared machine
        u = js.process.cpuUsage()
        return u.user + u.system
except ImportError:
    import time
    _now = time.ticks_us
    def _ms(t0, t1):
        return time.ticks_diff(t1, t0) / 1000
    _cpu = None
def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
d = %(key)d
pub = p256.public_key(d)
msgs = [b'glint bench %%d' %% i for i in range(%(runs)d)]
for m in msgs[:%(warmup)d]:
    p256.verify(pub, m, p256.sign(d, m))
sign_ms = []
sign_cpu = []
sigs = []
for m in msgs:
    c0 = _cpu() if _cpu else 0
    t0 = _now(); s = p256.sign(d, m); t1 = _now()
    c1 = _cpu() if _cpu else 0
    sign_ms.append(_ms(t0, t1)); sign_cpu.append((c1 - c0) / 1000); sigs.append(s)
verify_ms = []
verify_cpu = []
ok = True
for m, s in zip(msgs, sigs):
    c0 = _cpu() if _cpu else 0
    t0 = _now(); ok = p256.verify(pub, m, s) and ok; t1 = _now()
    c1 = _cpu() if _cpu else 0
    verify_ms.append(_ms(t0, t1)); verify_cpu.append((c1 - c0) / 1000)
allocs = []
for m in msgs[:5]:
    gc.collect(); gc.disable()
    a0 = gc.mem_alloc(); p256.sign(d, m); a1 = gc.mem_alloc()
    gc.enable()
    allocs.append(a1 - a0)
result = {'sign_ms': _median(sign_ms), 'verify_ms': _median(verify_ms), 'alloc_per_sign': _median(allocs),
          'sign_cpu_ms': _median(sign_cpu) if _cpu else None, 'verify_cpu_ms': _median(verify_cpu) if _cpu else None,
          'ok': ok, 'table_bytes': len(p256_table.COMB), 'teeth': p256_table.TEETH}
"""


def bench_micropython(runs: int = DEFAULT_RUNS, teeth: int | None = None) -> dict:
    """Median sign/verify milliseconds and bytes allocated per sign under MicroPython (WASM)."""
    from glint.mpy import MicroPython

    code = MP_BENCH % {"key": KEY, "runs": runs, "warmup": WARMUP}
    if teeth is None or teeth == p256_table.TEETH:
        with MicroPython() as mp:
            return mp.eval_json(code, "result")
    with tempfile.TemporaryDirectory() as tmp:
        core = Path(tmp) / "glintcore"
        shutil.copytree(REPO / "shared" / "glintcore", core, ignore=shutil.ignore_patterns("__pycache__"))
        (core / "p256_table.py").write_text(p256_gen.module_source(teeth))
        with MicroPython(mounts=[(core, "/lib/glintcore")]) as mp:
            return mp.eval_json(code, "result")


def bench_cpython(runs: int = DEFAULT_RUNS) -> dict:
    """Median sign/verify milliseconds on this CPython."""
    pub = p256.public_key(KEY)
    msgs = [b"glint bench %d" % i for i in range(runs)]
    for m in msgs[:WARMUP]:
        p256.verify(pub, m, p256.sign(KEY, m))
    sign_ms, verify_ms, sigs = [], [], []
    for m in msgs:
        t0 = time.perf_counter()
        sigs.append(p256.sign(KEY, m))
        sign_ms.append((time.perf_counter() - t0) * 1e3)
    ok = True
    for m, s in zip(msgs, sigs):
        t0 = time.perf_counter()
        ok = p256.verify(pub, m, s) and ok
        verify_ms.append((time.perf_counter() - t0) * 1e3)
    return {"sign_ms": statistics.median(sign_ms), "verify_ms": statistics.median(verify_ms), "ok": ok,
            "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed signatures per platform (default %(default)s)")
    ap.add_argument("--teeth", type=int, default=None, help="benchmark a regenerated comb table with this many teeth")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-micropython", action="store_true", help="CPython only")
    args = ap.parse_args(argv)
    out = {"cpython": bench_cpython(args.runs)}
    if not args.no_micropython:
        out["micropython"] = bench_micropython(args.runs, args.teeth)
    if args.json:
        print(json.dumps(out))
        return 0
    c = out["cpython"]
    print("CPython %s:      sign %.2f ms  verify %.2f ms  (median of %d)" % (c["python"], c["sign_ms"], c["verify_ms"], args.runs))
    if "micropython" in out:
        m = out["micropython"]
        print("MicroPython WASM: sign %.2f ms  verify %.2f ms  (median of %d)" % (m["sign_ms"], m["verify_ms"], args.runs))
        if m.get("sign_cpu_ms") is not None:
            print("  process CPU time: sign %.2f ms  verify %.2f ms  (median)" % (m["sign_cpu_ms"], m["verify_cpu_ms"]))
        print("  bytes allocated per sign: %d" % m["alloc_per_sign"])
        print("  comb table: %d bytes (%d teeth x 2 tables)" % (m["table_bytes"], m["teeth"]))
    ok = all(v.get("ok", True) for v in out.values())
    if not ok:
        print("bench_p256: a benchmark signature did not verify", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
