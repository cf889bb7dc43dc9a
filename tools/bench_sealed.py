#!/usr/bin/env python3
"""What sealing costs an append: batched verify events with an operator and a place, sealed
(glint.ledger.sealed: two commitments in the leaf, a reveal row beside it) and, interleaved in the
same minutes, with sealing switched off (the values in the clear, as before sealed values).

    python tools/bench_sealed.py [--events 5000] [--batch 1000] [--repeat 9] [--json]

Each run is a fresh ledger (temporary directory, durable=False: the CPU cost is the figure, not
the disk's fsync) with 100 registered items; the rate is events / wall time of the appends.
Reports the median of each and their ratio (machines are noisy: runs alternate).
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

from glint.ledger import EventSpec, Keys, Ledger, sealed  # noqa: E402


def _rate(keys: Keys, seal_on: bool, events: int, batch: int) -> float:
    real = sealed.seal_encoded
    if not seal_on:
        sealed.seal_encoded = lambda kind, data, urandom=None: (data, None, None)  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as d, Ledger.open(Path(d) / "l.db", keys=keys, durable=False) as led:
            items = [f"acme:B-{i}" for i in range(100)]
            led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}}) for it in items])
            specs = [EventSpec("verify", items[i % 100], {"res": "pass", "fap": 1e-9, "dev": "a1b2c3d4e5f60708",
                                                          "op": "ana", "loc": "Paris desk", "scan": bytes(32)})
                     for i in range(events)]
            t = time.perf_counter()
            for k in range(0, events, batch):
                led.append_batch(specs[k:k + batch])
            return events / (time.perf_counter() - t)
    finally:
        sealed.seal_encoded = real


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5000, help="verify events per run")
    ap.add_argument("--batch", type=int, default=1000, help="events per durable commit")
    ap.add_argument("--repeat", type=int, default=9, help="runs of each (alternating)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    keys = Keys.generate("bench/sealed")
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(a.repeat):
        for on in (False, True):
            runs[on].append(_rate(keys, on, a.events, a.batch))
    clear, sealed_ = statistics.median(runs[False]), statistics.median(runs[True])
    out = {"clear_per_s": round(clear), "sealed_per_s": round(sealed_), "ratio": round(sealed_ / clear, 3),
           "extra_us_per_event": round((1 / sealed_ - 1 / clear) * 1e6, 1),
           "runs": {"clear": [round(x) for x in runs[False]], "sealed": [round(x) for x in runs[True]]}}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"values in the clear: {out['clear_per_s']} events/s median; sealed: {out['sealed_per_s']} events/s "
              f"(ratio {out['ratio']}, +{out['extra_us_per_event']} us per event)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
