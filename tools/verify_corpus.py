#!/usr/bin/env python3
"""1:1 verify's decisions corpus: a fixed set of references and probes and the full verify output
of each pair, so a speed change to the matcher is provably decision-neutral; and a quick 1:1 bench.

    python tools/verify_corpus.py check              # every output as recorded? (what the test asserts)
    python tools/verify_corpus.py bench [--rounds 5]  # 1:1 verify ms per pair over the corpus (median, p90)
    python tools/verify_corpus.py ab REV [--rounds 5] # REV's glint.match against the working tree's, interleaved
    python tools/verify_corpus.py ab REV --sim        # ... on tools/bench_match.py's own 12 simulator pairs
    python tools/verify_corpus.py instr [REV] [--sim] # callgrind instructions per 1:1 verify (REV's or the tree's)
    python tools/verify_corpus.py update              # record the outputs again (a deliberate decision change)
    python tools/verify_corpus.py make                # draw the corpus again from the simulator (and record)

The corpus (tests/host/match/data/verify_corpus.npz) holds spot sets, not images, so a detector or
simulator change does not move it: per profile field, harsh and wild, items enrolled from three
captures, a genuine probe of each, an impostor probe (the next item's) and, for some, a clone's
probe (glint.sim.clone_coating, displaced 0.6 px). The recorded output of each pair is everything
verify returns: the decision and reason, log10_far and the seed's tail, hypotheses, seed and refit
matched counts, the transform, the residual, expected noise, ratio, the clone gate's statistic and
p-value, and the matched pairs. ``check`` reports bit-identical outputs and any difference;
tests/host/match/test_verify_corpus.py asserts the decisions, counts and pairs exactly and the
floats to 1e-9 relative (a BLAS on another machine may round the last bits differently).

Whoever changes a decision on purpose runs ``update`` and says in the commit what moved
(``check`` lists it before). ``bench``/``ab`` time verify(reference, SpotSet) as
tools/bench_match.py does (the probe's quads included, the reference's cached), CPU time per
call; ``ab`` alternates the two packages pair by pair, so on a loaded machine the ratio holds. ``instr`` counts
the instructions of the same calls with ``valgrind --tool=callgrind`` (collection switched on around
the timed rounds only, after a warm-up round): the figure a loaded machine does not move; with REV,
REV's glint.match is counted instead of the working tree's (run it for both, they need not share a
machine minute). Needs valgrind; about a minute for ``--sim --rounds 2`` on a loaded machine.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "host" / "match" / "data" / "verify_corpus.npz"
PROFILES = ("field", "harsh", "wild")
ITEMS = 28        # per profile: genuine and impostor pairs each
CLONES = 10       # per profile: clone probes of the first items
CLONE_PX = 0.6
FLOATS = ("log10_far", "log10_tail", "residual", "expected_noise", "residual_ratio", "residual_p", "residual_z2")
INTS = ("match", "matched", "hypotheses", "seed_matched")


# ----------------------------------------------------------------------------------------- corpus
def make_corpus() -> dict:
    """Draw references and probes from the simulator: {"refs": [Reference bytes], "probes": [SpotSet],
    "pairs": [(ref, probe, kind, profile)]}."""
    from glint import sim
    from glint.errors import MatchError
    from glint.match import enroll, spots_from_image
    from glint.sim.render import Pose

    refs: list[bytes] = []
    probes: list = []
    pairs: list[tuple[int, int, str, str]] = []
    for pi, prof in enumerate(PROFILES):
        items = []
        for i in range(ITEMS + 6):  # a few spare for items that do not enroll
            if len(items) == ITEMS:
                break
            seed = 70000 + 1000 * pi + i
            c = sim.make_coating(seed, prof)
            caps = [spots_from_image(sim.capture(c, prof, seed=3 * i + k, pose=Pose()).image) for k in range(3)]
            try:
                ref = enroll(caps)
            except MatchError:
                continue
            refs.append(ref.to_bytes())
            probes.append(spots_from_image(sim.capture(c, prof, seed=900 + i).image))
            items.append((len(refs) - 1, len(probes) - 1, c, i))
        for n, (r, p, _c, _i) in enumerate(items):
            pairs.append((r, p, "genuine", prof))
            pairs.append((r, items[(n + 1) % len(items)][1], "impostor", prof))
        for r, _p, c, i in items[:CLONES]:
            cl = sim.clone_coating(c, CLONE_PX, seed=i, profile=prof)
            probes.append(spots_from_image(sim.capture(cl, prof, seed=1900 + i).image))
            pairs.append((r, len(probes) - 1, "clone", prof))
    return {"refs": refs, "probes": probes, "pairs": pairs}


def _meta_json(meta: dict) -> dict:
    m = dict(meta)
    if "quality" in m:
        m["quality"] = {str(k): v for k, v in m["quality"].items()}
    return m


def _meta_back(meta: dict) -> dict:
    m = dict(meta)
    if "quality" in m:
        m["quality"] = {int(k): v for k, v in m["quality"].items()}
    return m


def save(path: Path, corpus: dict, outputs: list[dict]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, b in enumerate(corpus["refs"]):
        arrays[f"ref{i}"] = np.frombuffer(b, np.uint8)
    head_probes = []
    for i, s in enumerate(corpus["probes"]):
        arrays[f"probe{i}_xy"] = s.xy
        arrays[f"probe{i}_flux"] = s.flux
        head_probes.append({"width": s.width, "height": s.height, "meta": _meta_json(s.meta)})
    for n, o in enumerate(outputs):
        arrays[f"out{n}_transform"] = o["transform"]
        arrays[f"out{n}_pairs"] = o["pairs"]
    head = {"refs": len(corpus["refs"]), "probes": head_probes, "pairs": corpus["pairs"],
            "outputs": [{k: v for k, v in o.items() if k not in ("transform", "pairs")} for o in outputs]}
    arrays["head"] = np.frombuffer(json.dumps(head).encode(), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())


def load(path: Path = CORPUS) -> tuple[dict, list[dict]]:
    """The stored corpus ({"refs": [bytes], "probes": [SpotSet], "pairs"}) and its recorded outputs."""
    from glint.match import SpotSet

    z = np.load(path, allow_pickle=False)
    head = json.loads(bytes(z["head"]).decode())
    refs = [bytes(z[f"ref{i}"]) for i in range(head["refs"])]
    probes = [SpotSet(z[f"probe{i}_xy"], z[f"probe{i}_flux"], p["width"], p["height"], f"corpus probe {i}",
                      _meta_back(p["meta"])) for i, p in enumerate(head["probes"])]
    outputs = []
    for n, o in enumerate(head["outputs"]):
        o = dict(o)
        o["transform"] = z[f"out{n}_transform"]
        o["pairs"] = z[f"out{n}_pairs"]
        outputs.append(o)
    return {"refs": refs, "probes": probes, "pairs": [tuple(p) for p in head["pairs"]]}, outputs


# ----------------------------------------------------------------------------------------- outputs
def output(res) -> dict:
    """Everything verify returned, as plain values (None floats as NaN)."""
    def f(v):
        return math.nan if v is None else float(v)

    return {"match": int(bool(res.match)), "matched": int(res.matched), "hypotheses": int(res.hypotheses),
            "seed_matched": int(res.seed_matched), "reason": res.reason,
            **{k: f(getattr(res, k)) for k in FLOATS},
            "transform": np.full((3, 3), np.nan) if res.transform is None else np.asarray(res.transform, np.float64),
            "pairs": np.zeros((0, 2), np.int64) if res.pairs is None else np.asarray(res.pairs, np.int64)}


def run(corpus: dict, verify=None, reference_cls=None) -> list[dict]:
    """Verify every pair of the corpus (fresh references: nothing cached from an earlier run)."""
    if verify is None:
        from glint.match import verify
    refs = references(corpus, reference_cls)
    return [output(verify(refs[r], corpus["probes"][p])) for r, p, _k, _prof in corpus["pairs"]]


def references(corpus: dict, reference_cls=None) -> list:
    if reference_cls is None:
        from glint.match import Reference as reference_cls
    return [reference_cls.from_bytes(b) for b in corpus["refs"]]


def differences(new: list[dict], old: list[dict], corpus: dict, rtol: float = 0.0) -> list[str]:
    """One line per pair whose output differs (floats beyond ``rtol`` relative; NaN equals NaN)."""
    out = []
    for n, (a, b) in enumerate(zip(new, old)):
        r, p, kind, prof = corpus["pairs"][n]
        bad = [k for k in INTS + ("reason",) if a[k] != b[k]]
        for k in FLOATS:
            x, y = a[k], b[k]
            if not (x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= rtol * max(abs(x), abs(y))):
                bad.append(k)
        if a["transform"].shape != b["transform"].shape or not np.allclose(
                a["transform"], b["transform"], rtol=rtol, atol=0.0, equal_nan=True):
            bad.append("transform")
        if a["pairs"].shape != b["pairs"].shape or not np.array_equal(a["pairs"], b["pairs"]):
            bad.append("pairs")
        if bad:
            out.append(f"pair {n} ({prof} {kind}, ref {r}, probe {p}): " + ", ".join(
                f"{k} {b[k]!r} -> {a[k]!r}" if k not in ("transform", "pairs") else k for k in bad))
    if len(new) != len(old):
        out.append(f"{len(new)} outputs against {len(old)} recorded")
    return out


# ----------------------------------------------------------------------------------------- timing
def load_revision(rev: str):
    """REV's glint.match as a separate package (glint_match_REV; its imports of glint.match rewritten)."""
    name = "glint_match_" + re.sub(r"\W", "_", rev)
    if name in sys.modules:
        return sys.modules[name]
    tmp = Path(tempfile.mkdtemp(prefix="glint-ab-"))
    pkg = tmp / name
    pkg.mkdir()
    files = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:host/glint/match"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for fn in files:
        if not fn.endswith(".py"):
            continue
        src = subprocess.run(["git", "show", f"{rev}:host/glint/match/{fn}"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        (pkg / fn).write_text(re.sub(r"\bglint\.match\b", name, src))
    sys.path.insert(0, str(tmp))
    return importlib.import_module(name)


def timing_set(corpus: dict, mod, kinds=("genuine", "impostor"), profiles=PROFILES):
    """(reference, probe) pairs of the corpus for ``mod`` (a glint.match package), references warmed."""
    refs = references(corpus, mod.Reference)
    probes = [mod.SpotSet(s.xy, s.flux, s.width, s.height, s.source, s.meta) for s in corpus["probes"]]
    out = [(refs[r], probes[p]) for r, p, k, prof in corpus["pairs"] if k in kinds and prof in profiles]
    for r, p in out:
        mod.verify(r, p)
    return out


def summary(ts: list[float]) -> dict:
    s = sorted(ts)
    return {"median_ms": round(statistics.median(s) * 1e3, 3), "p90_ms": round(s[int(0.9 * (len(s) - 1))] * 1e3, 3),
            "calls": len(s)}


def bench(corpus: dict, rounds: int, kinds, profiles) -> dict:
    import glint.match as mod

    pairs = timing_set(corpus, mod, kinds, profiles)
    ts = []
    for _ in range(rounds):
        for r, p in pairs:
            a = time.process_time()
            mod.verify(r, p)
            ts.append(time.process_time() - a)
    return summary(ts)


def bench_match_corpus() -> dict:
    """tools/bench_match.py's 1:1 pairs as a corpus: 12 field items enrolled from 3 captures, a new
    capture of each as its probe (genuine pairs only)."""
    from glint import sim
    from glint.match import enroll, spots_from_image
    from glint.sim.render import Pose

    refs, probes = [], []
    for i in range(12):
        c = sim.make_coating(5000 + i)
        e = [sim.capture(c, seed=3 * i + k, pose=Pose()).image for k in range(3)]
        refs.append(enroll([spots_from_image(x) for x in e]).to_bytes())
        probes.append(spots_from_image(sim.capture(c, seed=900 + i).image))
    return {"refs": refs, "probes": probes, "pairs": [(i, i, "genuine", "field") for i in range(12)]}


def ab(corpus: dict, rev: str, rounds: int, kinds, profiles) -> dict:
    import glint.match as new

    old = load_revision(rev)
    pn, po = timing_set(corpus, new, kinds, profiles), timing_set(corpus, old, kinds, profiles)
    tn, to = [], []
    for _ in range(rounds):
        for (rn, pnew), (ro, pold) in zip(pn, po):
            a = time.process_time()
            old.verify(ro, pold)
            b = time.process_time()
            new.verify(rn, pnew)
            c = time.process_time()
            to.append(b - a)
            tn.append(c - b)
    so, sn = summary(to), summary(tn)
    return {"old": so, "new": sn, "ratio_median": round(sn["median_ms"] / so["median_ms"], 3),
            "ratio_p90": round(sn["p90_ms"] / so["p90_ms"], 3), "rev": rev}


_INSTR_CHILD = "GLINT_VERIFY_CORPUS_INSTR"


def instr_child(corpus: dict, rev: str | None, rounds: int, kinds, profiles) -> None:
    """Under callgrind: warm up, then count ``rounds`` rounds of verify over the pairs."""
    import glint.match as tree

    mod = load_revision(rev) if rev else tree
    pairs = timing_set(corpus, mod, kinds, profiles)  # verifies each pair once: the warm-up
    ctl = ["callgrind_control", "-i"]
    subprocess.run(ctl + ["on", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)
    for _ in range(rounds):
        for r, p in pairs:
            mod.verify(r, p)
    subprocess.run(ctl + ["off", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)
    print(f"calls {rounds * len(pairs)}")


def instr(argv: list[str], rev: str | None) -> dict:
    """Run this tool's ``instr`` under callgrind: instructions per verify call."""
    out = Path(tempfile.mkdtemp(prefix="glint-verify-instr-")) / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable,
           __file__, *argv]
    try:
        proc = subprocess.run(cmd, env=dict(os.environ, **{_INSTR_CHILD: "1"}), capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)") from None
    m, c = re.search(r"Collected : ([0-9]+)", proc.stderr), re.search(r"calls ([0-9]+)", proc.stdout)
    if proc.returncode != 0 or m is None or c is None:
        raise SystemExit(f"callgrind run failed: {proc.stderr.strip().splitlines()[-1:]}")
    calls = int(c.group(1))
    return {"instructions_per_verify": round(int(m.group(1)) / calls), "calls": calls, "rev": rev or "working tree",
            "profile": str(out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("check", "bench", "ab", "instr", "update", "make"), help="see the module docstring")
    ap.add_argument("rev", nargs="?", help="ab: the git revision whose glint.match is the baseline; instr: the one "
                                           "counted (default: the working tree's)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="bench/ab: timing rounds over the pairs (default 5); instr: counted rounds (default 2)")
    ap.add_argument("--kinds", default="genuine,impostor",
                    help="bench/ab/instr: which pairs to time (genuine,impostor,clone)")
    ap.add_argument("--profiles", default=",".join(PROFILES), help="bench/ab/instr: which profiles' pairs to time")
    ap.add_argument("--corpus", default=str(CORPUS), help="the corpus file (default: the test's)")
    ap.add_argument("--sim", action="store_true",
                    help="bench/ab/instr: time tools/bench_match.py's 12 field pairs instead")
    args = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(args)
    if a.rounds is None:
        a.rounds = 2 if a.what == "instr" else 5
    path = Path(a.corpus)
    kinds, profiles = tuple(a.kinds.split(",")), tuple(a.profiles.split(","))
    if a.what == "make":
        corpus = make_corpus()
        save(path, corpus, run(corpus))
        print(f"{path}: {len(corpus['pairs'])} pairs, {len(corpus['refs'])} references, {len(corpus['probes'])} probes")
        return 0
    if a.what == "instr" and not os.environ.get(_INSTR_CHILD):
        print(json.dumps(instr(args, a.rev)))
        return 0
    if a.sim and a.what in ("bench", "ab", "instr"):
        corpus, kinds, profiles = bench_match_corpus(), ("genuine",), ("field",)
    else:
        corpus, recorded = load(path)
    if a.what == "update":
        new = run(corpus)
        diff = differences(new, recorded, corpus)
        save(path, corpus, new)
        print("\n".join(diff) or "no output changed")
        print(f"{path}: {len(new)} outputs recorded")
        return 0
    if a.what == "check":
        new = run(corpus)
        exact = differences(new, recorded, corpus)
        close = differences(new, recorded, corpus, 1e-9)
        print("\n".join(close))
        print(f"{len(new)} pairs: {len(new) - len(exact)} bit-identical, {len(exact) - len(close)} within 1e-9 only, "
              f"{len(close)} different")
        return 1 if close else 0
    if a.what == "bench":
        print(json.dumps(bench(corpus, a.rounds, kinds, profiles)))
        return 0
    if a.what == "instr":
        instr_child(corpus, a.rev, a.rounds, kinds, profiles)
        return 0
    if not a.rev:
        ap.error("ab needs a revision")
    print(json.dumps(ab(corpus, a.rev, a.rounds, kinds, profiles)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
