#!/usr/bin/env python3
"""1:1 verify A/B: another revision's glint/match/verify.py against the working tree's, interleaved.

usage: python tools/bench_verify_ab.py REV [--profile field|harsh|...] [--rounds 15]

Loads ``git show REV:host/glint/match/verify.py`` as a module beside the current one, enrolls 12
simulator items (3 captures each) and times both verifies alternately on the same genuine and
impostor pairs (CPU time per call, medians): on a loaded machine the ratio of the two is what
holds, not the absolute times.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="git revision whose verify.py is the baseline")
    ap.add_argument("--profile", default="field", help="simulator profile of the pairs (default field)")
    ap.add_argument("--rounds", type=int, default=15, help="timing rounds over the 12 pairs (default 15)")
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{args.rev}:host/glint/match/verify.py"], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("glint.match.verify_baseline", f.name)
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old
    spec.loader.exec_module(old)
    new = importlib.import_module("glint.match.verify")

    from glint import sim
    from glint.errors import MatchError
    from glint.match import enroll, spots_from_image
    from glint.sim.render import Pose

    refs, probes = [], []
    for i in range(12):
        c = sim.make_coating(5000 + i, args.profile)
        caps = [sim.capture(c, args.profile, seed=3 * i + k, pose=Pose()).image for k in range(3)]
        try:
            refs.append(enroll([spots_from_image(x) for x in caps]))
        except MatchError as e:
            print(f"item {i} not enrolled: {e.msg}")
            continue
        probes.append(spots_from_image(sim.capture(c, args.profile, seed=900 + i).image))
    pairs = list(zip(refs, probes))
    impostors = [(refs[i], probes[(i + 1) % len(probes)]) for i in range(len(refs))]
    for r, p in pairs:  # warm-up (quads computed once per reference)
        new.verify(r, p)
        old.verify(r, p)
    t: dict[str, list[float]] = {"old": [], "new": [], "old_imp": [], "new_imp": []}
    for _ in range(args.rounds):
        for (r, p), (ri, pi) in zip(pairs, impostors):
            for name, mod in (("old", old), ("new", new)):
                a = time.process_time()
                mod.verify(r, p)
                t[name].append(time.process_time() - a)
                a = time.process_time()
                mod.verify(ri, pi)
                t[name + "_imp"].append(time.process_time() - a)
    med = {k: statistics.median(v) * 1e3 for k, v in t.items()}
    print({k: round(v, 3) for k, v in med.items()}, "ms")
    print(f"ratio genuine {med['new'] / med['old']:.3f}, impostor {med['new_imp'] / med['old_imp']:.3f}; "
          f"genuine matches new {sum(new.verify(r, p).match for r, p in pairs)} "
          f"old {sum(old.verify(r, p).match for r, p in pairs)} of {len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
