"""Enrollment: fuse one or more captures of an item into a Reference, behind a quality gate.

Captures are registered to the one with the most spots (1:1 verify, so a capture of a
different item is refused), their spots mapped into that frame and clustered; a spot is
kept when it repeats in enough captures (all of them for two, a majority for more), at
the mean of its positions, which also averages the localisation noise away. The gate
refuses a reference that would verify poorly and says why.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import cv2
import numpy as np

from glint.errors import MatchError
from glint.match.noise import clone_power_pairs
from glint.match.params import CALIBRATED, MatchParams
from glint.match.reference import Reference
from glint.match.spots import SpotSet
from glint.match.verify import verify

log = logging.getLogger(__name__)

MIN_REF_SPOTS = 20        # fewer and the chance model cannot reach 1e-9 with margin
MIN_INDEX_QUADS = 8       # index quads are a quarter of all (index_region); fewer and identify has too few votes
MIN_COVERAGE = 0.10       # convex hull of the spots / frame area (a coating dot fills ~35% of the sim frame)
MIN_REPEAT = 0.35         # fraction of a capture's spots that must repeat in the others
FUSE_RADIUS = 1.0         # px: positions of one particle in registered captures agree this well,
FUSE_NOISE_K = 4.0        # ... or within this many times the pair's noise where the captures are noisy
MAX_CAPTURES = 16
# Two raw captures share fewer spots than a probe and a fused reference (each lost ~30%
# independently), so registration uses every quad and a looser, still far-beyond-chance
# bound; the fused reference is then held to the full decision by every later verify.
LOG10_FAR_REGISTER = -6.0
REGISTER_EPS_WIDE = 0.03  # code tolerance of the second registration attempt (glint.match.params.CODE_EPS_MAX)
REGISTER_CODES = 4000
# The item's measured repeatability over the model's prediction is kept within this range: below it
# the model's floor, above it a capture so poor the gate would accept anything.
NOISE_SCALE_RANGE = (0.8, 5.0)
# Held-out prediction (three captures or more): each capture verified as a rescan against the
# reference with its own positions held out (held_out). Captures taken at one placement share more
# than a rescan at another pose (rotation, tilt, scale) does: on the simulator's wild family a
# genuine rescan's log10 FAR is at least 0.45 x the second best held-out one for 92.5 % of the
# probes (median 0.84; seeds 3 and 4, 240 probes; docs/matching.md). So all but one held-out
# capture must reach the operating point less this margin (decades): -20 at the -9 operating point.
HELD_OUT_MARGIN = 11.0
CLONE_RATIO = 2.0  # rescans must match enough pairs for the clone gate to refuse a replica this far off (x noise)
HELD_OUT_MIN_SPOTS = 8  # a held-out reference with fewer spots is not verified (it cannot match)


def _cluster(points: list[np.ndarray], flux: list[np.ndarray], radius: float, sigma: list[np.ndarray] | None = None):
    """Greedy clustering of registered spot lists; one spot per capture per cluster.

    Returns (mean xy (C,2), mean flux (C,), support (C,), members: list of per-capture index arrays,
    sigma of each mean (C,): sqrt(sum of the members' sigma^2) / support)."""
    if sigma is None:
        sigma = [np.zeros(len(p)) for p in points]
    centres = points[0].copy()
    sums, fsum = points[0].copy(), flux[0].copy()
    vsum = sigma[0] ** 2
    support = np.ones(len(centres), np.int64)
    member = [np.arange(len(points[0]))]
    for ci in range(1, len(points)):
        p = points[ci]
        if len(centres) and len(p):
            d = np.hypot(p[:, None, 0] - centres[None, :, 0], p[:, None, 1] - centres[None, :, 1])
            j = d.argmin(1)
            i_back = d.argmin(0)
            ok = (i_back[j] == np.arange(len(p))) & (d[np.arange(len(p)), j] <= radius)
        else:
            j, ok = np.zeros(len(p), np.int64), np.zeros(len(p), bool)
        assign = np.full(len(p), -1, np.int64)
        assign[ok] = j[ok]
        sums[j[ok]] += p[ok]
        fsum[j[ok]] += flux[ci][ok]
        vsum[j[ok]] += sigma[ci][ok] ** 2
        support[j[ok]] += 1
        new = np.nonzero(~ok)[0]
        assign[new] = len(centres) + np.arange(len(new))
        centres = np.concatenate([centres, p[new]])
        sums = np.concatenate([sums, p[new]])
        fsum = np.concatenate([fsum, flux[ci][new]])
        vsum = np.concatenate([vsum, sigma[ci][new] ** 2])
        support = np.concatenate([support, np.ones(len(new), np.int64)])
        centres = sums / support[:, None]
        member.append(assign)
    return sums / support[:, None], fsum / support, support, member, np.sqrt(vsum) / support


def _connected(links: dict, k: int) -> bool:
    """Whether the links (i, j) join all k captures into one component."""
    seen, todo = {0}, [0]
    while todo:
        cur = todo.pop()
        for a, b in links:
            for u, v in ((a, b), (b, a)):
                if u == cur and v not in seen:
                    seen.add(v)
                    todo.append(v)
    return len(seen) == k


def register(captures: list[SpotSet], params: MatchParams, name: str = ""):
    """Register every capture to one base capture (directly or through a chain of captures).

    Returns (base index, per-capture 3x3 transform into the base frame, residuals, the links'
    observed / expected noise ratios); raises MatchError naming a capture that matches none of the others."""
    k = len(captures)
    links: dict[tuple[int, int], tuple[np.ndarray, float, float | None]] = {}  # (transform, residual, ratio)
    # The code tolerance follows the noise model's prediction; where the captures scatter more than
    # it predicts (a defocus disc, JPEG: what the item's noise scale will measure), their quads may
    # not meet within it. Captures left unlinked are tried again at the widest tolerance (its larger
    # hypothesis count enters the bound, which stays LOG10_FAR_REGISTER).
    for eps in (params.code_eps, max(params.code_eps, REGISTER_EPS_WIDE)):
        reg = dataclasses.replace(params, verify_codes=REGISTER_CODES, code_eps=eps)
        refs = [Reference(c.xy, c.flux, np.ones(len(c), np.int64), c.width, c.height, reg, 1,
                          sigma=c.spot_sigma(params.noise)) for c in captures]
        for i in range(k):
            for j in range(k):
                if i != j and (i, j) not in links and (j, i) not in links:
                    res = verify(refs[i], captures[j])  # maps i -> j
                    if res.transform is not None and res.residual is not None and res.log10_far <= LOG10_FAR_REGISTER:
                        links[(i, j)] = (res.transform, res.residual, res.residual_ratio)
        if _connected(links, k):
            break
    degree = [sum(1 for (a, b) in links if i in (a, b)) for i in range(k)]
    base = max(range(k), key=lambda i: (degree[i], len(captures[i]), -i))
    to_base = {base: np.eye(3)}
    residual = {}
    frontier = [base]
    while frontier:
        cur = frontier.pop()
        for (a, b), (transform, res_px, _) in links.items():
            if b == cur and a not in to_base:    # a -> cur
                to_base[a] = to_base[cur] @ transform
            elif a == cur and b not in to_base:  # cur -> b, so b -> cur is the inverse
                to_base[b] = to_base[cur] @ np.linalg.inv(transform)
            else:
                continue
            other = a if b == cur else b
            residual[other] = round(float(res_px), 4)
            frontier.append(other)
    missing = [i for i in range(k) if i not in to_base]
    if missing:
        raise MatchError(f"{name}capture {missing[0] + 1} matches none of the other captures",
                         hint="all captures must show the same item, well overlapping")
    ratios = [ratio for _, _, ratio in links.values() if ratio is not None]
    return base, to_base, [residual.get(i, 0.0) for i in range(k)], ratios


def _guidance_problem(c: SpotSet) -> str:
    """The detector's own verdict on a capture (descriptor guidance) when it found too few spots to
    be a reference: "no coating", or "too few spots" with fewer than MIN_REF_SPOTS of them
    (darkness, saturation and focus alone do not refuse, nor does the scanner's operator hint of
    30 spots: a capture with 20-29 spots that registers with the others is a usable reference,
    which the registration and the quality gate then decide)."""
    from glintcore.proto import GD_NO_COATING, GD_TOO_FEW_SPOTS, GUIDANCE_TEXT

    g = c.meta.get("guidance")
    if g not in (GD_TOO_FEW_SPOTS, GD_NO_COATING) or (g == GD_TOO_FEW_SPOTS and len(c) >= MIN_REF_SPOTS):
        return ""
    q = c.meta.get("quality") or {}
    found = q.get(0, q.get("0"))
    return GUIDANCE_TEXT.get(g, f"guidance {g}") + (f" ({found} spots found)" if found is not None else "")


def detection_rate(k: int, need: int, seen: float) -> float:
    """The probability q that one capture detects a particle, from the mean fraction ``seen`` of the
    kept clusters (at least ``need`` of ``k`` captures saw each) that a capture saw: with independent
    detections, seen = E[s | s >= need] / k for s ~ Binomial(k, q), increasing in q (solved by bisection)."""
    lo, hi = 1e-6, 1.0 - 1e-9
    s = np.arange(k + 1)
    for _ in range(40):
        q = 0.5 * (lo + hi)
        pmf = np.array([math.comb(k, j) for j in range(k + 1)]) * q**s * (1.0 - q) ** (k - s)
        tail = pmf[need:]
        r = float((s[need:] * tail).sum() / max(tail.sum(), 1e-300)) / k
        lo, hi = (q, hi) if r < seen else (lo, q)
    return 0.5 * (lo + hi)


def held_out(captures: list[SpotSet], points: list[np.ndarray], sigmas: list[np.ndarray], order: list[int],
             members: list[np.ndarray], keep: np.ndarray, need: int, params: MatchParams, noise_scale: float,
             width: int, height: int) -> list[dict]:
    """Each capture verified as a genuine rescan against the enrolled reference with that capture's
    own positions held out (each spot at the mean of the *other* captures' positions of it; a spot
    only the held-out capture and no other placed is dropped): how a later probe of this item will
    fare. The positions, so the residuals and the clone gate, are independent of the capture. Its
    spot set is not: a kept spot is one the held-out capture more likely saw (a fraction ``seen`` of
    the kept spots, where a fresh capture sees each particle with probability q, the captures'
    detection rate from their repeat pattern), so the count of coinciding spots is scaled by q /
    seen before the chance model's tail is taken. Three captures or more."""
    from glint.match.calibrate import log10_binom_sf_many
    from glint.match.verify import calibrated_far, prepare, score_prepared, verify_prepared

    k = len(captures)
    if k < 3 or not np.any(keep):
        return []
    kept = np.flatnonzero(keep)
    seen = np.array([float(np.isin(kept, m).mean()) for m in members])  # per capture (in ``order``)
    q = detection_rate(k, need, float(seen.mean()))
    out = []
    for pos, i in enumerate(order):
        sums, cnt, var = np.zeros((len(keep), 2)), np.zeros(len(keep)), np.zeros(len(keep))
        for pos_j, j in enumerate(order):
            if j == i:
                continue
            a = members[pos_j]
            np.add.at(sums, a, points[j])
            np.add.at(cnt, a, 1.0)
            np.add.at(var, a, sigmas[pos_j] ** 2)
        use = keep & (cnt > 0)
        if use.sum() < HELD_OUT_MIN_SPOTS:
            out.append({"capture": i + 1, "match": False, "log10_far": 0.0, "reason": "too few spots repeat"})
            continue
        c = cnt[use]
        ref = Reference(sums[use] / c[:, None], np.ones(int(use.sum())), c.astype(np.int64), width, height, params,
                        k - 1, {}, sigma=np.sqrt(var[use]) / c, noise_scale=noise_scale)
        probe = prepare(captures[i], params)
        sc = score_prepared(ref, probe)
        r = verify_prepared(ref, probe, sc)
        far = 0.0
        fresh = min(1.0, q / max(seen[pos], 1e-9))
        if sc.hypotheses:
            k_fresh = np.array([int(sc.k * fresh)])
            tail = float(log10_binom_sf_many(k_fresh, np.array([sc.n]),
                                             np.array([min(1.0, params.far_chance_scale * sc.p)]), mid=True)[0])
            far = calibrated_far(sc.lam, tail, params)
        match = bool(r.match and far <= params.log10_far_max)
        out.append({"capture": i + 1, "match": match, "log10_far": round(float(far), 2),
                    "pairs": int(r.matched * fresh),
                    "reason": "match" if match else (r.reason if not r.match else "not beyond chance")})
    return sorted(out, key=lambda h: h["capture"])


def held_out_problem(ho: list[dict], params: MatchParams) -> str:
    """Why the held-out verifications predict that a genuine rescan will not reach the operating
    point (empty when they predict it will): all but one of the captures must match the others'
    reference at log10 FAR <= the operating point less HELD_OUT_MARGIN."""
    bound = params.log10_far_max - HELD_OUT_MARGIN
    good = [h for h in ho if h["match"] and h["log10_far"] <= bound]
    if len(good) < len(ho) - 1:
        bad = max((h for h in ho if h not in good), key=lambda h: h["log10_far"] if h["match"] else 1.0)
        why = bad["reason"].split(" (")[0] if not bad["match"] else f"log10 FAR {bad['log10_far']:.1f}"
        fars = ", ".join(f"{h['log10_far']:.1f}" for h in ho)
        return (f"a genuine rescan would not reliably reach log10 FAR {params.log10_far_max:g}: each capture "
                f"verified against the reference of the others gives log10 FAR {fars} (need {len(ho) - 1} of "
                f"{len(ho)} at {bound:g} or below; capture {bad['capture']}: {why})")
    # The clone gate must be able to tell a replica at CLONE_RATIO x the genuine noise from the item.
    need = clone_power_pairs(params.noise_margin, params.residual_alpha, CLONE_RATIO)
    enough = [h for h in good if h.get("pairs", need) >= need]
    if len(enough) < len(ho) - 1:
        pairs = ", ".join(str(h.get("pairs", 0)) for h in ho)
        return (f"a genuine rescan would match too few spots for the clone gate: each capture verified "
                f"against the reference of the others matches {pairs} (need {len(ho) - 1} of {len(ho)} with "
                f"{need} or more, to refuse a replica at {CLONE_RATIO:g} x the noise)")
    return ""


def quality_problems(ref: Reference) -> list[str]:
    """Reasons this reference would verify poorly (empty when it is good)."""
    problems = []
    n = len(ref.xy)
    if n < MIN_REF_SPOTS:
        problems.append(f"only {n} spots{' repeat across the captures' if ref.captures > 1 else ''} "
                        f"(need {MIN_REF_SPOTS})")
        return problems
    hull = cv2.convexHull(ref.xy.astype(np.float32))
    coverage = cv2.contourArea(hull) / float(ref.width * ref.height)
    if coverage < MIN_COVERAGE:
        problems.append(f"spots cover only {coverage:.0%} of the frame (need {MIN_COVERAGE:.0%}); "
                        "is the coating in view and in focus?")
    nq = len(ref.index_quads())
    if nq < MIN_INDEX_QUADS:
        problems.append(f"only {nq} spot quads for the index (need {MIN_INDEX_QUADS}); spots too sparse or clustered")
    return problems


def enroll(captures: list[SpotSet], params: MatchParams | None = None, item: str = "",
           calibration: dict | None = None) -> Reference:
    """Fuse captures of one item into a Reference; raises MatchError (with the reason) when the
    captures disagree or the result would be a poor reference. ``calibration``: a scanner's
    constants (glint.match.scanner) for parameters made here (``params`` None)."""
    if not captures:
        raise MatchError("enroll needs at least one capture")
    if len(captures) > MAX_CAPTURES:
        raise MatchError(f"{len(captures)} captures is too many (at most {MAX_CAPTURES})")
    sizes = {(c.width, c.height) for c in captures}
    if len(sizes) != 1:
        raise MatchError(f"captures have different frame sizes {sorted(sizes)}")
    width, height = sizes.pop()
    own_params = params is None
    first_pair = 0.0
    if params is None:
        first = max(captures, key=len)
        # The quad band from the spots' spacing; the code tolerance widened where the captures are
        # noisy (a pair of captures: sqrt(2) x one capture's median sigma).
        params = MatchParams.for_spots(first.xy, width, height)
        if calibration:
            params = dataclasses.replace(params, **{k: v for k, v in calibration.items() if k in CALIBRATED})
        sig = first.spot_sigma(params.noise)
        if len(sig):
            first_pair = math.sqrt(2.0) * float(np.median(sig))
            params = params.with_noise(first_pair)
    name = f"item {item}: " if item else ""
    for k, c in enumerate(captures):
        poor = _guidance_problem(c)
        if poor:
            raise MatchError(f"{name}poor capture {k + 1}: {poor}", hint="re-capture it; the scanner's guidance says why")
    best = max(len(c) for c in captures)
    if best < MIN_REF_SPOTS:
        raise MatchError(f"{name}poor reference: only {best} spots in the best capture (need {MIN_REF_SPOTS})",
                         hint="check focus, exposure and that the coating is in view")
    info: dict[str, Any] = {"captures": len(captures)}
    held = None
    if len(captures) == 1:
        c = captures[0]
        ref = Reference(c.xy.copy(), c.flux.copy(), np.ones(len(c), np.int64), width, height, params, 1, info,
                        sigma=c.spot_sigma(params.noise))
    else:
        base, to_base, residuals, ratios = register(captures, params, name)
        points = [cv2.perspectiveTransform(captures[i].xy[None].astype(np.float64), to_base[i])[0]
                  for i in range(len(captures))]
        order = [base] + [i for i in range(len(captures)) if i != base]
        sigmas = [captures[i].spot_sigma(params.noise) for i in order]
        # Positions of one particle in two registered captures differ by about sqrt(2) sigma per axis.
        pair = math.sqrt(2.0) * float(np.median(np.concatenate(sigmas))) if sum(map(len, sigmas)) else 0.0
        xy, fl, support, members, sig = _cluster([points[i] for i in order], [captures[i].flux for i in order],
                                                 max(FUSE_RADIUS, FUSE_NOISE_K * pair), sigmas)
        # The item's repeatability: how far apart its captures' spots really are, over what the
        # noise model expects of them (a disc defocus, JPEG or blends the quality map cannot tell).
        noise_scale = float(np.clip(np.median(ratios), NOISE_SCALE_RANGE[0], NOISE_SCALE_RANGE[1])) if ratios else 1.0
        if own_params and noise_scale > 1.0:
            # A new database's code tolerance follows the noise the captures show, where it exceeds the
            # model's prediction.
            params = params.with_noise(noise_scale * first_pair)
        need = len(captures) if len(captures) == 2 else max(2, math.ceil(len(captures) / 2))
        keep = support >= need
        repeat = {order[k]: float(np.mean(keep[m])) if len(m) else 0.0 for k, m in enumerate(members)}
        info.update({"base_capture": base + 1, "registration_residual_px": residuals,
                     "repeat_rate": [round(repeat[i], 3) for i in range(len(captures))],
                     "noise_ratio": [round(float(r), 3) for r in ratios], "noise_scale": round(noise_scale, 3)})
        worst = min(repeat, key=lambda i: repeat[i])
        if repeat[worst] < MIN_REPEAT:
            raise MatchError(f"{name}poor reference: only {repeat[worst]:.0%} of the spots of capture "
                             f"{worst + 1} repeat in the others (need {MIN_REPEAT:.0%})",
                             hint="hold the item still and keep the light constant between captures")
        ref = Reference(xy[keep], fl[keep], support[keep], width, height, params, len(captures), info,
                        sigma=sig[keep], noise_scale=noise_scale)
        held = (captures, points, sigmas, order, members, keep, need, noise_scale)
    problems = quality_problems(ref)
    if problems:
        raise MatchError(f"{name}poor reference: " + "; ".join(problems),
                         hint="re-capture the item (focus, exposure, framing)")
    if held is not None:
        ho = held_out(*held[:7], params, held[7], width, height)
        if ho:
            info["held_out_log10_far"] = [h["log10_far"] if h["match"] else 0.0 for h in ho]
            problem = held_out_problem(ho, params)
            if problem:
                raise MatchError(f"{name}poor reference: {problem}",
                                 hint="re-capture the item sharper and brighter (focus, exposure, gain), "
                                      "or enroll it with a better scanner setting")
    info["spots"] = len(ref.xy)
    info["index_quads"] = len(ref.index_quads())
    log.info("enrolled %s: %d spots from %d captures", item or "item", len(ref.xy), len(captures))
    return ref
