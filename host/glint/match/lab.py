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

import numpy as np

from glint.errors import MatchError
from glint.match import calibrate
from glint.match.codes import box_keys, cell_keys, gather_ranges
from glint.match.database import Database
from glint.match.enroll import enroll
from glint.match.identify import identify
from glint.match.params import MatchParams
from glint.match.plots import line_plot
from glint.match.reference import Reference
from glint.match.spots import spots_from_image
from glint.match.verify import Probe, prepare, verify_prepared

log = logging.getLogger(__name__)

ENROLL_CAPTURES = 3
CLONE_SIGMAS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 0.75)
THRESHOLDS = tuple(range(0, -13, -1))


@dataclass
class LabConfig:
    profile: str = "field"
    items: int = 100
    probes: int = 3
    clone_items: int = 40
    seed: int = 0
    identify: bool = True


def _captures(cfg: LabConfig):
    from glint import sim
    from glint.sim.render import Pose

    prof = sim.get_profile(cfg.profile)
    coats = [sim.make_coating(cfg.seed * 1_000_003 + i, cfg.profile) for i in range(cfg.items)]
    refs, probes, owner, kept, refused = [], [], [], [], []
    params = None
    for i, c in enumerate(coats):
        caps = [spots_from_image(sim.capture(c, cfg.profile, seed=(i * 97 + k) * 2 + 1, pose=Pose()).image)
                for k in range(ENROLL_CAPTURES)]
        try:
            ref = enroll(caps, params, item=f"coat-{i}")
        except MatchError as e:  # failure to enroll: reported, the item takes no further part
            log.warning("%s", e.msg)
            refused.append(e.msg)
            continue
        params = params or ref.params
        n = len(refs)
        refs.append(ref)
        kept.append(c)
        for k in range(cfg.probes):
            probes.append(spots_from_image(sim.capture(c, cfg.profile, seed=(i * 97 + k) * 2 + 100_001).image))
            owner.append(n)
    return prof, kept, refs, probes, np.array(owner), refused


def impostor_trials(refs: list[Reference], probes: list[Probe], owner: np.ndarray, params: MatchParams):
    """Every (reference r, probe p) with owner[p] != r, exactly as verify sees it.

    Returns a dict: ``far`` (log10_far of the trials that had a hypothesis, under ``params``),
    ``hyp``/``tail`` (their hypothesis count and best binomial tail, for calibration), ``owner``
    (the probe's item), ``trials`` (all trials; the others had no code in common: log10_far = 0)
    and ``verified`` (how many needed a full verify)."""
    keys, ref_of = [], []
    for r, ref in enumerate(refs):
        k = box_keys(ref.quads.code, params).ravel()
        keys.append(k)
        ref_of.append(np.full(len(k), r, np.int64))
    keys, ref_of = np.concatenate(keys), np.concatenate(ref_of)
    order = np.argsort(keys, kind="stable")
    keys, ref_of = keys[order], ref_of[order]
    far, hyp, tail, own, verified = [], [], [], [], 0
    for j, pr in enumerate(probes):
        pk = cell_keys(pr.quads.code, params)
        pos, _ = gather_ranges(np.searchsorted(keys, pk, "left"), np.searchsorted(keys, pk, "right"))
        r = ref_of[pos]
        for rr in np.unique(r[r != owner[j]]):  # exact eps check happens inside verify; this only prunes
            res = verify_prepared(refs[rr], pr)
            verified += 1
            if res.hypotheses:
                far.append(res.log10_far)
                hyp.append(res.hypotheses)
                tail.append(res.log10_tail)
                own.append(owner[j])
    return {"far": np.array(far), "hyp": np.array(hyp, np.int64), "tail": np.array(tail), "owner": np.array(own),
            "trials": len(probes) * len(refs) - len(probes), "verified": verified}


def calibration_report(imp: dict, owner: np.ndarray, n_refs: int) -> dict:
    """Fit the chance model on the impostor trials of even items' probes, validate on odd items'."""
    even = imp["owner"] % 2 == 0
    n_even = int(np.sum(owner % 2 == 0)) * (n_refs - 1)
    n_odd = int(np.sum(owner % 2 == 1)) * (n_refs - 1)
    # Impostor trials mostly have one to a few hypotheses, so they cannot tell how the effective
    # count grows with H (genuine probes have hundreds): the exponent stays 1 (Bonferroni in H) and
    # only the offset, the binomial tail's own conservatism, is fitted. The free fit is reported.
    f = calibrate.fit(imp["hyp"][even], imp["tail"][even], exponents=(1.0,), slopes=(1.0,))
    free = calibrate.fit(imp["hyp"][even], imp["tail"][even])
    odd_far = np.minimum(0.0, calibrate.predicted(imp["hyp"][~even], imp["tail"][~even], f["offset"], f["exponent"],
                                                  f["slope"]))
    bonf = np.minimum(0.0, calibrate.predicted(imp["hyp"], imp["tail"], 0.0, 1.0, 1.0))
    thr = np.arange(0, -12.01, -1.0)
    return {"fit_on": {"trials": n_even, "with_hypotheses": int(even.sum())}, "fit": f, "fit_free_exponent": free,
            "validation": {"trials": n_odd, "table": calibrate.table(odd_far, n_odd, thr),
                           "with_hypotheses": int((~even).sum()),
                           "table_given_hypotheses": calibrate.table(odd_far, int((~even).sum()), thr)},
            "in_use": {"trials": imp["trials"], "table": calibrate.table(imp["far"], imp["trials"], thr)},
            "bonferroni": {"trials": imp["trials"], "table": calibrate.table(bonf, imp["trials"], thr)}}


def clone_curve(coats, refs, cfg: LabConfig, prof) -> list[dict]:
    from glint import sim

    out = []
    n = min(cfg.clone_items, len(refs))
    for s in CLONE_SIGMAS:
        passed = 0
        for i in range(n):
            clone = sim.clone_coating(coats[i], s, seed=7919 * i + 1, profile=cfg.profile)
            img = sim.capture(clone, cfg.profile, seed=(i * 97) * 2 + 200_001).image
            passed += verify_prepared(refs[i], prepare(spots_from_image(img), refs[i].params)).match
        out.append({"sigma_px": s, "sigma_um": round(s * 1000.0 / prof.px_per_mm, 2), "pass_rate": passed / n,
                    "trials": n})
    return out


def half_pass_sigma(curve: list[dict]) -> float | None:
    for a, b in zip(curve, curve[1:]):
        if a["pass_rate"] >= 0.5 > b["pass_rate"]:
            t = (a["pass_rate"] - 0.5) / max(a["pass_rate"] - b["pass_rate"], 1e-9)
            return round(a["sigma_px"] + t * (b["sigma_px"] - a["sigma_px"]), 4)
    return None


def evaluate(cfg: LabConfig, out_dir: str | Path | None = None) -> dict:
    """Run the lab; returns the report dict (also written as out_dir/report.json with plots)."""
    t0 = time.perf_counter()
    prof, coats, refs, probe_spots, owner, refused = _captures(cfg)
    params = refs[0].params
    refs = [Reference(r.xy, r.flux, r.support, r.width, r.height, params, r.captures, r.info) for r in refs]
    probes = [prepare(p, params) for p in probe_spots]
    t_cap = time.perf_counter() - t0
    genuine = []
    lat = []
    for j, pr in enumerate(probes):
        t = time.perf_counter()
        genuine.append(verify_prepared(refs[owner[j]], pr))
        lat.append(time.perf_counter() - t)
    g_far = np.array([r.log10_far for r in genuine])
    g_ok = np.array([r.residual is not None and r.residual <= params.residual_max and r.matched >= params.min_matched
                     for r in genuine])
    t1 = time.perf_counter()
    imp = impostor_trials(refs, probes, owner, params)
    n_trials, n_verified = imp["trials"], imp["verified"]
    i_far = np.zeros(n_trials)
    i_far[: len(imp["far"])] = imp["far"]
    t_imp = time.perf_counter() - t1
    det = []
    for t in THRESHOLDS:
        det.append({"log10_threshold": t, "frr": float(np.mean(~(g_ok & (g_far <= t)))),
                    "far_empirical": float(np.mean(i_far <= t)) if t < 0 else 1.0,
                    "far_analytic_bound": 10.0 ** t})
    op = params.log10_far_max
    frr = float(np.mean(~(g_ok & (g_far <= op))))
    false_accepts = int(np.sum(i_far <= op))
    report = {
        "profile": cfg.profile, "items": cfg.items, "probes_per_item": cfg.probes,
        "enroll_refused": len(refused), "enroll_refused_reasons": refused,
        "operating_log10_far": op, "residual_max_px": params.residual_max,
        "frr": frr, "genuine_trials": len(genuine),
        "frr_reasons": sorted({r.reason for r in genuine if not r.match}),
        "impostor_trials": n_trials, "impostor_trials_fully_verified": n_verified,
        "false_accepts": false_accepts, "impostor_min_log10_far": float(i_far.min()) if len(i_far) else 0.0,
        "det": det,
        "far_calibration": calibration_report(imp, owner, len(refs)),
        "far_model": {"offset": params.far_offset, "hyp_exponent": params.far_hyp_exponent,
                      "tail_slope": params.far_tail_slope},
        "verify_latency_ms_median": round(float(np.median(lat)) * 1e3, 3),
        "seconds": {"capture_and_enroll": round(t_cap, 1), "impostors": round(t_imp, 1)},
        "params": params.to_dict(),
    }
    if cfg.identify:
        with __import__("tempfile").TemporaryDirectory() as d:
            db = Database(d)
            db.add_many([f"coat-{i}" for i in range(len(refs))], refs)
            hits = [identify(db, probe_spots[j]).item == f"coat-{owner[j]}" for j in range(len(probe_spots))]
        report["rank1"] = float(np.mean(hits))
    if cfg.clone_items:
        curve = clone_curve(coats, refs, cfg, prof)
        report["clone_curve"] = curve
        report["clone_half_pass_sigma_px"] = half_pass_sigma(curve)
        h = report["clone_half_pass_sigma_px"]
        report["clone_half_pass_sigma_um"] = None if h is None else round(h * 1000.0 / prof.px_per_mm, 2)
        report["um_per_px"] = round(1000.0 / prof.px_per_mm, 3)
    report["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None:
        write_report(report, Path(out_dir))
        # The raw impostor trials (hypothesis count, tail, probe's item) for re-fitting the chance model.
        np.savez_compressed(Path(out_dir) / "impostors.npz", hyp=imp["hyp"], tail=imp["tail"], owner=imp["owner"],
                            trials=imp["trials"])
    return report


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    det = report["det"]
    floor = 1.0 / max(1, report["impostor_trials"])
    line_plot(out / "det", [
        ("empirical", [max(d["far_empirical"], floor) for d in det], [max(d["frr"], 1e-4) for d in det]),
        ("analytic bound", [d["far_analytic_bound"] for d in det], [max(d["frr"], 1e-4) for d in det]),
    ], f"DET ({report['profile']})", "false accept rate", "false reject rate", xlog=True, ylog=True)
    cal = report["far_calibration"]
    series = [("empirical (model in use)", [-d["log10_threshold"] for d in det],
               [max(d["far_empirical"], floor) for d in det]),
              ("predicted 10^t", [-d["log10_threshold"] for d in det], [d["far_analytic_bound"] for d in det])]
    val = cal["validation"]["table"]
    series.append(("empirical, fitted model, validation half", [-d["log10_threshold"] for d in val],
                   [max(d["empirical"], 1.0 / max(1, cal["validation"]["trials"])) for d in val]))
    bon = cal["bonferroni"]["table"]
    series.append(("empirical, Bonferroni bound", [-d["log10_threshold"] for d in bon],
                   [max(d["empirical"], floor) for d in bon]))
    line_plot(out / "far_tail", series, f"impostor tail ({report['impostor_trials']} trials; floor 1/trials)",
              "-log10 threshold t", "P(log10 FAR <= t)", ylog=True)
    if "clone_curve" in report:
        c = report["clone_curve"]
        line_plot(out / "clone", [("pass rate", [d["sigma_px"] for d in c], [d["pass_rate"] for d in c])],
                  f"clone resistance ({report['profile']})", "clone error sigma (px)", "pass rate",
                  yrange=(0.0, 1.0))


def check_profile(name: str) -> None:
    from glint import sim

    if name not in sim.PROFILES:
        raise MatchError(f"unknown profile {name!r}", hint="choose one of: " + ", ".join(sim.PROFILES))
