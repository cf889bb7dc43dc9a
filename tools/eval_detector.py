#!/usr/bin/env python3
"""Detector accuracy on simulated frames: glint's detector next to OpenCV's SimpleBlobDetector.

usage: python tools/eval_detector.py [--profiles bench,field,harsh] [--frames 40] [--seed 0]
                                     [--max-spots 256] [--json] [--equivariance] [--real DIR]

For each profile, renders --frames captures (item seed = seed + k, capture seed =
seed + 1000 + k; for the randomized family ``wild`` each item draws its own optics)
and reports recall of detectable particles (SNR >= 5), precision and localisation
RMSE. Definitions: glint.sim.evaluate / docs/simulator.md.
--max-spots lifts the device's keep-the-N-brightest cap (64) so every spot counts.

--equivariance: instead, for each of the 7 non-identity symmetries of the frame, how many
spots come back exactly (same fixed-point position and flux byte) on the transformed
frame, over the same simulated frames, and over the JPEGs in --real DIR if given
(e.g. ../shared/real). glint.imaging.dihedral has the transforms.
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


def equivariance(frames, max_spots: int) -> dict:
    import numpy as np

    from glint.imaging.dihedral import NON_IDENTITY, agreement

    out = {t.name: {"spots": 0, "same": 0, "frames": 0, "frames_identical": 0} for t in NON_IDENTITY}
    for img in frames:
        h, w = img.shape
        d = detect(img, max_spots=max_spots)
        for t in NON_IDENTITY:
            a = agreement(d.spots, detect(np.ascontiguousarray(t.image(img)), max_spots=max_spots).spots, t, w, h)
            r = out[t.name]
            r["spots"] += a["n"]
            r["same"] += a["same"]
            r["frames"] += 1
            r["frames_identical"] += a["n"] == a["n_t"] == a["same"]
    return out


def _sim_frames(profiles: list[str], frames: int, seed: int):
    for profile in profiles:
        for k in range(frames):
            prof = get_profile(profile, item_seed=seed + k)
            yield capture(make_coating(seed + k, prof), prof, seed=seed + 1000 + k).image


def _real_frames(folder: str):
    from pathlib import Path

    import cv2

    for p in sorted(Path(folder).glob("*.jpg")):
        yield cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="bench,field,harsh")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-spots", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--equivariance", action="store_true", help="spots that come back on rotated/mirrored frames")
    ap.add_argument("--real", default=None, help="with --equivariance: a folder of real JPEG frames too")
    a = ap.parse_args(argv)
    if a.equivariance:
        sets = [("simulator " + a.profiles, _sim_frames(a.profiles.split(","), a.frames, a.seed))]
        if a.real:
            sets.append(("real " + a.real, _real_frames(a.real)))
        res = {name: equivariance(fr, a.max_spots) for name, fr in sets}
        if a.json:
            json.dump(res, sys.stdout, indent=2)
            print()
            return 0
        for name, tab in res.items():
            print(f"{name} (max_spots {a.max_spots}): spots that come back exactly")
            for t, r in tab.items():
                print(f"  {t:14} {r['same']}/{r['spots']} ({100 * r['same'] / max(r['spots'], 1):.1f} %), "
                      f"frames identical {r['frames_identical']}/{r['frames']}")
        return 0
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
