#!/usr/bin/env python3
"""Why a lab profile's genuine probes are rejected: each item enrolled as the lab enrolls it, its
probes verified, the reasons and the clone gate's figures per region; optionally an A/B of where
the enrollment captures are taken.

usage: python tools/eval_genuine.py --items-dir DIR --seed S [--profile wild] [--first 0] [--last N]
                                    [--placement same|stand] [--clones] [--jobs 2] [--out FILE.json]

DIR is a ``glint lab impostors`` run's ``items/`` (glint.match.labscale's cache of detected
enrollment captures and probes: the same seeds as ``glint lab eval --seed S``). ``--placement
same`` uses the cached enrollment captures (the lab's: three captures at one placement, Pose());
``--placement stand`` renders each item's three enrollment captures again with the same capture
seeds, each at a fresh placement on an enrollment stand (its own rotation and shift, scale 1, no
tilt), and keeps the cached probes. ``--clones``: the lab's clone test at 2 x the genuine
residual of a fresh genuine capture (the seeds of ``glint.match.lab.clone_curve``) for every
enrolled item. Prints FTE, FRR, the rejects' reasons, FRR / FTE per region axis, the genuine
observed / expected noise (5 / 50 / 95 %), the noise scales, and the replicas that pass;
``--out`` keeps every item's row (docs/matching.md has the figures).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from glint import sim
from glint.match.lab import LabConfig, _enroll_item, _pool_map, item_region
from glint.match.labscale import _unpack
from glint.match.spots import spots_from_image
from glint.match.verify import verify
from glint.sim.render import Pose

_W: dict = {}


def stand_pose(coating, profile: str, item: int, k: int) -> Pose:
    """A fresh placement on an enrollment stand: any rotation, the profile's shift, scale 1, flat."""
    p = sim.get_profile(profile, item_seed=coating.seed)
    rng = np.random.default_rng([0x656E726C, (item * 97 + k) * 2 + 1])
    shift = np.clip(rng.normal(0.0, p.shift_sigma_px, 2), -p.shift_max_px, p.shift_max_px)
    return Pose(rotation=float(rng.uniform(0.0, 360.0)), shift=(float(shift[0]), float(shift[1])))


def _row(k: int) -> dict:
    a, (i, cs, caps, probes) = _W["args"], _W["items"][k]
    c = None
    if a.placement == "stand":
        c = sim.make_coating(cs, a.profile)
        caps = [spots_from_image(sim.capture(c, a.profile, seed=(i * 97 + kk) * 2 + 1,
                                             pose=stand_pose(c, a.profile, i, kk)).image) for kk in range(len(caps))]
    cfg = LabConfig(a.profile, a.last, len(probes), 0, a.seed, False, 1)
    _, ref, _, why = _enroll_item(cfg, None, i, (None, caps, probes))
    row: dict = {"item": i, "region": item_region(a.profile, cs), "refused": why}
    if ref is None:
        return row
    row.update(noise_scale=ref.noise_scale, noise_ratio=ref.info.get("noise_ratio"), code_eps=ref.params.code_eps,
               probes=[{k2: v for k2, v in verify(ref, p).to_dict().items() if k2 not in ("transform", "pose")}
                       for p in probes])
    if a.clones:
        c = c or sim.make_coating(cs, a.profile)
        seed = (i * 97) * 2 + 200_001
        g = verify(ref, spots_from_image(sim.capture(c, a.profile, seed=seed).image))
        row["clone_genuine_ratio"] = g.residual_ratio
        if g.match and g.residual is not None:
            clone = sim.clone_coating(c, 2.0 * float(g.residual), seed=7919 * i + 1, profile=a.profile)
            r = verify(ref, spots_from_image(sim.capture(clone, a.profile, seed=seed).image))
            row["clone_2x"] = {"match": r.match, "ratio": r.residual_ratio, "matched": r.matched}
    return row


def summary(rows: list[dict]) -> list[str]:
    enr = [r for r in rows if r["refused"] is None]
    probes = [(r, p) for r in enr for p in r["probes"]]
    rej = [(r, p) for r, p in probes if not p["match"]]
    out = [f"items {len(rows)}, enrolled {len(enr)} (FTE {1 - len(enr) / max(1, len(rows)):.1%}); genuine probes "
           f"{len(probes)}, rejected {len(rej)} (FRR {len(rej) / max(1, len(probes)):.2%})",
           "rejects: " + ", ".join(f"{n} {k}" for k, n in collections.Counter(
               p["reason"].split(" (")[0].split(";")[0] for _, p in rej).most_common())]
    for ax in range(3):
        cells: dict = collections.defaultdict(lambda: [0, 0, 0, 0])
        for r in rows:
            cells[r["region"][ax]][2] += 1
            cells[r["region"][ax]][3] += r["refused"] is not None
        for r, p in probes:
            cells[r["region"][ax]][0] += 1
            cells[r["region"][ax]][1] += not p["match"]
        out.append("  ".join(f"{k}: FRR {v[1]}/{v[0]}, FTE {v[3]}/{v[2]}" for k, v in sorted(cells.items())))
    rat = [p["residual_ratio"] for _, p in probes if p["match"] and p["residual_ratio"]]
    if rat:
        pct = np.percentile(rat, [5, 50, 95])
        out.append("genuine observed / expected noise 5/50/95 %: " + " / ".join(f"{v:.2f}" for v in pct))
    if enr:
        pct = np.percentile([r["noise_scale"] for r in enr], [10, 50, 90])
        out.append("noise scale 10/50/90 %: " + " / ".join(f"{v:.2f}" for v in pct))
    cl = [r for r in enr if "clone_2x" in r]
    if cl:
        passed = [r for r in cl if r["clone_2x"]["match"]]
        out.append(f"replicas at 2 x the genuine noise pass {len(passed)} of {len(cl)}: " + ", ".join(
            f"item {r['item']} ({r['region'][0]}, scale {r['noise_scale']:.2f}, genuine {r['clone_genuine_ratio']:.2f} x, "
            f"replica {r['clone_2x']['ratio']:.2f} x, {r['clone_2x']['matched']} pairs)" for r in passed))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items-dir", required=True, type=Path, help="a lab impostors run's items/ directory")
    ap.add_argument("--seed", type=int, required=True, help="the run's --seed")
    ap.add_argument("--profile", default="wild", help="the run's --profile")
    ap.add_argument("--first", type=int, default=0, help="first item")
    ap.add_argument("--last", type=int, default=10**9, help="items before this one")
    ap.add_argument("--placement", choices=("same", "stand"), default="same",
                    help="enrollment captures: the cached ones (one placement) or rendered at fresh placements")
    ap.add_argument("--clones", action="store_true", help="the clone test at 2 x the genuine noise per enrolled item")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--out", type=Path, help="write every item's row as JSON")
    a = ap.parse_args(argv)
    items = []
    for f in sorted(a.items_dir.glob("block-*.npz")):
        with np.load(f, allow_pickle=False) as z:
            caps, probes = _unpack(z, "cap"), _unpack(z, "probe")
            ci = pi = 0
            for i, s, (nc, npr) in zip(z["item"], z["coating_seed"], z["counts"]):
                if a.first <= i < a.last:
                    items.append((int(i), int(s), caps[ci:ci + nc], probes[pi:pi + npr]))
                ci += nc
                pi += npr
    if not items:
        print(f"no items in {a.items_dir}", file=sys.stderr)
        return 2
    a.last = min(a.last, max(i for i, *_ in items) + 1)
    _W.update(args=a, items=items)
    t = time.time()
    rows = _pool_map(_row, list(range(len(items))), a.jobs)
    for line in summary(rows):
        print(line)
    print(f"({time.time() - t:.0f} s)")
    if a.out:
        a.out.write_text(json.dumps(rows, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else
                                    (v.tolist() if hasattr(v, "tolist") else str(v))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
