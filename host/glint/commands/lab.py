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


def register(sub) -> None:
    lab = sub.add_parser("lab", help="evaluation lab (simulated items)")
    lsub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    p = lsub.add_parser("eval", help="FRR, FAR, DET curve, rank-1, clone resistance; JSON plus plots")
    p.add_argument("--profile", default="field", help="simulator profile (bench, field, harsh)")
    p.add_argument("--items", type=int, default=100, help="simulated items (impostor trials ~ items^2 x probes)")
    p.add_argument("--probes", type=int, default=3, help="genuine probes per item")
    p.add_argument("--clone-items", type=int, default=40, help="items used for the clone curve (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=0, help="worker processes for captures and impostor trials "
                   "(default: every core)")
    p.add_argument("--no-identify", action="store_true", help="skip the rank-1 identification run")
    p.add_argument("--out", default=None, help="directory for report.json and det/far_tail/clone .svg/.png")
    p.add_argument("--json", action="store_true", help="print the full report")
    p.set_defaults(func=cmd_eval)
    lab.set_defaults(func=lambda a: lab.print_help() or 2)
