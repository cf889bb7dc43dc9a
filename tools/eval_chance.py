"""Where the chance model's impostor tail departs from 10^t, and why (issue 12): its parts, one at a time.

    python tools/eval_chance.py --out DIR --profile wild --items 40 --probes 4 --seed 1 [--blocks 5]

DIR is a ``glint lab impostors`` run directory (its render and detection caches are reused; the items
are rendered there if absent). Every probe and enrollment capture of the first items meets every
other enrolled item's reference; for each pair with a hypothesis the scored seeds are recomputed
with the matcher's own ``score_seeds`` (its source, with its internals kept: each used spot's radius,
chance probability p_i and whether it coincided), beside the pair's H, transform groups and lambda.
Printed:

1. the chance code matches: sum of lambda against sum of H, P(H > 0) predicted (1 - exp(-lambda))
   against seen, and the seeds scored against E[min(Poisson(lambda), 6)];
2. per spot: the rate at which mapped spots coincide against the model's p_i, and against the
   exact coverage of the probe's spots (``coverage``: the fraction of the probe's grown hull within r
   of one of its spots, from a distance transform: overlaps, edges and clustering included);
3. the tail (fraction of all trials with log10_far <= t, against 10^t) of four forms: Bonferroni over
   H with P(K >= k); the best of the scored seeds (lambda) with P(K >= k); with the mid-p tail (the
   model in use); the same with the exact coverage for p_i. Beside each, the compensator: the sum over
   the trials of the probability, under that form's own count model (exact Poisson-binomial of the
   seed's p_i), that the trial reaches t given its scored seeds: the analytic tail of a discrete
   statistic, which 10^t is only on average.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from glint.match import calibrate
from glint.match.codes import match_codes
from glint.match.labscale import ScaleConfig, enroll_items, render_items
from glint.match.verify import chance_codes, prepare

V = importlib.import_module("glint.match.verify")
THRESHOLDS = np.arange(-1.0, -5.01, -0.5)
RADII = np.geomspace(0.5, 80.0, 96)


def _score_seeds_detail():
    """verify.score_seeds, its internals kept in ``cap`` (checked against the original's result)."""
    src = inspect.getsource(V.score_seeds)
    reps = [("def score_seeds(", "def score_seeds_detail(cap, "),
            ("    # k: distinct probe spots", "    cap.update(p_i=p_i.copy(), use=use.copy(), near=near.copy(), radius=radius.copy())\n"
                                         "    # k: distinct probe spots")]
    for a, b in reps:
        if a not in src:
            raise SystemExit(f"verify.score_seeds changed: {a.strip()!r} not found; update tools/eval_chance.py")
        src = src.replace(a, b, 1)
    g = dict(V.__dict__)
    exec(compile(src, "score_seeds_detail", "exec"), g)
    return g["score_seeds_detail"]


def seeds_of(detail, ref, probe):
    p = ref.params
    ri, pj = match_codes(ref.quads, ref.boxes, probe.table, p)
    if len(ri) == 0:
        return len(ri), 0, []
    rseed, pseed = ref.quads.idx[ri], probe.table.quads.idx[pj]
    pxy = probe.spots.xy
    zr = ref.xy[rseed, 0] + 1j * ref.xy[rseed, 1]
    zp = pxy[pseed, 0] + 1j * pxy[pseed, 1]
    a, b = V.similarity_batch(zr, zp)
    ka = np.round(np.angle(a) / V.ANGLE_BIN).astype(np.int64) % 72
    key = (ka * 4096 + np.round(b.real / V.SHIFT_BIN).astype(np.int64) + 2048) * 4096 + (
        np.round(b.imag / V.SHIFT_BIN).astype(np.int64) + 2048)
    cand = V.candidate_order(a, b, p.max_hypotheses)
    maps = V.affine_batch(ref.xy[rseed[cand]], pxy[pseed[cand]], a[cand], b[cand])
    noise = V.pair_noise(ref, probe)
    cap: dict = {}
    n, k, pbar, log_u = detail(cap, ref.xy, pxy, maps, rseed[cand], pseed[cand], p, probe.spots.width, probe.spots.height,
                        probe.area, probe.edges, V.median(noise) if len(noise) else 0.0, p.far_chance_scale)
    sc = V.score_prepared(ref, probe)
    if not (len(ri) == sc.hypotheses and int(k.min()) <= sc.k <= int(k.max())):
        raise SystemExit("the recomputed seeds differ from verify's score: update tools/eval_chance.py")
    u = cap["use"]
    seeds = [dict(k=int(k[h]), p=np.minimum(1.0, cap["p_i"][h][u[h]] * p.far_chance_scale),
                  near=cap["near"][h][u[h]], r=cap["radius"][h][u[h]], log_u=float(log_u[h])) for h in range(len(n))]
    return len(ri), len(np.unique(key)), seeds


def coverage(spots) -> np.ndarray:
    """Fraction of the probe's hull grown by HULL_MARGIN within r of one of its other spots, at RADII
    (1 px distance transform; the seed's four spots excluded as M - 4 of M: 1 - (1 - F)^((M - 4) / M))."""
    xy = spots.xy.astype(np.float32)
    img = np.ones((spots.height + 1, spots.width + 1), np.uint8)
    ij = np.clip(np.round(xy).astype(int), 0, [spots.width, spots.height])
    img[ij[:, 1], ij[:, 0]] = 0
    dist = cv2.distanceTransform(img, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    mask = np.zeros_like(img)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull(xy)).astype(np.int32), 1)
    m = int(2 * V.HULL_MARGIN + 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (m, m)))
    d = np.sort(dist[mask > 0])
    f = np.minimum(np.searchsorted(d, RADII, "right") / max(1, len(d)), 1.0 - 1e-12)
    n = len(xy)
    return 1.0 - (1.0 - f) ** (max(n - 4, 0) / max(n, 1))


def pb_tail(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(K >= j), P(K = j)) for j = 0 .. n + 1 of a sum of Bernoulli(p_i) (exact, by convolution)."""
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for q in p:
        pmf[1:] = pmf[1:] * (1 - q) + pmf[:-1] * q
        pmf[0] *= 1 - q
    pmf = np.append(pmf, 0.0)
    return np.cumsum(pmf[::-1])[::-1], pmf


STEP_GRID = np.log(np.concatenate([np.geomspace(calibrate.STEP_FLOOR, 1.0, 96)]))


def evaluate(name, recs, n_trials, pfun, mult, mid, binom_mean, step=False):
    """One form: its tail against 10^t and against its compensator. ``step``: the p-value
    P(K > k) + u P(K = k) with the seed's own step position u (calibrate.step_position), whose
    compensator adds, for the step just short of t, the chance that u (uniform, floored) reaches it."""
    far, comp = [], np.zeros(len(THRESHOLDS))
    for r in recs:
        if r["H"] == 0:
            continue
        lm = mult(r)
        best, miss = 0.0, np.ones(len(THRESHOLDS))
        for s in r["seeds"]:
            p = pfun(r, s)
            exact, pmf = pb_tail(p)
            if binom_mean:  # the model's tail: Binomial(n, mean p) at k
                n = len(p)
                kk = np.arange(n + 2)
                stat = calibrate.log10_binom_sf_many(kk, np.full(n + 2, n), np.full(n + 2, p.mean() if n else 0.0),
                                                     mid=mid)
            else:
                with np.errstate(divide="ignore"):
                    stat = np.log10(np.maximum(exact - (0.5 * pmf if mid else 0.0), 1e-300))
            lt = lm(stat)
            if step:
                nn = len(p)
                kk = np.arange(nn + 2)
                pm = p.mean() if nn else 0.0
                obs = calibrate.log10_binom_sf_many(np.array([s["k"]]), np.array([nn]), np.array([pm]),
                                                    log_u=np.array([s["log_u"]]))
                best = min(best, float(lm(obs)[0]) if s["k"] > 0 else 0.0)
                # u over a grid, per count: the statistic of (k, u)
                ks = np.repeat(kk, len(STEP_GRID))
                ug = np.tile(STEP_GRID, len(kk))
                su = lm(calibrate.log10_binom_sf_many(ks, np.full(len(ks), nn), np.full(len(ks), pm), log_u=ug))
                su = su.reshape(len(kk), len(STEP_GRID))
                for ti, t in enumerate(THRESHOLDS):
                    js = np.flatnonzero(lt <= t + 1e-12)  # u = 1 reaches t from these counts on
                    j0 = js[0] if len(js) else nn + 1
                    reach = exact[j0] if j0 <= nn + 1 else 0.0
                    if 1 <= j0 - 1 <= nn:  # the count one step short: reaches t where its u is small enough
                        ok = np.flatnonzero(su[j0 - 1] <= t + 1e-12)
                        if len(ok):
                            reach += pmf[j0 - 1] * math.exp(STEP_GRID[ok[-1]])
                    miss[ti] *= 1.0 - reach
                continue
            best = min(best, float(lt[s["k"]]))
            for ti, t in enumerate(THRESHOLDS):
                js = np.flatnonzero(lt <= t + 1e-12)
                miss[ti] *= 1.0 - (exact[js[0]] if len(js) else 0.0)
        far.append(best)
        comp += 1.0 - miss
    far = np.array(far)
    cnt = np.array([(far <= t + 1e-12).sum() for t in THRESHOLDS])
    dev = " ".join(f"{math.log10(c / n_trials) - t:+.2f}" if c else "   - " for c, t in zip(cnt, THRESHOLDS))
    cdev = " ".join(f"{math.log10(c / x):+.2f}" if c and x > 0 else "   - " for c, x in zip(cnt, comp))
    print(f"{name:44s} {dev}  | {cdev}  | {' '.join(str(int(c)) for c in cnt)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="a glint lab impostors run directory (its caches are reused)")
    ap.add_argument("--profile", default="wild", help="simulator profile (as the run's)")
    ap.add_argument("--items", type=int, default=40, help="items of the run to use (the first ones)")
    ap.add_argument("--probes", type=int, default=4, help="probes per item (as the run's)")
    ap.add_argument("--seed", type=int, default=1, help="the run's seed")
    ap.add_argument("--jobs", type=int, default=1, help="workers for rendering and enrollment")
    a = ap.parse_args(argv)
    cfg = ScaleConfig(profile=a.profile, items=a.items, probes=a.probes, seed=a.seed, captures_as_probes=True)
    items = render_items(cfg, Path(a.out), a.jobs)
    refs, _ = enroll_items(cfg, items, a.jobs)
    live = [(i, r) for i, r in enumerate(refs) if r is not None]
    print(f"{a.profile} seed {a.seed}: {len(items)} items, {len(live)} enrolled")
    detail = _score_seeds_detail()
    recs = []
    for ii, it in enumerate(items):
        for spots in it.probes + it.captures:
            coded: dict = {}
            cov = None
            for ri, ref in live:
                if ri == ii:
                    continue
                pr = coded.get(ref.params)
                if pr is None:
                    pr = coded[ref.params] = prepare(spots, ref.params)
                lam = chance_codes(ref, pr)
                h, g, seeds = seeds_of(detail, ref, pr)
                if h and cov is None:
                    cov = coverage(spots)
                recs.append(dict(H=h, G=g, lam=lam, seeds=seeds, cov=cov if h else None))
    n = len(recs)
    lam = np.array([r["lam"] for r in recs])
    hyp = np.array([r["H"] for r in recs])
    m = np.array([len(r["seeds"]) for r in recs])
    hh = np.arange(7)
    pm = np.exp(hh[None, :] * np.log(np.maximum(lam, 1e-300))[:, None] - lam[:, None]
                - np.array([math.lgamma(v + 1) for v in hh])[None, :])
    pm[:, 6] = np.maximum(0.0, 1.0 - pm[:, :6].sum(1))
    print(f"1. trials {n:,}; chance code matches: sum lambda {lam.sum():,.0f}, sum H {hyp.sum():,}; pairs with one: "
          f"predicted {(-np.expm1(-lam)).sum():,.0f}, seen {(hyp > 0).sum():,}; seeds scored: E[min(Poisson, 6)] "
          f"{(pm * hh).sum():,.0f}, scored {m.sum():,}; transform groups {sum(r['G'] for r in recs):,}")
    p = np.concatenate([s["p"] for r in recs for s in r["seeds"]] or [np.zeros(0)])
    y = np.concatenate([s["near"] for r in recs for s in r["seeds"]] or [np.zeros(0)]).astype(float)
    c = np.concatenate([np.interp(s["r"], RADII, r["cov"]) for r in recs for s in r["seeds"]] or [np.zeros(0)])
    print(f"2. spots {len(p):,}: coincided {y.sum():,.0f}, model p {p.sum():,.1f} ({y.sum() / max(p.sum(), 1e-9):.3f}), "
          f"coverage {c.sum():,.1f} ({y.sum() / max(c.sum(), 1e-9):.3f})")
    edges = [0, .01, .02, .05, .1, .2, .4, 1.01]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (p >= lo) & (p < hi)
        if sel.sum() >= 50:
            print(f"   model p {lo:.2f}-{hi:.2f}: spots {sel.sum():7,d} coincided {y[sel].mean():.4f} model {p[sel].mean():.4f}"
                  f" coverage {c[sel].mean():.4f}")
    print("3. tail: log10 (fraction <= t) - t at t = " + " ".join(f"{t:.1f}" for t in THRESHOLDS)
          + "  | against the compensator | counts")

    def seeds_lam(r):
        return lambda stat: calibrate.seeds_log10_far(np.full(len(stat), r["lam"]), stat)

    def bonf(r):
        return lambda stat: np.minimum(0.0, math.log10(r["H"]) + stat)

    def model_p(r, s):
        return s["p"]

    def cov_p(r, s):
        return np.interp(s["r"], RADII, r["cov"])

    evaluate("Bonferroni over H, P(K >= k)", recs, n, model_p, bonf, False, True)
    evaluate("best of the seeds (lambda), P(K >= k)", recs, n, model_p, seeds_lam, False, True)
    evaluate("... mid-p (the model before the step position)", recs, n, model_p, seeds_lam, True, True)
    evaluate("... mid-p with the exact coverage for p_i", recs, n, cov_p, seeds_lam, True, True)
    evaluate("... the step position: the model in use", recs, n, model_p, seeds_lam, False, True, step=True)
    evaluate("... the step position, exact coverage", recs, n, cov_p, seeds_lam, False, True, step=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
