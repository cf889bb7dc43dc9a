#!/usr/bin/env python3
"""Matching benchmarks: 1:1 verify latency; 1:N identify latency, memory and build time at
several database sizes; side by side with brute-force 1:1 against every item and with
OpenCV ORB features + RANSAC on the raw images.

    python tools/bench_match.py                      # sizes 1e4, 1e5
    python tools/bench_match.py --sizes 10000,100000,1000000 --json out.json

Large databases use synthetic references (one observation each, glint.match.synth; the
simulator is far too slow for a million items); latency probes are fresh observations of
enrolled items. Brute force and ORB are timed per item on a sample and scaled to N (they
are linear in N by construction); their accuracy is measured on simulator images.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

from glint.match import Database, Reference, identify, prepare, verify
from glint.match import synth
from glint.match.database import to_record
from glint.match.index import bits_for, entries_for
from glint.match.params import MatchParams

PROBES = 30


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_refs(n: int, rng, params: MatchParams):
    fields, refs = [], []
    for _ in range(n):
        f = synth.make_field(rng)
        s = synth.observe(f, rng, pose=synth.random_pose(rng, scale=(1.0, 1.0)), drop=0.1, spurious=0.1)
        fields.append(f)
        refs.append(Reference(s.xy, s.flux, np.ones(len(s), np.int64), s.width, s.height, params))
    return fields, refs


def bench_1n(n: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    params = MatchParams.for_frame(synth.WIDTH, synth.HEIGHT)
    t0 = time.perf_counter()
    fields, refs = synthetic_refs(n, rng, params)
    t_gen = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        db = Database(d)
        t0 = time.perf_counter()
        # Bulk load: records in one append, index entries computed once, base written once.
        db.add_many(["seed-0"], refs[:1])
        ids = [f"item-{i}" for i in range(1, n)]
        with open(os.path.join(d, "refs.bin"), "ab") as f:
            f.write(np.stack([to_record(r) for r in refs[1:]]).tobytes())
        with open(os.path.join(d, "alive.u8"), "ab") as f:
            f.write(b"\x01" * (n - 1))
        with open(os.path.join(d, "items.txt"), "a") as f:
            f.write("".join(i + "\n" for i in ids))
        bits = bits_for(n * params.index_codes)
        bs, es = [], []
        db2 = Database(d)
        for row in range(n):
            b, e = entries_for(row, db2.reference_at(row).index_quads(), params, bits)
            bs.append(b)
            es.append(e)
        db2.write_bulk_index(np.concatenate(bs), np.concatenate(es), bits)
        t_build = time.perf_counter() - t0
        del bs, es
        db3 = Database(d)
        index_bytes = db3.index_nbytes()
        refs_bytes = os.path.getsize(os.path.join(d, "refs.bin"))
        lat, ok = [], 0
        for k in range(PROBES):
            i = int(rng.integers(n))
            probe = synth.observe(fields[i], rng)
            t = time.perf_counter()
            res = identify(db3, probe)
            lat.append(time.perf_counter() - t)
            ok += res.item == ("seed-0" if i == 0 else f"item-{i}")
        # brute force 1:1 against every item: per-item cost on a sample, scaled to n
        probe = prepare(synth.observe(fields[0], rng), params)
        sample = [db3.reference_at(r) for r in range(min(n, 300))]
        for r in sample:
            r.quads, r.boxes  # noqa: B018 - precompute as a resident brute-force store would
        t = time.perf_counter()
        for r in sample:
            from glint.match.verify import verify_prepared

            verify_prepared(r, probe)
        per_item = (time.perf_counter() - t) / len(sample)
        return {"items": n, "generate_s": round(t_gen, 1), "build_s": round(t_build, 1),
                "index_mb": round(index_bytes / 2**20, 1), "refs_mb": round(refs_bytes / 2**20, 1),
                "rss_mb": round(rss_mb(), 1), "identify_ms_median": round(statistics.median(lat) * 1e3, 2),
                "identify_ms_p90": round(float(np.percentile(lat, 90)) * 1e3, 2), "rank1": ok / PROBES,
                "brute_force_ms_estimate": round(per_item * n * 1e3, 1)}


def bench_1to1_and_orb(items: int = 12) -> dict:
    """1:1 latency and ORB+RANSAC on simulator images (accuracy and per-pair time)."""
    from glint import sim
    from glint.match import enroll, spots_from_image
    from glint.sim.render import Pose

    orb = cv2.ORB_create(nfeatures=500)
    bf = cv2.BFMatcher(cv2.NORM_HAMMING)
    lat, orb_t, g_ok, orb_g, orb_i = [], [], 0, 0, 0
    refs, imgs, probes = [], [], []
    for i in range(items):
        c = sim.make_coating(5000 + i)
        e = [sim.capture(c, seed=3 * i + k, pose=Pose()).image for k in range(3)]
        refs.append(enroll([spots_from_image(x) for x in e]))
        imgs.append(orb.detectAndCompute(e[0], None))
        probes.append(sim.capture(c, seed=900 + i).image)

    def orb_match(ref_kd, img):
        t = time.perf_counter()
        kp, des = orb.detectAndCompute(img, None)
        inl = 0
        if des is not None and ref_kd[1] is not None:
            m = [a for a, b in (p for p in bf.knnMatch(ref_kd[1], des, k=2) if len(p) == 2)
                 if a.distance < 0.8 * b.distance]
            if len(m) >= 4:
                src = np.float32([ref_kd[0][a.queryIdx].pt for a in m])
                dst = np.float32([kp[a.trainIdx].pt for a in m])
                h, mask = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
                inl = int(mask.sum()) if mask is not None else 0
        return inl, time.perf_counter() - t

    for i in range(items):
        p = spots_from_image(probes[i])
        for _ in range(5):
            t = time.perf_counter()
            r = verify(refs[i], p)
            lat.append(time.perf_counter() - t)
        g_ok += r.match
        inl, dt = orb_match(imgs[i], probes[i])
        orb_t.append(dt)
        orb_g += inl >= 15
        inl2, _ = orb_match(imgs[(i + 1) % items], probes[i])
        orb_i += inl2 >= 15
    return {"verify_ms_median": round(statistics.median(lat) * 1e3, 3), "verify_genuine_accept": g_ok / items,
            "orb_ms_per_pair_median": round(statistics.median(orb_t) * 1e3, 2),
            "orb_genuine_accept_at_15_inliers": orb_g / items, "orb_impostor_accept_at_15_inliers": orb_i / items}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    out = {"one_to_one": bench_1to1_and_orb()}
    print(json.dumps(out["one_to_one"]), flush=True)
    out["one_to_n"] = []
    for n in [int(float(s)) for s in a.sizes.split(",") if s]:
        r = bench_1n(n)
        r["orb_brute_force_ms_estimate"] = round(out["one_to_one"]["orb_ms_per_pair_median"] * n, 1)
        out["one_to_n"].append(r)
        print(json.dumps(r), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
