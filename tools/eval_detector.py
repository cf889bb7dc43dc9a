#!/usr/bin/env python3
"""Detector accuracy on simulated frames: glint's detector next to OpenCV's SimpleBlobDetector.

usage: python tools/eval_detector.py [--profiles bench,field,harsh] [--frames 40] [--seed 0]
                                     [--max-spots 256] [--json]

For each profile, renders --frames captures (item seed = seed + k, capture seed =
seed + 1000 + k; for the randomized family ``wild`` each item draws its own optics)
and reports recall of detectable particles (SNR >= 5), precision and localisation
RMSE. Definitions: glint.sim.evaluate / docs/simulator.md.
--max-spots lifts the device's keep-the-N-brightest cap (64) so every spot counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from glint.imaging import detect
from glint.sim import capture, get_profile, make_coating
from glint.sim.evaluate import Score, blob_detector, score


def evaluate(profile: str, frames: int, seed: int, max_spots: int) -> dict:
    ours, blob = Score(), Score()
    t_ours = t_blob = 0.0
    for k in range(frames):
        prof = get_profile(profile, item_seed=seed + k)
        cap = capture(make_coating(seed + k, prof), prof, seed=seed + 1000 + k)
        t0 = time.perf_counter()
        det = detect(cap.image, max_spots=max_spots)
        t1 = time.perf_counter()
        kp = blob_detector(cap.image)
        t2 = time.perf_counter()
        t_ours += t1 - t0
        t_blob += t2 - t1
        ours.add(score(det.xy, cap))
        blob.add(score(kp, cap))
    return {
        "profile": profile,
        "frames": frames,
        "glint": dict(ours.as_dict(), ms_per_frame=1000 * t_ours / frames),
        "opencv_blob": dict(blob.as_dict(), ms_per_frame=1000 * t_blob / frames),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="bench,field,harsh")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-spots", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = [evaluate(p, a.frames, a.seed, a.max_spots) for p in a.profiles.split(",")]
    if a.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'profile':8} {'detector':12} {'recall':>7} {'precision':>9} {'rmse px':>8} {'rmse all':>8} {'detectable':>10} {'ms/frame':>9}")
    for r in rows:
        for name in ("glint", "opencv_blob"):
            m = r[name]
            print(f"{r['profile']:8} {name:12} {m['recall']:7.3f} {m['precision']:9.3f} {m['rmse_px']:8.3f} {m['rmse_all_px']:8.3f} "
                  f"{m['detectable']:10d} {m['ms_per_frame']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
