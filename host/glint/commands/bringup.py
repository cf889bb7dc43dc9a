"""glint bringup: tools for bringing up a scanner's camera, optics and parts (docs/hardware.md).

    glint bringup capture [-p URL] -o frame.png      raw frame to PNG (plus its statistics)
    glint bringup stats [-p URL | --image FILE]      levels, histogram, spots, SNR, focus, guidance
    glint bringup focus [-p URL] [--count N]         live focus score while the optics are adjusted
    glint bringup exposure [-p URL] [--no-store]     exposure sweep; stores the recommendation on the device
    glint bringup indicators [-p URL] [--yes]        play every LED/buzzer pattern, ask what was seen
    glint bringup keytest [-p URL]                   device signs a challenge, host verifies
    glint bringup storage [-p URL]                   flash write/read and config round trip
    glint bringup check [-p URL]                     self-test + key + storage + indicators, one verdict

The port defaults to auto (the one USB scanner found); a positional PORT still works, with a warning.
"""

from __future__ import annotations

import json
import sys

from glint.cli import add_port_argument
from glint.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("bringup", help="camera, optics and part checks for hardware bring-up")
    bsub = p.add_subparsers(dest="bringup_cmd", metavar="SUBCOMMAND", required=True)

    q = bsub.add_parser("capture", help="capture a raw frame to PNG")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("-o", "--out", default="frame.png", help="output .png or .pgm (default frame.png)")
    q.add_argument("--json", action="store_true", help="print one JSON object (file, width, height, statistics)")
    q.set_defaults(func=cmd_capture)

    q = bsub.add_parser("stats", help="statistics of a fresh frame (or of an image file)")
    add_port_argument(q, legacy_positional=True, default_help="auto, unless --image is given")
    q.add_argument("--image", help="an 8-bit grayscale PNG/PGM instead of a device")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_stats)

    q = bsub.add_parser("focus", help="live focus score while adjusting the optics (Ctrl-C to stop)")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--count", type=int, default=0, help="number of frames (default: until Ctrl-C)")
    q.add_argument("--interval", type=float, default=0.0, help="seconds between frames")
    q.add_argument("--json", action="store_true", help="one JSON line per frame (focus, best, spots, snr)")
    q.set_defaults(func=cmd_focus)

    q = bsub.add_parser("exposure", help="exposure sweep; the recommendation is stored on the device")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--exposures", default=None, help="comma-separated microseconds (default 1000..32000, x2 steps)")
    q.add_argument("--no-store", action="store_true", help="only recommend; keep the device's setting")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_exposure)

    q = bsub.add_parser("indicators", help="play each indicator pattern and confirm it")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--yes", action="store_true", help="do not ask: only check the device plays each pattern")
    q.add_argument("--json", action="store_true", help="print one JSON object (ok, lines)")
    q.set_defaults(func=cmd_indicators)

    q = bsub.add_parser("keytest", help="sign/verify self-test of the device key")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_keytest)

    q = bsub.add_parser("storage", help="storage check: record write/read, config round trip, spool")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_storage)

    q = bsub.add_parser("check", help="all part checks in one go (indicators not confirmed by eye)")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_check)


def _open(port: str | None):
    from glint.address import resolve_port
    from glint.link import open_scanner

    return open_scanner(resolve_port(port))


def cmd_capture(args) -> int:
    from glint.bringup import capture_frame, frame_stats, save_png

    with _open(args.port) as sc:
        img = capture_frame(sc)
    path = save_png(img, args.out)
    st = frame_stats(img)
    if args.json:
        print(json.dumps({"file": str(path), "width": img.shape[1], "height": img.shape[0], **st.to_dict()}))
        return 0
    print(f"wrote {path} ({img.shape[1]}x{img.shape[0]})")
    print("\n".join(st.lines()))
    return 0


def cmd_stats(args) -> int:
    from glint.bringup import capture_frame, frame_stats

    if args.image:
        from glint.imaging import load_image

        img = load_image(args.image)
    else:
        with _open(args.port) as sc:
            img = capture_frame(sc)
    st = frame_stats(img)
    print(json.dumps(st.to_dict()) if args.json else "\n".join(st.lines()))
    return 0


def cmd_focus(args) -> int:
    from glint.bringup.frames import FOCUS_GOOD, ascii_meter
    from glint.bringup.tuning import focus_readings

    tty = sys.stdout.isatty()
    full = 2 * FOCUS_GOOD
    last = None
    with _open(args.port) as sc:
        try:
            for r in focus_readings(sc, args.count, args.interval):
                last = r
                if args.json:
                    print(json.dumps({"focus": r.focus, "best": r.best, "spots": r.spots, "snr": r.snr}), flush=True)
                    continue
                mark = "sharp" if r.focus >= FOCUS_GOOD else "soft "
                line = (f"focus {r.focus:5d} {ascii_meter(r.focus, full, 30)} {mark} best {r.best:5d} "
                        f"spots {r.spots:3d} snr {r.snr:5.1f}")
                print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
                last = r
        except KeyboardInterrupt:
            pass
    if args.json:
        return 0
    if tty:
        print()
    if last is not None:
        print(f"best focus {last.best} ({'sharp' if last.best >= FOCUS_GOOD else f'below {FOCUS_GOOD}: keep adjusting'})")
    return 0


def cmd_exposure(args) -> int:
    from glint.bringup.tuning import DEFAULT_EXPOSURES, SAT_LIMIT_PERMILLE, exposure_sweep

    try:
        exposures = [int(x) for x in args.exposures.split(",")] if args.exposures else list(DEFAULT_EXPOSURES)
    except ValueError:
        raise UsageError(f"bad --exposures {args.exposures!r}", hint="comma-separated integers, e.g. 2000,4000,8000") from None

    def show(row):
        if not args.json:
            s = row.stats
            print(f"{row.exposure_us:8d} us  p99 {s.p99:3d}  sat {s.saturated_permille:5.2f}  spots {s.spots:3d}  "
                  f"snr {s.snr:6.1f}  focus {s.focus:5d}  {row.verdict}", flush=True)

    with _open(args.port) as sc:
        res = exposure_sweep(sc, exposures, store=not args.no_store, on_row=show)
    if args.json:
        print(json.dumps({"rows": [{"exposure_us": r.exposure_us, "verdict": r.verdict, **r.stats.to_dict()} for r in res.rows],
                          "best": res.best.exposure_us if res.best else None, "previous": res.previous_us,
                          "stored": res.stored}))
        return 0 if res.best else 1
    if res.best is None:
        print(f"no usable exposure (saturation <= {SAT_LIMIT_PERMILLE} per mille, spots visible); kept {res.previous_us} us"
              " - check the illumination and that a coated sample is under the lens")
        return 1
    b = res.best
    print(f"recommended {b.exposure_us} us (snr {b.stats.snr:.1f}, {b.stats.spots} spots); "
          + ("stored on the device" if res.stored else f"not stored, device keeps {res.previous_us} us"))
    return 0


def cmd_indicators(args) -> int:
    from glint.bringup.checks import check_indicators

    def ask(name, desc):
        try:
            ans = input(f"pattern {name!r}: do you see {desc}? [Y/n] ").strip().lower()
        except EOFError:
            raise UsageError("no answer: stdin is closed", hint="run it at a terminal, or pass --yes") from None
        return ans in ("", "y", "yes")

    with _open(args.port) as sc:
        c = check_indicators(sc, confirm=None if args.yes else ask, hold=0.3 if args.yes else 0)
    return _report(args, [c])


def cmd_keytest(args) -> int:
    return _run_checks(args, ("key",))


def cmd_storage(args) -> int:
    return _run_checks(args, ("storage",))


def cmd_check(args) -> int:
    return _run_checks(args, ("selftest", "key", "storage", "indicators"))


def _run_checks(args, names) -> int:
    from glint.bringup import checks as ck

    funcs = {"selftest": ck.check_selftest, "key": ck.check_signing, "storage": ck.check_storage,
             "indicators": lambda sc: ck.check_indicators(sc, confirm=None, hold=0)}
    results = []
    with _open(args.port) as sc:
        for name in names:
            results.append(funcs[name](sc))
    return _report(args, results)


def _report(args, results) -> int:
    ok = all(c.ok for c in results)
    if getattr(args, "json", False):
        print(json.dumps({"ok": ok, "checks": [{"name": c.name, "ok": c.ok, "lines": c.lines} for c in results]}))
    else:
        for c in results:
            _print_check(c)
        if len(results) > 1:
            print("bring-up checks " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def _print_check(c) -> None:
    print(f"{c.name}: {'ok' if c.ok else 'FAILED'}")
    for line in c.lines:
        print("  " + line)
