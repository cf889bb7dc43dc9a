#!/usr/bin/env python3
"""Detector accuracy on simulated frames: glint's detector next to OpenCV's SimpleBlobDetector.

usage: python tools/eval_detector.py [--profiles bench,field,harsh] [--frames 40] [--seed 0]
                                     [--max-spots 256] [--json] [--equivariance] [--real DIR]
       python tools/eval_detector.py --regions [--frames 120] [--seed 0] [--json]
       python tools/eval_detector.py --real-exposures DIR [--json]

For each profile, renders --frames captures (item seed = seed + k, capture seed =
seed + 1000 + k; for the randomized family ``wild`` each item draws its own optics)
and reports recall of detectable particles (SNR >= 5), precision and localisation
RMSE. Definitions: glint.sim.evaluate / docs/simulator.md.
--max-spots lifts the device's keep-the-N-brightest cap (64) so every spot counts.

--equivariance: instead, for each of the 7 non-identity symmetries of the frame, how many
spots come back exactly (same fixed-point position and flux byte) on the transformed
frame, over the same simulated frames, and over the JPEGs in --real DIR if given
(e.g. ../shared/real). glint.imaging.dihedral has the transforms.

--regions: the randomized family ``wild`` per region of the lab's table (the item's PSF
sigma x its median particle's peak signal-to-noise, glint.match.lab.item_region): per
region, completeness (truth particles found) per particle SNR band, false spots (detections
no particle lies within 1.5 px of) per frame and as a share of the detections, with the
device's 64-spot cap and without it, and the localisation error (RMSE and median) of
isolated particles. glint.sim.evaluate.region_scores does the counting.

--real-exposures DIR: the test_5mp field's 20, 50 and 100 ms frames (../shared/real; cite its
credits.txt): the truth is the stars an independent float matched filter finds in both
long exposures (glint.sim.evaluate.consensus_truth); per frame, the stars found, the false
spots, and the distance to the consensus position. The detector's own 50/100 ms consensus too.
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


SNR_BANDS = (0.0, 2.0, 3.0, 5.0, 10.0, 20.0, float("inf"))
DEVICE_CAP = 64


def _band_names() -> list[str]:
    return [f"{lo:g}-{hi:g}" if hi != float("inf") else f">={lo:g}" for lo, hi in zip(SNR_BANDS, SNR_BANDS[1:])]


def _frame_counts(det_xy, cap, kept_xy) -> dict:
    """Counts of one frame against its truth (glint.sim.evaluate's matching, 1.5 px, nearest first)."""
    import numpy as np

    from glint.sim.evaluate import EDGE_PX, RESOLVE_PX, match

    h, w = cap.image.shape
    xy, snr, flux = cap.truth_xy, cap.truth_snr, cap.truth_flux
    inside = (xy[:, 0] >= EDGE_PX) & (xy[:, 0] <= w - 1 - EDGE_PX) & (xy[:, 1] >= EDGE_PX) & (xy[:, 1] <= h - 1 - EDGE_PX)
    resolved = np.ones(len(xy), bool)
    iso = np.ones(len(xy), bool)
    if len(xy) > 1:
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        np.fill_diagonal(d, np.inf)
        resolved = ~np.any((d < RESOLVE_PX) & (flux[None, :] > flux[:, None]), axis=1)
        iso = d.min(axis=1) >= RESOLVE_PX
    pairs = match(det_xy, xy)
    found = np.zeros(len(xy), bool)
    err = np.full(len(xy), np.nan)
    for _, t, dist in pairs:
        found[t] = True
        err[t] = dist
    band = np.clip(np.searchsorted(SNR_BANDS, snr, "right") - 1, 0, len(SNR_BANDS) - 2)
    counted = inside & resolved
    comp = [(int(np.count_nonzero(counted & (band == b))), int(np.count_nonzero(counted & (band == b) & found)))
            for b in range(len(SNR_BANDS) - 1)]
    errs = err[counted & iso & found]
    kept_pairs = match(kept_xy, xy)
    # a false kept spot within 3 px of a particle: a fragment of a broad spot or one placed > 1.5 px off
    used = {a for a, _, _ in kept_pairs}
    fx = np.asarray([i for i in range(len(kept_xy)) if i not in used], int)
    near = 0
    if len(fx) and len(xy):
        dmin = np.hypot(kept_xy[fx, None, 0] - xy[None, :, 0], kept_xy[fx, None, 1] - xy[None, :, 1]).min(1)
        near = int(np.count_nonzero(dmin <= 3.0))
    return {"comp": comp, "det": len(det_xy), "false": len(det_xy) - len(pairs), "kept": len(kept_xy),
            "kept_false": len(kept_xy) - len(kept_pairs), "kept_false_near": near, "errs": errs}


def regions(frames: int, seed: int) -> dict:
    """Completeness, false spots and localisation error of the detector on ``wild`` per lab region."""
    import numpy as np

    from glint.match.lab import item_region

    acc: dict = {}
    t_det = 0.0
    for k in range(frames):
        prof = get_profile("wild", item_seed=seed + k)
        cap = capture(make_coating(seed + k, prof), prof, seed=seed + 1000 + k)
        t0 = time.perf_counter()
        det = detect(cap.image, max_spots=4096)
        t_det += time.perf_counter() - t0
        kept = detect(cap.image, max_spots=DEVICE_CAP)
        c = _frame_counts(det.xy, cap, kept.xy)
        psf, snr = item_region("wild", seed + k)[:2]
        for name in (f"{psf} x {snr}", psf, snr, "all"):
            r = acc.setdefault(name, {"frames": 0, "comp": np.zeros((len(SNR_BANDS) - 1, 2), np.int64), "det": 0,
                                      "false": 0, "kept": 0, "kept_false": 0, "kept_false_near": 0, "errs": []})
            r["frames"] += 1
            r["comp"] += np.asarray(c["comp"])
            for key in ("det", "false", "kept", "kept_false", "kept_false_near"):
                r[key] += c[key]
            r["errs"].append(c["errs"])
    out = {}
    order = sorted(acc, key=lambda n: (n == "all", " x " not in n, n))
    for name in order:
        r = acc[name]
        e = np.concatenate(r["errs"]) if r["errs"] else np.zeros(0)
        out[name] = {
            "frames": r["frames"],
            "completeness": [{"snr": b, "n": int(n), "found": int(f)} for b, (n, f) in zip(_band_names(), r["comp"])],
            "detections_per_frame": r["det"] / r["frames"],
            "false_per_frame": r["false"] / r["frames"],
            "false_share": r["false"] / r["det"] if r["det"] else 0.0,
            "kept_false_share": r["kept_false"] / r["kept"] if r["kept"] else 0.0,
            "kept_false_near_share": r["kept_false_near"] / r["kept"] if r["kept"] else 0.0,
            "rmse_px": float(np.sqrt(np.mean(e**2))) if len(e) else float("nan"),
            "median_err_px": float(np.median(e)) if len(e) else float("nan"),
            "isolated_found": int(len(e)),
        }
    return {"frames": frames, "seed": seed, "snr_bands": _band_names(), "ms_per_frame": 1000 * t_det / max(frames, 1),
            "regions": out}


def _ref_spots(img, sigma_k: float = 6.0):
    """An independent float detector for the real frames' truth: a Gaussian matched filter (sigma 1.2 px)
    over a median background (31 px), local maxima above ``sigma_k`` x the filtered noise (MAD)."""
    import cv2
    import numpy as np

    f = img.astype(np.float32)
    bg = cv2.medianBlur(img, 31).astype(np.float32)
    g = cv2.GaussianBlur(f - bg, (0, 0), 1.2)
    med = float(np.median(g))
    noise = float(np.median(np.abs(g - med))) / 0.6745
    dil = cv2.dilate(g, np.ones((5, 5), np.uint8))
    ys, xs = np.nonzero((g >= dil) & (g > med + sigma_k * noise))
    keep = (xs >= 3) & (ys >= 3) & (xs < img.shape[1] - 3) & (ys < img.shape[0] - 3)
    xs, ys = xs[keep], ys[keep]
    # centroid: intensity-weighted over 5x5 of the filtered image
    pts, snr = [], []
    for x, y in zip(xs, ys):
        win = np.clip(g[y - 2 : y + 3, x - 2 : x + 3], 0, None)
        s = float(win.sum()) or 1.0
        oy, ox = np.mgrid[-2:3, -2:3]
        pts.append((x + float((win * ox).sum()) / s, y + float((win * oy).sum()) / s))
        snr.append(float(g[y, x] - med) / noise)
    return np.asarray(pts, float).reshape(-1, 2), np.asarray(snr, float)


def _fit_affine(src, dst, radius: float = 2.0):
    """Affine map src -> dst from nearest pairs within ``radius`` (the exposures are seconds apart: a drift)."""
    import numpy as np

    a = np.eye(3)
    for _ in range(4):
        m = src @ a[:2, :2].T + a[:2, 2]
        d = np.hypot(m[:, None, 0] - dst[None, :, 0], m[:, None, 1] - dst[None, :, 1])
        j = d.argmin(1)
        ok = d[np.arange(len(src)), j] <= radius
        if ok.sum() < 6:
            break
        x = np.column_stack([src[ok], np.ones(ok.sum())])
        sol, *_ = np.linalg.lstsq(x, dst[j[ok]], rcond=None)
        a = np.eye(3)
        a[:2, :2] = sol[:2].T
        a[:2, 2] = sol[2]
        radius = max(1.0, radius * 0.75)
    return a


def real_exposures(folder: str) -> dict:
    """The test_5mp field: stars found in the 20, 50, 100 ms frames against the long exposures' consensus."""
    from pathlib import Path

    import numpy as np

    from glint.imaging import load_image
    from glint.sim.evaluate import match

    names = {e: Path(folder) / f"test_5mp_g100_e{e}ms.jpg" for e in (20, 50, 100)}
    imgs = {e: load_image(p) for e, p in names.items()}
    sigma_k = 6.0
    ref = {e: _ref_spots(imgs[e], sigma_k) for e in (50, 100)}
    # truth: in both long exposures (the 50 ms positions mapped onto the 100 ms frame), at their mean
    a50 = _fit_affine(ref[50][0], ref[100][0])
    m50 = ref[50][0] @ a50[:2, :2].T + a50[:2, 2]
    pairs = match(m50, ref[100][0], 1.5)
    truth = np.asarray([(m50[i] + ref[100][0][j]) / 2 for i, j, _ in pairs]).reshape(-1, 2)
    tsnr = np.asarray([ref[100][1][j] for _, j, _ in pairs])
    out = {"truth": len(truth), "truth_sigma": sigma_k, "frames": []}
    dets = {}
    for e in (20, 50, 100):
        for cap in (DEVICE_CAP, 4096):
            d = detect(imgs[e], max_spots=cap)
            dets[(e, cap)] = d.xy
            af = _fit_affine(d.xy, truth) if len(d.xy) >= 6 else np.eye(3)
            xy = d.xy @ af[:2, :2].T + af[:2, 2]
            pr = match(xy, truth, 1.5)
            err = np.asarray([dist for _, _, dist in pr])
            found_snr = np.sort(tsnr[[j for _, j, _ in pr]]) if pr else np.zeros(0)
            # false: near no star of the consensus nor of either long exposure's reference set
            anyref = np.vstack([truth, ref[100][0], m50])
            near = match(xy, anyref, 1.5)
            out["frames"].append({
                "frame": f"{e} ms", "max_spots": cap, "spots": len(xy), "found": len(pr), "false": len(xy) - len(near),
                "rmse_px": float(np.sqrt(np.mean(err**2))) if len(err) else float("nan"),
                "median_err_px": float(np.median(err)) if len(err) else float("nan"),
                "found_by_snr": {"truth_snr_<10": int(np.sum(found_snr < 10)), "truth_snr_<10_of": int(np.sum(tsnr < 10)),
                                 "truth_snr_10-20": int(np.sum((found_snr >= 10) & (found_snr < 20))),
                                 "truth_snr_10-20_of": int(np.sum((tsnr >= 10) & (tsnr < 20)))},
            })
    a = _fit_affine(dets[(50, 4096)], dets[(100, 4096)])
    out["detector_consensus"] = len(match(dets[(50, 4096)] @ a[:2, :2].T + a[:2, 2], dets[(100, 4096)], 1.5))
    return out


def _print_regions(res: dict) -> None:
    bands = res["snr_bands"]
    print(f"wild, {res['frames']} frames (item seeds {res['seed']}..{res['seed'] + res['frames'] - 1}), "
          f"{res['ms_per_frame']:.0f} ms/frame (host twin): completeness per particle SNR band, false spots, error")
    head = " ".join(f"{b:>8}" for b in bands)
    print(f"{'region':22} {'frames':>6} {head} {'det/fr':>7} {'false/fr':>8} {'false%':>6} {'kept64 false%':>13} {'(near)':>6} "
          f"{'rmse px':>7} {'med px':>6}")
    for name, r in res["regions"].items():
        comp = " ".join(f"{(c['found'] / c['n'] if c['n'] else float('nan')):8.3f}" for c in r["completeness"])
        print(f"{name:22} {r['frames']:6d} {comp} {r['detections_per_frame']:7.1f} {r['false_per_frame']:8.1f} "
              f"{100 * r['false_share']:6.1f} {100 * r['kept_false_share']:13.1f} {100 * r['kept_false_near_share']:6.1f} "
              f"{r['rmse_px']:7.3f} {r['median_err_px']:6.3f}")
    print("completeness = found / particles (>= 3 px inside, no brighter particle within 3 px) per truth SNR band; "
          "false = no particle within 1.5 px (near: one within 3 px); errors over isolated particles; particles per band:")
    for name, r in res["regions"].items():
        print(f"  {name:22} " + " ".join(f"{c['n']:8d}" for c in r["completeness"]))


def _print_real(res: dict) -> None:
    print(f"test_5mp field: {res['truth']} stars in the consensus of the 50 and 100 ms frames "
          f"(float matched filter, {res['truth_sigma']} sigma); the detector's own 50/100 ms consensus: "
          f"{res['detector_consensus']}")
    print(f"{'frame':8} {'cap':>4} {'spots':>5} {'stars found':>11} {'false':>5} {'rmse px':>7} {'med px':>6}  "
          "found by the truth's SNR")
    for r in res["frames"]:
        print(f"{r['frame']:8} {r['max_spots']:4d} {r['spots']:5d} {r['found']:5d}/{res['truth']:<5d} {r['false']:5d} "
              f"{r['rmse_px']:7.3f} {r['median_err_px']:6.3f}  {r['found_by_snr']}")


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
    ap.add_argument("--regions", action="store_true", help="wild family per region (PSF x SNR) against the truth")
    ap.add_argument("--real-exposures", default=None, metavar="DIR",
                    help="the test_5mp field's 20/50/100 ms frames in DIR, the long exposures' consensus as truth")
    a = ap.parse_args(argv)
    if a.regions or a.real_exposures:
        res = regions(a.frames, a.seed) if a.regions else real_exposures(a.real_exposures)
        if a.json:
            json.dump(res, sys.stdout, indent=2)
            print()
        elif a.regions:
            _print_regions(res)
        else:
            _print_real(res)
        return 0
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
