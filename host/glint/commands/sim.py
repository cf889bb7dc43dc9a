"""glint sim: render simulated coating frames with ground truth (glint.sim), and detect spots in frames."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from glint.errors import UsageError

_log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("sim", help="coating and camera simulator")
    sub = p.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")

    r = sub.add_parser("render", help="render one camera frame of a simulated coating")
    r.add_argument("--profile", default="field",
                   help="bench, field, harsh or wild (every item draws its own optics; default: field)")
    r.add_argument("--seed", type=int, default=0, help="capture seed: pose, noise, wear (default 0)")
    r.add_argument("--item-seed", type=int, default=None, help="coating seed: which item (default: --seed)")
    r.add_argument("--clone-sigma", type=float, default=None, metavar="PX",
                   help="render a clone: every particle displaced by N(0, PX) pixels")
    r.add_argument("--vga", action="store_true", help="640x480 instead of 320x240")
    r.add_argument("--out", required=True, help="frame file (.png or .pgm)")
    r.add_argument("--truth", default=None, help="write ground truth (particle positions, SNR, pose) as JSON")
    r.add_argument("--json", action="store_true", help="print one JSON object (file, size, profile, particles)")
    r.set_defaults(func=cmd_render)

    d = sub.add_parser("detect", help="run the device's spot detector (host twin) on a frame")
    d.add_argument("image", help="8-bit grayscale PNG or PGM")
    d.add_argument("--max-spots", type=int, default=64, help="keep at most this many spots (default 64)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=cmd_detect)

    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_render(args) -> int:
    from glint.sim import capture, clone_coating, get_profile, make_coating, write_frame

    prof = get_profile(args.profile)
    if args.vga:
        prof = prof.at(640, 480)
    item = args.seed if args.item_seed is None else args.item_seed
    coating = make_coating(item, prof)
    prof = get_profile(prof, item_seed=item)  # a randomized profile: the item's own drawn optics
    if args.clone_sigma is not None:
        if args.clone_sigma < 0:
            raise UsageError("--clone-sigma must be >= 0")
        coating = clone_coating(coating, args.clone_sigma, seed=item + 1, profile=prof)
    cap = capture(coating, prof, seed=args.seed)
    out = write_frame(args.out, cap.image)
    if args.truth:
        truth = cap.truth_json()
        truth.update(profile=prof.name, item_seed=item, capture_seed=args.seed, px_per_mm=prof.px_per_mm,
                     clone_sigma_px=args.clone_sigma)
        if "draw" in prof.extras:
            truth["optics"] = prof.extras["draw"]
        Path(args.truth).write_text(json.dumps(truth, indent=1) + "\n")
    optics = ""
    if "draw" in prof.extras:
        d = prof.extras["draw"]
        optics = (f" optics: {d['px_per_mm']:.0f} px/mm, psf {d['psf_sigma_px']:.2f} px, disc {d['defocus_disc_px']:.2f} px, "
                  f"{d['photons']:.0f} e-/particle, read {d['read_noise_e']:.1f} e-, "
                  f"jpeg {d['jpeg_quality'] or 'none'}")
    if args.json:
        print(json.dumps({"file": str(out), "width": prof.width, "height": prof.height, "profile": prof.name,
                          "item_seed": item, "particles": len(cap.truth_xy),
                          "snr_ge_5": int((cap.truth_snr >= 5).sum())}))
        return 0
    print(f"{out}: {prof.width}x{prof.height} profile={prof.name} item={item} particles={len(cap.truth_xy)} "
          f"snr>=5: {int((cap.truth_snr >= 5).sum())}{optics}")
    return 0


def cmd_detect(args) -> int:
    from glint.imaging import detect, load_image
    from glintcore.proto import GUIDANCE_TEXT

    det = detect(load_image(args.image), max_spots=args.max_spots)
    if args.json:
        print(json.dumps({
            "width": det.width, "height": det.height, "spots": det.spots.hex(),
            "xy": det.xy.round(5).tolist(), "flux": det.flux.astype(int).tolist(),
            "quality": det.quality, "guidance": det.guidance,
        }))
        return 0
    q = det.quality
    print(f"{len(det)} spots kept of {q[0]} found; snr {q[1] / 16:.1f} focus {q[2]} sat {q[3]}/1000 "
          f"mean {q[4]} background {q[5]} noise {q[6] / 16:.2f}")
    print(f"guidance {det.guidance}: {GUIDANCE_TEXT.get(det.guidance, '?')}")
    return 0
