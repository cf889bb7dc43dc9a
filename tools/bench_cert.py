#!/usr/bin/env python3
"""Compact certificates: size and issue time for items with 1, 100 and 10,000 earlier events.

    python tools/bench_cert.py [--histories 1,100,10000] [--filler 0] [--repeat 200] [--json]

One fresh ledger (in a temporary directory, durable=False: the appends are set-up, not
the figure) holds one item per history length: a register event, then verify events
up to that history length, then the certified verify event. ``--filler N`` adds N
events of other items first, to show that the size grows with the log only through the
event's index (one 32-byte proof hash per 1 bit of it: the proof is into the tree right
after the event, certificate format 4), not with the item's history.

For each item: certificate bytes, bundle bytes (certificate + history), the median and
p90 of ``Ledger.issue_certificate(index)`` (checkpoint look-up, inclusion proof, ES256
signature, self-check) and of ``issue_certificate(item=...)`` (also finds the latest
verify event), and of offline verification without and with the history.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))

from glint.ledger import EventSpec, Keys, Ledger, Verifier, verify_certificate  # noqa: E402

T0 = 1_700_000_000
BATCH = 5000


def _median_p90(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(0.9 * len(xs)))]


def _timed(fn, repeat: int) -> tuple[float, float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return _median_p90(out)


def _fill(led: Ledger, specs) -> None:
    buf = []
    for s in specs:
        buf.append(s)
        if len(buf) >= BATCH:
            led.append_batch(buf)
            buf = []
    if buf:
        led.append_batch(buf)


def run(histories: list[int], filler: int, repeat: int) -> dict:
    keys = Keys.generate("glint.bench/ledger")
    scan = bytes(330)
    verify = {"res": "pass", "fap": 2.5e-10, "dev": "a1b2c3d4e5f60708", "coat": "c1"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cert-") as tmp:
        with Ledger.open(Path(tmp) / "ledger.db", keys=keys, durable=False) as led:
            t = time.perf_counter()
            if filler:
                led.register_item("acme:FILLER-0", "ACME", time=T0)
                _fill(led, (EventSpec("verify", "acme:FILLER-0", verify, T0 + 1) for _ in range(filler - 1)))
            items = {h: f"acme:HIST-{h}" for h in histories}
            for h, item in items.items():
                led.register_item(item, "ACME", passport={"origin": "IT"}, time=T0)
                _fill(led, (EventSpec("verify", item, verify, T0 + 1, scan) for _ in range(h - 1)))
            certified = {h: led.append_event("verify", item, verify, T0 + 2, scan).index for h, item in items.items()}
            led.checkpoint()
            fill_s = time.perf_counter() - t
            for h, item in items.items():
                idx = certified[h]
                blob = led.issue_certificate(idx)
                for _ in range(20):  # warm the caches (SQLite pages, OpenSSL keys) before timing
                    led.issue_certificate(idx)
                by_index = _timed(lambda idx=idx: led.issue_certificate(idx), repeat)
                by_item = _timed(lambda item=item: led.issue_certificate(item=item), repeat)
                hist = led.history(item, h)
                bundle = led.bundle(blob)
                # A fresh verifier per call: offline verification checks the note signature every time.
                bare = _timed(lambda blob=blob: verify_certificate(blob, keys.issuer_public, Verifier(keys.log_vkey)),
                              repeat)
                full = _timed(lambda b=blob, hs=hist: verify_certificate(b, keys.issuer_public, keys.log_verifier(), hs),
                              max(3, min(repeat, 2000 // max(1, h))))
                info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), hist)
                rows.append({
                    "history": h, "log_size": info.checkpoint.size, "index": idx,
                    "proof_hashes": len(led.prove(idx, info.checkpoint.size).hashes),
                    "cert_bytes": len(blob), "bundle_bytes": len(bundle),
                    "issue_ms": round(1000 * by_index[0], 3), "issue_p90_ms": round(1000 * by_index[1], 3),
                    "issue_by_item_ms": round(1000 * by_item[0], 3),
                    "verify_ms": round(1000 * bare[0], 3), "verify_with_history_ms": round(1000 * full[0], 3),
                })
            early = None
            if filler > 1:  # filler verify events: index 1 (one 1 bit) and 2^k - 1 (k one bits: the most below the log size)
                worst = (1 << (filler.bit_length() - 1)) - 1
                early = [{"index": i, "proof_hashes": bin(i).count("1"), "cert_bytes": len(led.issue_certificate(i))}
                         for i in sorted({1, worst})]
    return {"histories": histories, "filler": filler, "repeat": repeat, "fill_s": round(fill_s, 1), "rows": rows,
            "early_event": early}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--histories", default="1,100,10000", help="comma-separated history lengths (earlier events)")
    ap.add_argument("--filler", type=int, default=0, help="events of another item appended first (a larger log)")
    ap.add_argument("--repeat", type=int, default=200, help="timed repetitions per figure")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    hs = [int(x) for x in args.histories.split(",") if x.strip()]
    if not hs or min(hs) < 1:
        ap.error("--histories: each history length must be at least 1 (the register event)")
    res = run(hs, args.filler, args.repeat)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"log of {res['rows'][-1]['log_size']} events (filled in {res['fill_s']} s); medians of {args.repeat} runs")
    print(f"{'history':>8} {'proof':>6} {'cert B':>7} {'bundle B':>9} {'issue ms':>9} {'p90':>7} {'by item':>8} "
          f"{'verify ms':>10} {'+history':>9}")
    for r in res["rows"]:
        print(f"{r['history']:>8} {r['proof_hashes']:>6} {r['cert_bytes']:>7} {r['bundle_bytes']:>9} "
              f"{r['issue_ms']:>9.3f} {r['issue_p90_ms']:>7.3f} {r['issue_by_item_ms']:>8.3f} {r['verify_ms']:>10.3f} "
              f"{r['verify_with_history_ms']:>9.3f}")
    for e in res["early_event"] or []:
        print(f"a filler event (index {e['index']}): {e['proof_hashes']} proof hashes, {e['cert_bytes']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
