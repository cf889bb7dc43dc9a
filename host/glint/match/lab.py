"""Evaluation lab: FRR, empirical vs analytic FAR, DET curve, rank-1 rate, clone resistance.

Items are simulated coatings (glint.sim) photographed and run through the host detector,
exactly as a scanner would. An impostor *trial* is one full 1:1 verify of one item's probe
against another item's reference. ``impostor_trials`` computes every such pair's outcome
exactly but cheaply: a pair whose quad codes share nothing cannot produce a hypothesis, so
verify returns log10_far = 0 for it; the code matches of all pairs are found at once with
one sorted table of every reference's code boxes, and verify runs only for pairs with at
least one code in common.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glint.errors import MatchError
from glint.match import calibrate
from glint.match.codes import box_keys, cell_keys, codes_agree, gather_ranges
from glint.match.database import Database
from glint.match.enroll import enroll
from glint.match.identify import identify
from glint.match.noise import chi2_pvalue
from glint.match.params import MatchParams
from glint.match.plots import line_plot
from glint.match.reference import Reference
from glint.match.spots import SpotSet, spots_from_image
from glint.match.verify import Probe, prepare, score_prepared, verify_prepared

if TYPE_CHECKING:  # the simulator is imported where it is used (the matcher does not need it)
    from glint.sim.coating import Coating

log = logging.getLogger(__name__)

ENROLL_CAPTURES = 3
THRESHOLDS = tuple(range(0, -13, -1))


@dataclass
class LabConfig:
    profile: str = "field"
    items: int = 100
    probes: int = 3
    clone_items: int = 40
    seed: int = 0
    identify: bool = True
    jobs: int = 1


def refit_passes(matched: np.ndarray, residual_p: np.ndarray, params: MatchParams) -> np.ndarray:
    """verify's gates after the refit (enough matched spots, residuals consistent with the expected
    noise: the clone gate's p-value at least residual_alpha), per trial; ``residual_p`` is NaN where
    the refit failed. With log10_far <= the operating point: a match."""
    return (np.asarray(matched) >= params.min_matched) & (np.nan_to_num(residual_p, nan=-1.0) >= params.residual_alpha)


def _item_images(cfg: LabConfig, i: int):
    """Item ``i``'s coating (drawn from the seed) and the images of its enrollment captures and probes."""
    from glint import sim
    from glint.sim.render import Pose

    c = sim.make_coating(cfg.seed * 1_000_003 + i, cfg.profile)
    caps = [sim.capture(c, cfg.profile, seed=(i * 97 + k) * 2 + 1, pose=Pose()).image for k in range(ENROLL_CAPTURES)]
    probes = [sim.capture(c, cfg.profile, seed=(i * 97 + k) * 2 + 100_001).image for k in range(cfg.probes)]
    return c, caps, probes


def _item_captures(cfg: LabConfig, i: int):
    """Enrollment captures and probe spot sets of item ``i`` (its coating is drawn from the seed)."""
    c, caps, probes = _item_images(cfg, i)
    return c, [spots_from_image(im) for im in caps], [spots_from_image(im) for im in probes]


EPS_GRID = (0.009, 0.012, 0.016, 0.022, 0.03)  # code tolerances of the randomized family's parameter groups


def item_params(caps, noise_scale: float = 1.0) -> MatchParams:
    """An item's own parameters (randomized profiles: every item has its own scanner), on a coarse
    grid so that items of similar optics share them: the quad band from the spot spacing in steps
    of 2^(1/4), the code tolerance from the captures' noise (the model's, times the item's measured
    ``noise_scale`` once enrolled) rounded up to EPS_GRID."""
    import dataclasses

    first = max(caps, key=len)
    p = MatchParams.for_spots(first.xy, first.width, first.height)
    q = 2.0 ** (round(4 * math.log2(p.band_lo / 1.5)) / 4)
    p = dataclasses.replace(p, band_lo=round(1.5 * q, 2), band_hi=round(2.5 * q, 2))
    sig = first.spot_sigma(p.noise)
    wide = p.with_noise(math.sqrt(2.0) * noise_scale * float(np.median(sig))) if len(sig) else p
    eps = next((e for e in EPS_GRID if e >= wide.code_eps - 1e-9), EPS_GRID[-1])
    return dataclasses.replace(p, code_eps=eps, index_eps=round(eps * p.index_eps / p.code_eps, 5))


def _enroll_item(cfg: LabConfig, params: MatchParams | None, i: int, captured: tuple | None = None):
    """(coating, reference or None, probes, refusal) of item ``i``; ``captured``: its
    (coating, captures, probes) already rendered (glint.match.labscale caches them)."""
    c, caps, probes = _item_captures(cfg, i) if captured is None else captured
    try:
        if params is None and _randomized(cfg):
            # As enroll does for a new database's first item: the code tolerance from the noise the
            # captures show (the model's prediction is the start; their registration measures it).
            params = item_params(caps)
            ref = enroll(caps, params, item=f"coat-{i}")
            measured = item_params(caps, ref.noise_scale)
            if measured != params:
                ref = enroll(caps, measured, item=f"coat-{i}")
            return c, ref, probes, None
        return c, enroll(caps, params, item=f"coat-{i}"), probes, None
    except MatchError as e:  # failure to enroll: reported, the item takes no further part
        return c, None, probes, e.msg


_WORK: dict = {}  # what forked workers read (set before the pool starts; never pickled)


def _pool_map(fn, args: list, jobs: int) -> list:
    """``[fn(a) for a in args]`` over ``jobs`` forked processes (in order); in this process for jobs <= 1."""
    if jobs <= 1 or len(args) < 2:
        return [fn(a) for a in args]
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    chunk = max(1, len(args) // (jobs * 8))
    with ctx.Pool(jobs) as pool:
        return pool.map(fn, args, chunksize=chunk)


def _enroll_worker(i: int):
    return _enroll_item(_WORK["cfg"], _WORK["params"], i)


def _randomized(cfg: LabConfig) -> bool:
    from glint import sim

    return sim.get_profile(cfg.profile).randomized


def _captures(cfg: LabConfig):
    from glint import sim

    prof = sim.get_profile(cfg.profile)
    params, first, start = None, [], 0
    if not prof.randomized:
        # The first item that enrolls fixes the parameters (quad band from its spot spacing) for all.
        while params is None and start < cfg.items:
            r = _enroll_item(cfg, None, start)
            first.append(r)
            start += 1
            params = None if r[1] is None else r[1].params
    _WORK.update(cfg=cfg, params=params)
    rest = _pool_map(_enroll_worker, list(range(start, cfg.items)), cfg.jobs)
    refs: list[Reference] = []
    probes: list[SpotSet] = []
    owner: list[int] = []
    kept: list[Coating] = []
    refused: list[tuple[Coating, str]] = []
    for c, ref, item_probes, why in first + rest:
        if ref is None:
            log.warning("%s", why)
            refused.append((c, why))
            continue
        n = len(refs)
        refs.append(ref)
        kept.append(c)
        probes.extend(item_probes)
        owner.extend([n] * len(item_probes))
    return prof, kept, refs, probes, np.array(owner, np.int64), refused


class CodeSieve:
    """Every reference's verify codes in one sorted table: for a probe, the references with at least
    one code within ``code_eps`` (and scale tolerance) of one of the probe's, exactly as
    :func:`glint.match.codes.match_codes` finds them, at one lookup for all references."""

    def __init__(self, refs: list[Reference], params: MatchParams):
        key_parts, quad_parts = [], []
        base = 0
        codes, lengths, ref_of = [], [], []
        for r, ref in enumerate(refs):
            q = ref.quads
            key_parts.append(box_keys(q.code, params).ravel())
            quad_parts.append(np.repeat(np.arange(base, base + len(q)), 16))
            codes.append(q.code)
            lengths.append(q.length)
            ref_of.append(np.full(len(q), r, np.int64))
            base += len(q)
        keys, quad = np.concatenate(key_parts), np.concatenate(quad_parts)
        order = np.argsort(keys, kind="stable")
        self.keys, self.quad = keys[order], quad[order]
        self.code, self.length, self.ref_of = np.concatenate(codes), np.concatenate(lengths), np.concatenate(ref_of)
        self.params = params

    def refs_for(self, probe: Probe) -> np.ndarray:
        """Sorted indices of the references sharing a code with ``probe``."""
        p = self.params
        pq = probe.quads
        if probe.params_key == p:  # the probe's table: every quad's cell key (sorted) and the quad
            pk, at = probe.table.keys, probe.table.order
        else:
            pk = cell_keys(pq.code, p)
            at = np.arange(len(pk))
        pos, j = gather_ranges(np.searchsorted(self.keys, pk, "left"), np.searchsorted(self.keys, pk, "right"))
        j = at[j]
        g = self.quad[pos]
        ok = codes_agree(self.code[g], self.length[g], pq.code[j], pq.length[j], p)
        return np.unique(self.ref_of[g[ok]])


def _impostor_worker(j: int):
    refs, probes, owner, groups = _WORK["refs"], _WORK["probes"], _WORK["owner"], _WORK["groups"]
    op = refs[0].params.log10_far_max
    rows, accepted = [], 0
    for gparams, members, sieve in groups:
        pr = probes[j]
        if pr.params_key != gparams:  # the probe coded with this group's parameters
            pr = prepare(pr.spots, gparams)
        for local in sieve.refs_for(pr):
            rr = int(members[local])
            if rr == owner[j]:
                continue
            sc = score_prepared(refs[rr], pr)
            if sc.hypotheses:
                rows.append((rr, sc.hypotheses, sc.log10_tail, sc.k, sc.n, sc.p, sc.log10_far, sc.lam, sc.log_u))
                # Only a pair beyond chance can be accepted: the refit and residual gate decide it.
                if sc.log10_far <= op and verify_prepared(refs[rr], pr, sc).match:
                    accepted += 1
    return np.array(rows, np.float64).reshape(-1, 9), accepted


def param_groups(refs: list[Reference]) -> list[tuple[MatchParams, np.ndarray]]:
    """References grouped by their parameters (one group unless every item has its own scanner)."""
    groups: dict = {}
    for r, ref in enumerate(refs):
        groups.setdefault(ref.params, []).append(r)
    return [(p, np.array(ix, np.int64)) for p, ix in groups.items()]


def impostor_trials(refs: list[Reference], probes: list[Probe], owner: np.ndarray, params: MatchParams,
                    jobs: int = 1) -> dict:
    """Every (reference r, probe p) with owner[p] != r, exactly as verify sees it.

    A pair whose quad codes share nothing has no hypothesis and verify returns log10_far = 0 for
    it; :class:`CodeSieve` finds, for each probe, the references it shares a code with, and only
    those pairs are scored (the chance model's half of verify; the refit runs only for the pairs
    beyond chance, which it accepts or not).

    Returns a dict: per trial with a hypothesis ``far`` (log10_far under ``params``), ``hyp``, ``lam``
    (expected chance code matches),
    ``tail`` (best binomial tail), ``k``/``n``/``p`` (its matched spots, spots inside, chance
    probability), ``owner`` (the probe's item) and ``ref``; ``trials`` (all trials), ``verified``
    (how many were scored) and ``accepted`` (full verify decisions that matched: false accepts)."""
    groups = [(gp, ix, CodeSieve([refs[i] for i in ix], gp)) for gp, ix in param_groups(refs)]
    _WORK.update(refs=refs, probes=probes, owner=owner, groups=groups)
    try:
        out = _pool_map(_impostor_worker, list(range(len(probes))), jobs)
    finally:
        _WORK.clear()
    arr = np.concatenate([np.column_stack([np.full(len(rs), j), rs]) for j, (rs, _) in enumerate(out) if len(rs)]
                         or [np.zeros((0, 10))])
    return {"far": arr[:, 7], "hyp": arr[:, 2].astype(np.int64), "tail": arr[:, 3], "k": arr[:, 4].astype(np.int64),
            "n": arr[:, 5].astype(np.int64),
            "p": arr[:, 6], "lam": arr[:, 8], "log_u": arr[:, 9], "probe": arr[:, 0].astype(np.int64),
            "owner": owner[arr[:, 0].astype(np.int64)],
            "ref": arr[:, 1].astype(np.int64),
            "trials": len(probes) * len(refs) - len(probes), "verified": len(arr),
            "accepted": int(sum(a for _, a in out))}


def chance_codes_check(imp: dict, n_trials: int) -> dict:
    """The model's chance code matches beside those seen: hypotheses (sum of lambda against sum of
    H) and pairs with a hypothesis (sum of 1 - exp(-lambda) against their count) over the trials
    with one; the trials without (lambda not recorded) add to the predicted count as much as
    the mean lambda of the pairs seen, a lower bound of what they add, so the ratio is an
    upper bound."""
    lam, hyp = np.asarray(imp.get("lam", np.zeros(0)), np.float64), np.asarray(imp["hyp"])
    return {"trials": int(n_trials), "with_hypotheses": int(len(hyp)), "hypotheses": int(hyp.sum()),
            "lambda_sum_over_those": round(float(lam.sum()), 1),
            "hypotheses_per_lambda": round(float(hyp.sum() / lam.sum()), 3) if lam.sum() > 0 else None}


def calibration_report(imp: dict, owner: np.ndarray, n_refs: int, params: MatchParams) -> dict:
    """The chance model against the impostor trials.

    ``in_use``: the parameters the matcher runs with (fitted on another run) against every trial
    here; ``refit``: the two constants fitted again on the trials of even items' probes
    (1e-1..1e-4) and tested on the odd items' trials at every depth; ``bonferroni``: log10 H + log10
    P(K >= k), the bound the model replaced, for comparison; ``chance_codes``: the hypotheses the
    model predicts (sum of lambda, P(H > 0)) beside those seen; ``identify``: the 1:N penalty (log10 of the
    references searched) against each probe's best impostor over all references."""
    thr = calibrate.THRESHOLDS
    n_trials = imp["trials"]
    even = imp["owner"] % 2 == 0
    n_even = int(np.sum(owner % 2 == 0)) * (n_refs - 1)
    n_odd = int(np.sum(owner % 2 == 1)) * (n_refs - 1)
    lu = imp.get("log_u")
    f = calibrate.fit(imp["lam"][even], imp["k"][even], imp["n"][even], imp["p"][even], n_even,
                      log_u=None if lu is None else lu[even])
    odd_far = calibrate.predicted(imp["lam"][~even], imp["k"][~even], imp["n"][~even], imp["p"][~even],
                                  f["offset"], f["chance_scale"], log_u=None if lu is None else lu[~even])
    # Bonferroni over the H hypotheses with P(K >= k): the bound the first-principles model replaced
    bonf = np.minimum(0.0, np.log10(np.maximum(imp["hyp"], 1)) + calibrate.log10_binom_sf_many(imp["k"], imp["n"], imp["p"]))
    lo, hi = np.minimum(imp["owner"], imp["ref"]), np.maximum(imp["owner"], imp["ref"])
    in_use = calibrate.table(imp["far"], n_trials, thr, pairs=lo * (n_refs + 1) + hi)
    val = calibrate.table(odd_far, n_odd, thr)
    # 1:N: a probe of an item not enrolled, searched among N - 1 others, is identified falsely
    # when its best impostor's log10_far + log10(N - 1) reaches the threshold.
    n_probes = len(owner)
    best = np.zeros(n_probes)
    if len(imp["far"]):
        np.minimum.at(best, imp["probe"], imp["far"])
    ident = calibrate.table(np.minimum(0.0, best + math.log10(max(1, n_refs - 1))), n_probes, thr)
    return {"model": {"offset": params.far_offset, "chance_scale": params.far_chance_scale},
            "chance_codes": chance_codes_check(imp, n_trials),
            "in_use": {"trials": n_trials, "with_hypotheses": len(imp["far"]), "table": in_use,
                       "agrees_down_to": calibrate.agreement_depth(in_use)},
            "refit": {"fit_on": {"trials": n_even, "with_hypotheses": int(even.sum())}, "fit": f,
                      "validation": {"trials": n_odd, "table": val, "agrees_down_to": calibrate.agreement_depth(val)}},
            "bonferroni": {"trials": n_trials, "table": calibrate.table(bonf, n_trials, thr)},
            "identify": {"probes": n_probes, "searched": n_refs - 1, "table": ident,
                         "agrees_down_to": calibrate.agreement_depth(ident)}}


CLONE_RATIOS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def localisation_noise(spots, cap) -> float | None:
    """The genuine localisation noise of one capture (px per axis): detections against the truth,
    over isolated particles (robust: median distance / 1.1774, the Rayleigh median)."""
    from glint.sim.evaluate import match

    t = cap.truth_xy
    if len(t) < 2 or len(spots) < 5:
        return None
    d = np.hypot(t[:, None, 0] - t[None, :, 0], t[:, None, 1] - t[None, :, 1])
    np.fill_diagonal(d, np.inf)
    iso = d.min(1) > 4 * cap.psf_sigma + 2
    err = [dist for _, ti, dist in match(spots.xy, t, 1.5) if iso[ti]]
    return float(np.median(err)) / 1.1774 if len(err) >= 5 else None


def clone_curve(coats, refs, cfg: LabConfig, prof) -> tuple[list[dict], list[dict]]:
    """Pass rate of replicas whose particles are displaced by ratio x the genuine localisation noise
    of that very capture, per ratio; and the per-item outcomes (for the region table).

    The genuine noise is measured on the same capture (the same capture seed photographing the
    original): the robust residual sigma of that genuine capture against the reference, which is
    what a clone's displacement must stand out from (items whose genuine capture does not match
    take no part). ``truth_ratio`` beside it: the same displacement over the capture's noise
    against the simulator's truth (isolated particles), a stricter yardstick."""
    from glint import sim

    n = min(cfg.clone_items, len(refs))
    items: list[dict[str, Any]] = []
    for i in range(n):
        seed = (i * 97) * 2 + 200_001
        cap = sim.capture(coats[i], cfg.profile, seed=seed)
        spots = spots_from_image(cap.image)
        g = verify_prepared(refs[i], prepare(spots, refs[i].params))
        if not g.match or g.residual is None:
            continue
        noise = float(g.residual)
        truth = localisation_noise(spots, cap)
        # The optics this capture was taken with (a randomized profile draws them per item).
        ppm = (cap.profile or sim.get_profile(cfg.profile, item_seed=coats[i].seed)).px_per_mm
        passed: dict[float, bool] = {}
        for ratio in CLONE_RATIOS:
            clone = sim.clone_coating(coats[i], ratio * noise, seed=7919 * i + 1, profile=cfg.profile)
            img = sim.capture(clone, cfg.profile, seed=seed).image
            passed[ratio] = bool(verify_prepared(refs[i], prepare(spots_from_image(img), refs[i].params)).match)
        items.append({"item": i, "noise_px": noise, "truth_noise_px": truth, "um_per_px": 1000.0 / ppm,
                      "passed": passed})
    curve = []
    for ratio in CLONE_RATIOS:
        if not items:
            break
        px = [ratio * it["noise_px"] for it in items]
        um = [ratio * it["noise_px"] * it["um_per_px"] for it in items]
        tr = [ratio * it["noise_px"] / it["truth_noise_px"] for it in items if it["truth_noise_px"]]
        curve.append({"ratio": ratio, "truth_ratio": round(float(np.median(tr)), 3) if tr else None,
                      "sigma_px": round(float(np.median(px)), 4), "sigma_um": round(float(np.median(um)), 3),
                      "pass_rate": float(np.mean([it["passed"][ratio] for it in items])), "trials": len(items)})
    return curve, items


def half_pass(curve: list[dict], key: str) -> float | None:
    """Where the pass rate crosses one half (linear between the curve's points), in ``key`` units."""
    for a, b in zip(curve, curve[1:]):
        if a["pass_rate"] >= 0.5 > b["pass_rate"]:
            t = (a["pass_rate"] - 0.5) / max(a["pass_rate"] - b["pass_rate"], 1e-9)
            return round(a[key] + t * (b[key] - a[key]), 4)
    return None


# Regions of the randomized family: PSF width x signal-to-noise x particles in view (item draws).
REGION_AXES = (("psf", "psf_sigma_px", (0.6, 1.2, 2.0, 3.0)),
               ("snr", "snr", (0.0, 5.0, 15.0, math.inf)),
               ("particles", "particles_in_view", (30.0, 80.0, 160.0, 300.0)))
REGION_THRESHOLDS = (-1.0, -2.0, -3.0, -4.0, -5.0)


def item_region(profile: str, seed: int) -> tuple[str, ...]:
    """The region labels of one item of a randomized profile, e.g. ('psf 0.6-1.2', 'snr 5-15', ...)."""
    from glint import sim
    from glint.sim.wild import snr_estimate

    p = sim.get_profile(profile, item_seed=seed)
    d = dict(p.extras["draw"], snr=snr_estimate(p))
    out = []
    for name, key, edges in REGION_AXES:
        v = d[key]
        k = max(0, min(len(edges) - 2, int(np.searchsorted(edges, v, "right")) - 1))
        hi = "" if math.isinf(edges[k + 1]) else f"{edges[k + 1]:g}"
        out.append(f"{name} {edges[k]:g}-{hi}" if hi else f"{name} >={edges[k]:g}")
    return tuple(out)


def region_table(cfg: LabConfig, coats, refused, owner: np.ndarray, genuine, g_accept: np.ndarray, imp: dict,
                 hits, clones, n_refs: int) -> dict:
    """FRR, refusals at enrollment, impostor tail (empirical beside 10^t), false accepts, rank-1 and
    clone pass rate per region (PSF width x SNR x particles), and per axis alone."""
    reg = [item_region(cfg.profile, c.seed) for c in coats]
    reg_refused = [item_region(cfg.profile, c.seed) for c, _ in refused]
    probe_reg = [reg[o] for o in owner]
    trial_reg = [reg[o] for o in imp["owner"]]
    clone_reg = {it["item"]: it["passed"].get(2.0) for it in (clones or [])}

    def summarise(select) -> dict:
        items = [i for i, r in enumerate(reg) if select(r)]
        if not items and not any(select(r) for r in reg_refused):
            return {}
        pj = np.array([select(r) for r in probe_reg], bool)
        tj = np.array([select(r) for r in trial_reg], bool) if len(trial_reg) else np.zeros(0, bool)
        n_trials = int(pj.sum()) * (n_refs - 1)
        far = imp["far"][tj] if len(tj) else np.zeros(0)
        n_refused = sum(map(select, reg_refused))
        row = {"items": len(items), "refused_at_enrollment": n_refused,
               "fte": n_refused / max(1, len(items) + n_refused),
               "genuine_trials": int(pj.sum()), "frr": float(np.mean(~g_accept[pj])) if pj.any() else None,
               "impostor_trials": n_trials, "false_accepts": int(np.sum(far <= -9.0))}
        if n_trials:
            tab = calibrate.table(far, n_trials, REGION_THRESHOLDS)
            row["tail"] = [(d["log10_threshold"], d["count"], d["deviation_decades"], d["agrees"], d["resolved"])
                           for d in tab]
            row["tail_agrees_down_to"] = calibrate.agreement_depth(tab)
        if hits is not None and pj.any():
            row["rank1"] = float(np.mean(np.asarray(hits)[pj]))
        cl = [v for i, v in clone_reg.items() if select(reg[i]) and v is not None]
        if cl:
            row["clone_pass_at_2x"] = float(np.mean(cl))
            row["clone_trials"] = len(cl)
        return row

    cells = {}
    for key in sorted(set(reg) | set(reg_refused)):
        cells[" / ".join(key)] = summarise(lambda r, key=key: r == key)
    axes = {}
    for a in range(len(REGION_AXES)):
        for lab in sorted({r[a] for r in reg + reg_refused}):
            axes[lab] = summarise(lambda r, a=a, lab=lab: r[a] == lab)
    return {"axes": [name for name, _, _ in REGION_AXES], "cells": cells, "by_axis": axes}


def rank1_hits(refs: list[Reference], probe_spots: list, owner: np.ndarray) -> np.ndarray:
    """Whether identify names each probe's own item among all references. References of different
    parameters or frame sizes (every item its own scanner) live in one database per group; a probe
    searches them all, each with the penalty of all the references (log10 N of the whole family)."""
    import tempfile

    groups: dict = {}
    for r, ref in enumerate(refs):
        groups.setdefault((ref.params, ref.width, ref.height), []).append(r)
    hits = np.zeros(len(probe_spots), bool)
    with tempfile.TemporaryDirectory() as d:
        dbs = []
        for g, ix in enumerate(groups.values()):
            db = Database(Path(d) / str(g))
            db.add_many([f"coat-{i}" for i in ix], [refs[i] for i in ix])
            dbs.append(db)
        for j, sp in enumerate(probe_spots):
            best = None
            for db in dbs:
                res = identify(db, sp, searched=len(refs))
                if res.item is not None and (best is None or res.log10_far < best.log10_far):
                    best = res
            hits[j] = best is not None and best.item == f"coat-{owner[j]}"
    return hits


def evaluate(cfg: LabConfig, out_dir: str | Path | None = None) -> dict:
    """Run the lab; returns the report dict (also written as out_dir/report.json with plots)."""
    t0 = time.perf_counter()
    prof, coats, refs, probe_spots, owner, refused = _captures(cfg)
    if not refs:
        raise MatchError(f"no item of {cfg.items} enrolled", hint="; ".join(sorted({w for _, w in refused}))[:300])
    params = refs[0].params
    if not prof.randomized:
        refs = [Reference(r.xy, r.flux, r.support, r.width, r.height, params, r.captures, r.info, r.sigma,
                          r.noise_scale) for r in refs]
    probes = [prepare(p, refs[owner[j]].params) for j, p in enumerate(probe_spots)]
    t_cap = time.perf_counter() - t0
    genuine, scores = [], []
    lat = []
    for j, pr in enumerate(probes):
        t = time.perf_counter()
        sc = score_prepared(refs[owner[j]], pr)
        genuine.append(verify_prepared(refs[owner[j]], pr, sc))
        lat.append(time.perf_counter() - t)
        scores.append(sc)
    g_far = np.array([r.log10_far for r in genuine])
    g_matched = np.array([r.matched for r in genuine], np.int64)
    g_residual = np.array([np.nan if r.residual is None else r.residual for r in genuine])
    g_ratio = np.array([np.nan if r.residual_ratio is None else r.residual_ratio for r in genuine])
    g_z2 = np.array([np.nan if r.residual_z2 is None else r.residual_z2 for r in genuine])
    g_p = np.array([np.nan if r.residual_p is None else r.residual_p for r in genuine])
    g_ok = refit_passes(g_matched, g_p, params)
    t1 = time.perf_counter()
    imp = impostor_trials(refs, probes, owner, params, cfg.jobs)
    n_trials, n_verified = imp["trials"], imp["verified"]
    i_far = np.zeros(n_trials)
    i_far[: len(imp["far"])] = imp["far"]
    t_imp = time.perf_counter() - t1
    det = []
    for t in THRESHOLDS:
        det.append({"log10_threshold": t, "frr": float(np.mean(~(g_ok & (g_far <= t)))),
                    "far_empirical": float(np.mean(i_far <= t)) if t < 0 else 1.0,
                    "far_analytic": 10.0 ** t})
    op = params.log10_far_max
    frr = float(np.mean(~(g_ok & (g_far <= op))))
    false_accepts = int(np.sum(i_far <= op))
    report = {
        "profile": cfg.profile, "items": cfg.items, "probes_per_item": cfg.probes,
        "enroll_refused": len(refused), "fte": len(refused) / max(1, cfg.items),
        "enroll_refused_reasons": sorted({w for _, w in refused}),
        "operating_log10_far": op, "residual_alpha": params.residual_alpha,
        "noise_model": {"c": params.noise_c, "floor_px": params.noise_floor, "margin": params.noise_margin},
        "genuine_noise_ratio_median": float(np.nanmedian(g_ratio)) if np.isfinite(g_ratio).any() else None,
        "frr": frr, "genuine_trials": len(genuine),
        "frr_reasons": sorted({r.reason for r in genuine if not r.match}),
        "impostor_trials": n_trials, "impostor_trials_scored": n_verified,
        "impostor_accepted_by_verify": imp["accepted"],
        "false_accepts": false_accepts, "impostor_min_log10_far": float(i_far.min()) if len(i_far) else 0.0,
        "det": det,
        "far_calibration": calibration_report(imp, owner, len(refs), params),
        "verify_latency_ms_median": round(float(np.median(lat)) * 1e3, 3),
        "seconds": {"capture_and_enroll": round(t_cap, 1), "impostors": round(t_imp, 1)},
        "params": params.to_dict(),
    }
    hits = None
    if cfg.identify:
        hits = rank1_hits(refs, probe_spots, owner)
        report["rank1"] = float(np.mean(hits))
    clones = None
    if cfg.clone_items:
        curve, clones = clone_curve(coats, refs, cfg, prof)
        report["clone_curve"] = curve
        report["clone_half_pass_ratio"] = half_pass(curve, "ratio")
        report["clone_pass_at_2x_noise"] = next((d["pass_rate"] for d in curve if d["ratio"] == 2.0), None)
        report["clone_half_pass_sigma_px"] = half_pass(curve, "sigma_px")
        report["clone_half_pass_sigma_um"] = half_pass(curve, "sigma_um")
        if not prof.randomized:
            report["um_per_px"] = round(1000.0 / prof.px_per_mm, 3)
    if prof.randomized:
        report["regions"] = region_table(cfg, coats, refused, owner, genuine, g_ok & (g_far <= op), imp, hits,
                                         clones, n_refs=len(refs))
    report["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None:
        write_report(report, Path(out_dir))
        # The raw impostor trials (hypothesis count, tail, probe's item) for re-fitting the chance model.
        np.savez_compressed(Path(out_dir) / "impostors.npz", hyp=imp["hyp"], lam=imp["lam"], log_u=imp["log_u"],
                            tail=imp["tail"], k=imp["k"],
                            n=imp["n"], p=imp["p"], probe=imp["probe"], owner=imp["owner"], ref=imp["ref"],
                            probe_owner=owner, trials=imp["trials"])
        # ... and the genuine trials' scores and refit, for the FRR under a re-fitted model.
        np.savez_compressed(Path(out_dir) / "genuine.npz", hyp=[s.hypotheses for s in scores], lam=[s.lam for s in scores],
                            log_u=[s.log_u for s in scores],
                            k=[s.k for s in scores], n=[s.n for s in scores], p=[s.p for s in scores],
                            matched=g_matched, residual=g_residual, ratio=g_ratio, z2=g_z2,
                            residual_p=g_p, noise_c=params.noise_c)
    return report


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    det = report["det"]
    seen = [d for d in det if d["far_empirical"] > 0]
    line_plot(out / "det", [
        ("empirical", [d["far_empirical"] for d in seen], [max(d["frr"], 1e-4) for d in seen]),
        ("analytic", [d["far_analytic"] for d in det], [max(d["frr"], 1e-4) for d in det]),
    ], f"DET ({report['profile']}; FRR floor 1e-4)", "false accept rate", "false reject rate", xlog=True, ylog=True)
    cal = report["far_calibration"]
    use = cal["in_use"]["table"]

    def observed(name: str, rows: list[dict]):
        """An empirical series up to its last threshold with any event (no floor: 0 is not plotted)."""
        rows = [d for d in rows if d["count"] > 0]
        return (name, [-d["log10_threshold"] for d in rows], [d["empirical"] for d in rows])

    resolved = [d for d in use if d["resolved"]]
    series = [("predicted 10^t", [-d["log10_threshold"] for d in use], [d["predicted"] for d in use]),
              observed("empirical, model in use", use),
              ("95% interval, lower", [-d["log10_threshold"] for d in resolved if d["ci95"][0] > 0],
               [d["ci95"][0] for d in resolved if d["ci95"][0] > 0]),
              ("95% interval, upper", [-d["log10_threshold"] for d in resolved], [d["ci95"][1] for d in resolved]),
              observed("empirical, refit, held-out items", cal["refit"]["validation"]["table"]),
              observed("empirical, Bonferroni bound", cal["bonferroni"]["table"])]
    series = [sr for sr in series if sr[1]]
    line_plot(out / "far_tail", series, f"impostor tail ({report['impostor_trials']:,} trials)",
              "-log10 threshold t", "P(log10 FAR <= t)", ylog=True)
    if "clone_curve" in report:
        c = report["clone_curve"]
        line_plot(out / "clone", [("pass rate", [d["ratio"] for d in c], [d["pass_rate"] for d in c])],
                  f"clone resistance ({report['profile']})",
                  "clone error sigma / genuine localisation noise of the capture", "pass rate", yrange=(0.0, 1.0))


def check_profile(name: str) -> None:
    from glint import sim

    if name not in sim.PROFILES:
        raise MatchError(f"unknown profile {name!r}", hint="choose one of: " + ", ".join(sim.PROFILES))


def load_impostors(run_dir: str | Path) -> tuple[dict, np.ndarray, int]:
    """The impostor trials a lab run saved (impostors.npz): (trials dict, probe owners, references)."""
    path = Path(run_dir) / "impostors.npz"
    try:
        z = np.load(path, allow_pickle=False)
        imp = {key: z[key] for key in ("hyp", "lam", "tail", "k", "n", "p", "probe", "owner", "ref")}
        if "log_u" in z.files:  # the count's step position (older runs: the mid-p value)
            imp["log_u"] = z["log_u"]
        owner = z["probe_owner"]
        trials = int(z["trials"])
    except (OSError, KeyError, ValueError) as e:
        raise MatchError(f"{path}: not a lab run's impostor trials of this chance model ({e})",
                         hint="run glint lab eval --out DIR first (runs before the chance model's form 3 lack lambda)") from None
    imp["trials"] = trials
    n_refs = trials // max(1, len(owner)) + 1
    return imp, owner, n_refs


def recalibrate(run_dir: str | Path, params: MatchParams | None = None) -> dict:
    """The chance model (``params``, default the matcher's) against a saved run's impostor trials,
    and the two constants fitted again on them: what ``glint lab calibrate`` prints."""
    imp, owner, n_refs = load_impostors(run_dir)
    params = params or MatchParams()
    imp["far"] = calibrate.predicted(imp["lam"], imp["k"], imp["n"], imp["p"], params.far_offset,
                                     params.far_chance_scale, log_u=imp.get("log_u"))
    report = calibration_report(imp, owner, n_refs, params)
    gpath = Path(run_dir) / "genuine.npz"
    if gpath.exists():
        g = np.load(gpath, allow_pickle=False)
        far = calibrate.predicted(g["lam"], g["k"], g["n"], g["p"], params.far_offset, params.far_chance_scale,
                                  log_u=g["log_u"] if "log_u" in g.files else None)
        far = np.where(g["hyp"] > 0, far, 0.0)
        # The clone gate's statistic under this noise factor (z^2 scales as (c_run / c)^2 where the
        # model's c term dominates the floor, as it does for all but the brightest spots).
        rp = (chi2_pvalue(g["z2"] * (float(g["noise_c"]) / params.noise_c) ** 2, g["matched"], params.noise_margin)
              if "z2" in g.files else np.full(len(far), np.nan))
        accept = refit_passes(g["matched"], rp, params) & (far <= params.log10_far_max)
        report["genuine"] = {"trials": len(far), "frr": float(np.mean(~accept)),
                             "operating_log10_far": params.log10_far_max}
    return report
