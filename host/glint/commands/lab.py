"""glint lab eval: FRR, FAR (empirical beside analytic), DET, rank-1 and clone resistance on the simulator;
glint lab impostors: impostor trials at scale (cached, chunked, resumable) with the region table."""

from __future__ import annotations

import json
import os


def cmd_eval(args) -> int:
    from glint.match.lab import LabConfig, check_profile, evaluate

    check_profile(args.profile)
    cfg = LabConfig(args.profile, args.items, args.probes, args.clone_items, args.seed, not args.no_identify,
                    args.jobs or os.cpu_count() or 1)
    report = evaluate(cfg, args.out)
    summary = {k: report.get(k) for k in ("profile", "fte", "enroll_refused", "frr", "genuine_trials", "impostor_trials",
                                          "false_accepts",
                                          "impostor_min_log10_far", "rank1", "clone_half_pass_ratio",
                                          "clone_pass_at_2x_noise", "clone_half_pass_sigma_px", "clone_half_pass_sigma_um",
                                          "genuine_noise_ratio_median", "verify_latency_ms_median")}
    cal = report.get("far_calibration") or {}
    if cal:
        summary["far_model"] = cal["model"]
        summary["far_tail_agrees_down_to"] = cal["in_use"]["agrees_down_to"]
        summary["far_tail"] = [(d["log10_threshold"], d["count"], d["deviation_decades"])
                               for d in cal["in_use"]["table"] if d["resolved"] or d["count"]]
        summary["far_refit_on_even_items"] = cal["refit"]["fit"]
        summary["far_refit_validation_agrees_down_to"] = cal["refit"]["validation"]["agrees_down_to"]
        summary["identify_tail_agrees_down_to"] = cal["identify"]["agrees_down_to"]
    print(json.dumps(report if args.json else summary, indent=None if args.json else 1))
    if not args.json and "regions" in report:
        print(region_text(report["regions"]))
    return 0


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def region_text(regions: dict) -> str:
    """The region table of a randomized profile's lab run as aligned text."""
    head = (f"{'region':<44} {'items':>5} {'refused':>7} {'FTE':>6} {'probes':>6} {'FRR':>7} {'rank-1':>7} {'clone@2x':>8} "
            f"{'impostors':>9} {'FA':>3} {'tail agrees to':>14}")
    lines = [head]
    for title, rows in (("by axis", regions["by_axis"]), ("cells (psf x snr x particles)", regions["cells"])):
        lines.append(f"-- {title}")
        for name, r in rows.items():
            if not r:
                continue
            lines.append(f"{name:<44} {r['items'] + r['refused_at_enrollment']:>5} {r['refused_at_enrollment']:>7} "
                         f"{_fmt(r.get('fte'), '.0%'):>6} {r['genuine_trials']:>6} "
                         f"{_fmt(r.get('frr'), '.1%'):>7} {_fmt(r.get('rank1'), '.1%'):>7} "
                         f"{_fmt(r.get('clone_pass_at_2x'), '.0%'):>8} {r['impostor_trials']:>9,} {r['false_accepts']:>3} "
                         f"{_fmt(r.get('tail_agrees_down_to'), 'g'):>14}")
    return "\n".join(lines)


def _depths(tail: dict | None) -> str:
    t = tail or {}
    return (f"{_fmt(t.get('agrees_down_to'), 'g'):>7} {_fmt(t.get('bounded_down_to'), 'g'):>5} "
            f"{_fmt(t.get('resolved_down_to'), 'g'):>4}")


WITHIN_DECADES = 0.3  # issue 12: the analytic tail within 0.3 decades of the empirical one


def _resolved(d: dict) -> bool:
    """A threshold the trials resolve: the model expects >= 3 events there (its analytic count where
    the run recorded it, else 10^t x trials), so that no event at all is a disagreement."""
    return d["analytic"] >= 3.0 if "analytic" in d else d["resolved"]


def _decade_cell(d: dict) -> str:
    """One threshold of a tail: count, deviation in decades from the analytic tail (the model's
    expected count over these trials, where the run recorded it, else 10^t x trials) and the verdict
    ("ok": within 0.3 decades; "ci": not, but inside the count's 95 % interval; "NO": neither)."""
    if "analytic" in d:
        dev, agrees = d["deviation_analytic_decades"], d["agrees_analytic"]
    else:
        dev, agrees = d["deviation_decades"], d["agrees"]
    if dev is not None and abs(dev) <= WITHIN_DECADES:
        verdict = "ok"
    else:
        verdict = "ci" if agrees else "NO"
    return f"{d['count']:>6,} {_fmt(dev, '+.2f'):>5} {verdict:<2}"


def within_down_to(tail: dict | None) -> float | None:
    """The deepest resolved threshold down to which every resolved threshold's count is within 0.3
    decades of the analytic tail (or of 10^t x trials; None if the first is not, or none is resolved)."""
    depth = None
    for d in (tail or {}).get("rows", []):
        if not _resolved(d):
            break
        dev = d["deviation_analytic_decades"] if "analytic" in d else d["deviation_decades"]
        if dev is None or abs(dev) > WITHIN_DECADES:
            break
        depth = d["log10_threshold"]
    return depth


def region_tail_text(regions: dict) -> str:
    """Per region, the empirical tail against the analytic one (10^t) at each decade down to the
    deepest the region's trials resolve (10^t x trials >= 3): the count, its deviation in decades
    and whether it is within 0.3 decades; the trials are those whose probe is of the region."""
    rows_all = [(title, name, r) for title, rows in (("by axis", regions["by_axis"]),
                                                     ("cells (psf x snr x particles)", regions["cells"]))
                for name, r in rows.items() if r and r.get("tail")]
    if not rows_all:
        return ""
    ts = [d["log10_threshold"] for d in rows_all[0][2]["tail"]["rows"]]
    against = ("the analytic tail (the model's expected count: sum of min(10^t, P(H > 0)) over the trials)"
               if "analytic" in rows_all[0][2]["tail"]["rows"][0] else "10^t x trials")
    lines = [f"tail per region (probe of the region): count, log10(count / {against}), ok = within 0.3 decades, "
             "ci = inside the count's 95 % interval only, NO = neither; blank: not resolved (fewer than 3 expected)",
             f"{'region':<44} {'trials':>9} " + " ".join(f"{f't = {t:g}':<15}" for t in ts) + f" {'within 0.3 to':>13}"]
    title = None
    summary: dict[str, list] = {}
    for t_, name, r in rows_all:
        if t_ != title:
            title = t_
            lines.append(f"-- {title}")
        cells = [(_decade_cell(d) if _resolved(d) else "") for d in r["tail"]["rows"]]
        w = within_down_to(r["tail"])
        res = min((d["log10_threshold"] for d in r["tail"]["rows"] if _resolved(d)), default=None)
        summary.setdefault(title, []).append((w, res))
        lines.append(f"{name:<44} {r['impostor_trials']:>9,} " + " ".join(f"{c:<15}" for c in cells)
                     + f" {_fmt(w, 'g'):>13}")
    for title, got in summary.items():
        full = sum(1 for w, res in got if w is not None and res is not None and w <= res)
        deep = sum(1 for w, _ in got if w is not None and w <= -5.0)
        lines.append(f"{title}: {full} of {len(got)} within 0.3 decades at every resolved decade, "
                     f"{deep} of {len(got)} down to -5")
    return "\n".join(lines)


def impostor_text(report: dict) -> str:
    """A lab impostors run as text: the counts, the whole tail and the region table."""
    lines = [f"{report['profile']}: {report['items']} items, {report['enrolled']} enrolled "
             f"({report['refused_at_enrollment']} refused), {report['probes_scored']:,} of {report['probes']:,} probes "
             f"scored ({report['chunks_done']} of {report['chunks']} chunks"
             f"{'' if report['complete'] else ': run again to go on'})",
             f"impostor trials {report['impostor_trials']:,} ({report['impostor_trials_with_hypotheses']:,} with a "
             f"hypothesis, {report['impostor_beyond_chance']} beyond chance): {report['false_accepts']} false accepts, "
             f"least log10_far {report['impostor_min_log10_far']:.2f}; genuine FRR "
             f"{_fmt(report['frr'], '.2%')} of {report['genuine_trials']}",
             f"cost {report['cpu_seconds_per_trial'] * 1e3:.2f} CPU ms per trial, "
             f"{report['render_cpu_seconds_per_item']:g} CPU s per item rendered: 1e6 trials = "
             f"{report['for_1e6_trials']['items']:,} items, {report['for_1e6_trials']['cpu_hours']:g} CPU hours"]
    if "clone_curve" in report:
        lines.append("clones: " + ", ".join(f"{d['ratio']:g} x: {d['pass_rate']:.0%}" for d in report["clone_curve"])
                     + f" of {report['clone_curve'][0]['trials']}; half-pass {_fmt(report['clone_half_pass_ratio'], 'g')} x"
                     + f" = {_fmt(report['clone_half_pass_sigma_px'], 'g')} px"
                     + f" = {_fmt(report['clone_half_pass_sigma_um'], 'g')} um")
    tail = report.get("tail")
    if tail:
        lines.append("tail: " + ", ".join(
            f"{d['log10_threshold']:g}: {d['count']:,}" + ("" if d["deviation_decades"] is None else
                                                           f" ({d['deviation_decades']:+.2f})")
            + ("" if d["resolved"] else " unresolved") for d in tail["rows"])
            + f"; agrees down to {tail['agrees_down_to']}, bounded down to {tail.get('bounded_down_to')}")
        if tail["rows"] and "analytic" in tail["rows"][0]:
            lines.append("tail against the analytic (the model's expected count, sum of min(10^t, P(H > 0))): " + ", ".join(
                f"{d['log10_threshold']:g}: {d['count']:,} of {d['analytic']:,.1f}"
                + ("" if d["deviation_analytic_decades"] is None else f" ({d['deviation_analytic_decades']:+.2f})")
                for d in tail["rows"] if _resolved(d)) + f"; within 0.3 decades down to {_fmt(within_down_to(tail), 'g')}")
    regions = report.get("regions")
    if regions:
        head = (f"{'region':<44} {'items':>5} {'refused':>7} {'FTE':>6} {'probes':>6} {'FRR':>7} {'impostors':>9} {'FA':>3} "
                f"{'least':>6} {'tail to':>7} {'bound':>5} {'res.':>4} {'as ref':>9} {'tail to':>7} {'bound':>5} {'res.':>4} "
                f"{'clone@2x':>8}")
        lines.append("(tail to: the model's 10^t agrees with the rate (0.3 decades or the 95 % interval) down to t; "
                     "bound: the rate is not significantly above 10^t down to t; res.: 10^t x trials >= 3 down to t)")
        lines.append(head)
        for title, rows in (("by axis", regions["by_axis"]), ("cells (psf x snr x particles)", regions["cells"])):
            lines.append(f"-- {title}")
            for name, r in rows.items():
                if not r:
                    continue
                lines.append(
                    f"{name:<44} {r['items']:>5} {r['refused_at_enrollment']:>7} "
                    f"{_fmt(r['refused_at_enrollment'] / max(1, r['items']), '.0%'):>6} {r['genuine_trials']:>6} "
                    f"{_fmt(r.get('frr'), '.1%'):>7} {r['impostor_trials']:>9,} {r['false_accepts']:>3} "
                    f"{r['least_log10_far']:>6.1f} {_depths(r.get('tail'))} "
                    f"{r['impostor_trials_as_reference']:>9,} {_depths(r.get('tail_as_reference'))} "
                    f"{_fmt(r.get('clone_pass_at_2x'), '.0%'):>8}")
        per_region = region_tail_text(regions)
        if per_region:
            lines.append(per_region)
    return "\n".join(lines)


def cmd_impostors(args) -> int:
    import time

    from glint.match.labscale import ScaleConfig, run

    cfg = ScaleConfig(args.profile, args.items, args.probes, args.seed, args.block, args.chunk, args.captures_as_probes)
    deadline = None if args.time_limit is None else time.time() + 60.0 * args.time_limit
    report = run(cfg, args.out, args.jobs or os.cpu_count() or 1, deadline, args.clone_items)
    print(json.dumps(report, indent=1) if args.json else impostor_text(report))
    return 0


def cmd_calibrate_scanner(args) -> int:
    from glint.match import Database
    from glint.match.scanner import calibrate_scanner, load_captures

    rep = calibrate_scanner(load_captures(args.captures, rotations=args.rotations), augment=args.rotations)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(rep["constants"], indent=1) + "\n")
    if args.apply:
        Database(args.apply).set_calibration(rep["constants"])
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    print(f"scanner {rep['frame'][0]}x{rep['frame'][1]}: {rep['items']} items, {rep['captures']} captures, "
          f"{rep['genuine_pairs']} genuine pairs{' (with rotated probes)' if rep['augment'] else ''}, "
          f"{len(rep['refused_at_enrollment'])} captures refused as references")
    n = rep["noise"]
    if n:
        print(f"noise model: {n['pairs']} genuine pairs beyond chance, observed / expected noise median "
              f"{n['median_ratio']:.2f} (5-95 %: {n['ratio_percentiles'][0]:.2f}-{n['ratio_percentiles'][2]:.2f}); "
              f"noise_c {rep['constants_before']['noise_c']} -> {rep['constants']['noise_c']}")
    else:
        print("noise model: no genuine pair beyond chance; noise_c kept")
    c = rep["chance"]
    print(f"chance model: {c['trials']:,} impostor trials, {c['with_hypotheses']:,} with a hypothesis, least "
          f"log10 FAR {c['least_log10_far']:.1f}; " + (f"fitted offset {c['fit']['offset']:+.2f}, chance scale "
          f"{c['fit']['chance_scale']:.2f}" if c.get("fit") else c.get("kept", "")))
    for d in c["table"]:
        if not (d["resolved"] or d["count"]):
            break
        dev = "" if d["deviation_decades"] is None else f"{d['deviation_decades']:+.2f}"
        print(f"  log10 t {d['log10_threshold']:>5.1f}: {d['count']:>6,} impostors, rate {d['empirical']:.2e} "
              f"vs {d['predicted']:.1e} {dev:>6} {'agrees' if d['agrees'] else 'DISAGREES'}")
    print(f"FRR at log10_far <= -9 over the genuine pairs: {rep['frr_before']:.1%} with the constants in use, "
          f"{rep['frr_after']:.1%} with the fitted ones")
    if args.apply:
        print(f"stored in {args.apply}")
    return 0


def cmd_calibrate(args) -> int:
    import dataclasses

    from glint.errors import UsageError
    from glint.match.lab import recalibrate
    from glint.match.params import MatchParams

    if args.captures:
        return cmd_calibrate_scanner(args)
    if not args.run:
        raise UsageError("give a lab run DIR, or --captures DIR (K items x M captures of one scanner)")

    over = {k: v for k, v in (("far_offset", args.offset), ("far_chance_scale", args.chance_scale)) if v is not None}
    cal = recalibrate(args.run, dataclasses.replace(MatchParams(), **over))
    if args.json:
        print(json.dumps(cal, indent=1))
        return 0
    use = cal["in_use"]
    print(f"model: offset {cal['model']['offset']:+.2f}, chance scale {cal['model']['chance_scale']:.2f}; "
          f"{use['trials']:,} impostor trials, {use['with_hypotheses']:,} with a hypothesis")
    print(f"{'log10 t':>8} {'predicted':>10} {'count':>9} {'pairs':>7} {'empirical':>10} {'95% interval':>22} {'dev':>6}  agrees")
    for d in use["table"]:
        if not (d["resolved"] or d["count"]):
            break
        dev = "" if d["deviation_decades"] is None else f"{d['deviation_decades']:+.2f}"
        print(f"{d['log10_threshold']:>8.1f} {d['predicted']:>10.1e} {d['count']:>9,} {d.get('pairs', 0):>7,} "
              f"{d['empirical']:>10.2e} "
              f"{d['ci95'][0]:>10.2e}..{d['ci95'][1]:.2e} {dev:>6}  {'yes' if d['agrees'] else 'NO'}"
              f"{'' if d['resolved'] else ' (not resolved)'}")
    print(f"agrees down to: {use['agrees_down_to']}")
    f = cal["refit"]["fit"]
    print(f"refit on even items' probes: offset {f['offset']:+.2f}, chance scale {f['chance_scale']:.2f} "
          f"(rms {f['rms_decades']} decades); held-out odd items agree down to "
          f"{cal['refit']['validation']['agrees_down_to']}")
    print(f"1:N penalty log10({cal['identify']['searched']}) agrees down to {cal['identify']['agrees_down_to']}")
    if "genuine" in cal:
        g = cal["genuine"]
        print(f"FRR at log10_far <= {g['operating_log10_far']:g}: {g['frr']:.2%} of {g['trials']:,} genuine trials")
    return 0


def register(sub) -> None:
    lab = sub.add_parser("lab", help="evaluation lab (simulated items)")
    lsub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    p = lsub.add_parser("eval", help="FRR, FAR, DET curve, rank-1, clone resistance; JSON plus plots")
    p.add_argument("--profile", default="field", help="simulator profile (bench, field, harsh)")
    p.add_argument("--items", type=int, default=100, help="simulated items (impostor trials ~ items^2 x probes)")
    p.add_argument("--probes", type=int, default=3, help="genuine probes per item")
    p.add_argument("--clone-items", type=int, default=40, help="items used for the clone curve (0: skip)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated items and captures (default 0)")
    p.add_argument("--jobs", type=int, default=0, help="worker processes for captures and impostor trials "
                   "(default: every core)")
    p.add_argument("--no-identify", action="store_true", help="skip the rank-1 identification run")
    p.add_argument("--out", default=None, help="directory for report.json and det/far_tail/clone .svg/.png")
    p.add_argument("--json", action="store_true", help="print the full report")
    p.set_defaults(func=cmd_eval)
    m = lsub.add_parser("impostors", help="impostor trials at scale: every probe against every other item's "
                        "reference, full verify decisions; cached, chunked, resumable; the region table")
    m.add_argument("--out", required=True, help="run directory: rendered items, trial chunks, report.json "
                   "(run again with the same arguments to resume)")
    m.add_argument("--profile", default="wild", help="simulator profile (default wild, the randomized family)")
    m.add_argument("--items", type=int, default=200, help="simulated items (trials ~ items x enrolled x probes)")
    m.add_argument("--probes", type=int, default=4, help="probes per item (every item's, enrolled or not)")
    m.add_argument("--seed", type=int, default=0, help="seed of the items (the same items as lab eval --seed)")
    m.add_argument("--jobs", type=int, default=0, help="worker processes (default: every core)")
    m.add_argument("--block", type=int, default=8, help="items per rendered block (the unit of rendering)")
    m.add_argument("--chunk", type=int, default=8, help="probes per trial chunk (the unit of resuming)")
    m.add_argument("--captures-as-probes", action="store_true", help="also every item's enrollment captures as "
                   "impostor probes against the other items' references (3 more per item, nothing more rendered; "
                   "never genuine probes)")
    m.add_argument("--clone-items", type=int, default=0, help="also the clone curve on this many enrolled items "
                   "(as lab eval: replicas displaced by r x the genuine noise; default 0: none)")
    m.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="start no chunk after this many minutes; the report covers the chunks done")
    m.add_argument("--json", action="store_true", help="print the whole report")
    m.set_defaults(func=cmd_impostors)
    c = lsub.add_parser("calibrate", help="the chance model against a saved run's impostor trials; refit its "
                        "constants; or (--captures) calibrate a scanner model from its own captures")
    c.add_argument("run", metavar="DIR", nargs="?", help="a glint lab eval --out directory (its impostors.npz)")
    c.add_argument("--captures", metavar="DIR", help="DIR/<item>/<captures>: K items x M captures of one scanner "
                   "(images or signed scans); fits the noise model and, with enough impostor pairs, the chance model")
    c.add_argument("--rotations", action="store_true", help="with --captures: also probe with each image rotated "
                   "by 90/180/270 degrees")
    c.add_argument("--apply", metavar="DB", help="with --captures: store the fitted constants in this database")
    c.add_argument("--out", metavar="FILE", help="with --captures: write the fitted constants as JSON "
                   "(for glint enroll --calibration FILE)")
    c.add_argument("--offset", type=float, default=None, help="try this far_offset instead of the matcher's")
    c.add_argument("--chance-scale", type=float, default=None, help="try this far_chance_scale instead")
    c.add_argument("--json", action="store_true", help="print the whole calibration report")
    c.set_defaults(func=cmd_calibrate)
    lab.set_defaults(func=lambda a: lab.print_help() or 2)
