"""glint lab eval: FRR, FAR (empirical beside analytic), DET, rank-1 and clone resistance on the simulator."""

from __future__ import annotations

import json
import os


def cmd_eval(args) -> int:
    from glint.match.lab import LabConfig, check_profile, evaluate

    check_profile(args.profile)
    cfg = LabConfig(args.profile, args.items, args.probes, args.clone_items, args.seed, not args.no_identify,
                    args.jobs or os.cpu_count() or 1)
    report = evaluate(cfg, args.out)
    summary = {k: report.get(k) for k in ("profile", "frr", "impostor_trials", "false_accepts", "impostor_min_log10_far",
                                          "rank1", "clone_half_pass_sigma_px", "clone_half_pass_sigma_um",
                                          "verify_latency_ms_median", "enroll_refused")}
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
    return 0


def cmd_calibrate(args) -> int:
    import dataclasses

    from glint.match.lab import recalibrate
    from glint.match.params import MatchParams

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
    c = lsub.add_parser("calibrate", help="the chance model against a saved run's impostor trials; refit its constants")
    c.add_argument("run", metavar="DIR", help="a glint lab eval --out directory (its impostors.npz)")
    c.add_argument("--offset", type=float, default=None, help="try this far_offset instead of the matcher's")
    c.add_argument("--chance-scale", type=float, default=None, help="try this far_chance_scale instead")
    c.add_argument("--json", action="store_true", help="print the whole calibration report")
    c.set_defaults(func=cmd_calibrate)
    lab.set_defaults(func=lambda a: lab.print_help() or 2)
