#!/usr/bin/env python3
"""Where identify (1:N) loses genuine probes that 1:1 verify accepts, on a lab profile's items.

usage: python tools/eval_rank1.py --out DIR [--profile wild] [--items 200] [--probes 4] [--seed 1]
                                  [--jobs 1] [--all-groups] [--unknowns 40]
                                  [--index-region R] [--index-codes N] [--index-eps-ratio F]
                                  [--fill-region F] [--no-second-pass] [--json]

Items are rendered, detected and enrolled as ``glint lab scale`` does (glint.match.labscale: the
same seeds, the same items; DIR/items and DIR/images are its cache, so a copy of a lab run's
``items/`` and ``images/stamp.json`` is reused and nothing is rendered again). Every item of a
randomized profile has its own parameters; references are put in one Database per parameter
group (as ``glint lab eval``'s rank-1 does) and every genuine probe is identified with the 1:N
penalty of all enrolled references. Each genuine probe falls in one class:

  hit                       identify names its item
  1:1 rejects               verify against its in-memory reference rejects it (the FRR's share)
  stored reference rejects  1:1 accepts, but verify against the Database's stored reference
                            (1/32 px, flux 1, sigma in a byte) rejects it
  not a candidate           its item is not among the index vote's candidates (index recall)
  candidate, 1:N penalty    its item is a candidate and verifies, but not at log10_far <= the
                            operating point after + log10 N
  candidate, not verified   among the candidates but after the VERIFY_CANDIDATES verified ones
  another item              identify names another item (a false identification)

rank-1 | 1:1 is the hit rate among the probes 1:1 verify accepts. Unknown probes (probes of the
items refused at enrollment, --unknowns of them, searched in every group) must identify nobody.
A probe is searched in its own item's group only unless --all-groups (the lab searches all: a
false identification in another group counts there; much slower with many groups).

--index-region / --index-codes / --index-eps-ratio (index_eps = ratio x code_eps) replace those
MatchParams fields of every reference, --fill-region (glint.match.index.FILL_REGION) the index's
fill band and --no-second-pass turns identify's second pass off (glint.match.identify.SECOND_PASS):
an A/B of the index's recall on the same items. "Not a candidate" means among neither pass's
candidates.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from glint.match import index as index_mod
from glint.match import labscale
from glint.match.database import Database
from glint.match.identify import identify, second_candidates, vote
from glint.match.lab import item_region
from glint.match.reference import Reference
from glint.match.verify import prepare, verify_prepared

identify_mod = sys.modules["glint.match.identify"]  # the module (glint.match.identify is also the function)

CLASSES = ("hit", "1:1 rejects", "stored reference rejects", "not a candidate", "candidate, 1:N penalty",
           "candidate, not verified", "another item")


def variant(ref: Reference, region: float | None, codes: int | None, eps_ratio: float | None) -> Reference:
    p = ref.params
    over: dict = {}
    if region is not None:
        over["index_region"] = region
    if codes is not None:
        over["index_codes"] = codes
    if eps_ratio is not None:
        over["index_eps"] = round(eps_ratio * p.code_eps, 5)
    if not over:
        return ref
    return Reference(ref.xy, ref.flux, ref.support, ref.width, ref.height, dataclasses.replace(p, **over),
                     ref.captures, ref.info, ref.sigma, ref.noise_scale)


def classify(db: Database, item: str, ref: Reference, probe, n_searched: int,
             dbs: list[Database] | None = None) -> tuple[str, bool]:
    """(class, whether 1:1 verify accepts) of one genuine probe of ``item`` (its reference ``ref``, stored in ``db``)."""
    accepted = verify_prepared(ref, prepare(probe, ref.params)).match
    best = None
    for d in dbs or [db]:
        res = identify(d, probe, searched=n_searched)
        if res.item is not None and (best is None or res.log10_far < best.log10_far):
            best = res
    if best is not None:
        return ("hit" if best.item == item else "another item"), accepted
    if not accepted:
        return "1:1 rejects", False
    pr = prepare(probe, db.params)
    stored = verify_prepared(db.reference(item), pr)
    if not stored.match:
        return "stored reference rejects", True
    rows = set(vote(db, pr)[0].tolist())
    if identify_mod.SECOND_PASS:
        rows |= set(second_candidates(db, pr)[0].tolist())
    if db.rows[item] not in rows:
        return "not a candidate", True
    if stored.log10_far + math.log10(max(1, n_searched)) > db.params.log10_far_max:
        return "candidate, 1:N penalty", True
    return "candidate, not verified", True


def run(args) -> dict:
    if args.fill_region is not None:
        index_mod.FILL_REGION = args.fill_region
    if args.no_second_pass:
        identify_mod.SECOND_PASS = False
    cfg = labscale.ScaleConfig(profile=args.profile, items=args.items, probes=args.probes, seed=args.seed)
    t0 = time.perf_counter()
    items = labscale.render_items(cfg, Path(args.out), jobs=args.jobs)
    refs, _ = labscale.enroll_items(cfg, items, jobs=args.jobs)
    kept = [i for i, r in enumerate(refs) if r is not None]
    refs_k = [variant(refs[i], args.index_region, args.index_codes, args.index_eps_ratio) for i in kept]
    groups: dict = {}
    for k, ref in enumerate(refs_k):
        groups.setdefault((ref.params, ref.width, ref.height), []).append(k)
    n = len(refs_k)
    classes: collections.Counter = collections.Counter()
    accepted = collections.Counter()
    by_region: dict = collections.defaultdict(collections.Counter)
    with tempfile.TemporaryDirectory() as tmp:
        dbs, group_of = [], {}
        for g, ix in enumerate(groups.values()):
            db = Database(Path(tmp) / str(g))
            db.add_many([f"coat-{kept[k]}" for k in ix], [refs_k[k] for k in ix])
            dbs.append(db)
            group_of.update({k: db for k in ix})
        for k, ref in enumerate(refs_k):
            it = items[kept[k]]
            region = " / ".join(item_region(args.profile, it.coating_seed)) if labscale._randomized(cfg.lab()) else "-"
            for sp in it.probes:
                c, ok = classify(group_of[k], f"coat-{kept[k]}", ref, sp, n, dbs if args.all_groups else None)
                classes[c] += 1
                by_region[region][c] += 1
                accepted[region] += ok
                accepted[c, "accepted"] += ok
                accepted[region, "hit"] += ok and c == "hit"
        unknown = [sp for i, r in enumerate(refs) if r is None for sp in items[i].probes][: args.unknowns]
        false_ids = sum(any(identify(db, sp, searched=n).item is not None for db in dbs) for sp in unknown)
    probes = sum(classes.values())
    n_acc = sum(accepted[r] for r in by_region)

    def rate(c: collections.Counter, acc: int, hits_acc: int) -> dict:
        tot = sum(c.values())
        return {"probes": tot, "accepted_1to1": acc, "rank1": c["hit"] / tot if tot else None,
                "rank1_given_1to1": hits_acc / acc if acc else None}

    hits_acc = accepted["hit", "accepted"]

    return {
        "profile": args.profile, "seed": args.seed, "items": args.items, "enrolled": n, "groups": len(groups),
        "probes": probes, **{k: v for k, v in rate(classes, n_acc, hits_acc).items() if k != "probes"},
        "hits_rejected_1to1": classes["hit"] - hits_acc,
        "classes": {c: classes[c] for c in CLASSES},
        "false_identifications": classes["another item"],
        "unknown_probes": len(unknown), "unknown_identified": int(false_ids),
        "searched": "all groups" if args.all_groups else "own group",
        "index": {"region": args.index_region, "codes": args.index_codes, "eps_ratio": args.index_eps_ratio,
                  "fill_region": index_mod.FILL_REGION, "second_pass": identify_mod.SECOND_PASS,
                  "second_candidates": identify_mod.SECOND_CANDIDATES},
        "regions": {r: dict(rate(c, accepted[r], accepted[r, "hit"]), **{k: c[k] for k in CLASSES if c[k]})
                    for r, c in sorted(by_region.items())},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="run directory: the items' cache (a copy of a lab run's is reused)")
    ap.add_argument("--profile", default="wild", help="simulator profile (default wild)")
    ap.add_argument("--items", type=int, default=200, help="items rendered (about half of wild's enroll)")
    ap.add_argument("--probes", type=int, default=4, help="genuine probes per item")
    ap.add_argument("--seed", type=int, default=1, help="lab seed (the items' coatings and captures)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for rendering and enrollment")
    ap.add_argument("--all-groups", action="store_true", help="search every parameter group, as the lab does")
    ap.add_argument("--unknowns", type=int, default=40, help="probes of refused items searched in every group")
    ap.add_argument("--index-region", type=float, help="A/B: every reference's index_region")
    ap.add_argument("--index-codes", type=int, help="A/B: every reference's index_codes")
    ap.add_argument("--index-eps-ratio", type=float, help="A/B: index_eps = this x code_eps")
    ap.add_argument("--fill-region", type=float, help="A/B: the fill band's top, x index_region (1: no fill band)")
    ap.add_argument("--no-second-pass", action="store_true", help="A/B: identify without its second pass")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    rep = run(args)
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    g = rep["rank1_given_1to1"]
    print(f"{rep['profile']} seed {rep['seed']}: {rep['enrolled']} of {rep['items']} items enrolled "
          f"({rep['groups']} parameter groups), {rep['probes']} genuine probes, {rep['accepted_1to1']} accepted 1:1")
    print(f"rank-1 {100 * (rep['rank1'] or 0):.1f} %, rank-1 | 1:1 accepted {100 * (g or 0):.1f} % "
          f"(searched: {rep['searched']}); unknown probes identified: {rep['unknown_identified']} of {rep['unknown_probes']}")
    for c in CLASSES:
        print(f"  {c:26s} {rep['classes'][c]:6d}")
    print(f"{'region':48s} {'probes':>6s} {'rank-1':>7s} {'| 1:1':>7s}  misses")
    for r, d in rep["regions"].items():
        miss = ", ".join(f"{k} {d[k]}" for k in CLASSES[1:] if d.get(k))
        g = d["rank1_given_1to1"]
        print(f"{r:48s} {d['probes']:6d} {100 * d['rank1']:6.1f}% {'-' if g is None else f'{100 * g:5.1f}%':>7s}  {miss}")
    print(f"{rep['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
