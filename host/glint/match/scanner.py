"""Calibration of a scanner model from its own captures: the noise model and the chance model.

A new scanner model (other optics, sensor, JPEG) is calibrated from K items x M captures taken
with it (docs/matching.md, "Calibrating a new scanner model"):

* **noise model**: every genuine pair (item i's capture a enrolled, its capture b as the probe,
  every ordered a != b; with ``augment``, b's image also rotated by 90/180/270 degrees and
  detected again, as a hand-held scanner sees the item) that is beyond chance gives the observed over the expected localisation
  noise (``residual_ratio``, which scales as 1 / noise_c); ``noise_c`` becomes noise_c x the
  median ratio, so that a genuine pair of this scanner sits at the model's expectation.
* **chance model**: every impostor pair (item i's capture against item j's reference, i != j)
  is scored; with enough of them (``MIN_IMPOSTOR_TRIALS``) the two constants are fitted
  (glint.match.calibrate.fit); the agreement table of the constants in use is always reported,
  as deep as the trials resolve it.
* **result**: the genuine pairs' FRR at the operating point with the old and the new constants, the
  tail table, and the constants to store in a database (``Database.set_calibration``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from glint.errors import MatchError, UsageError
from glint.match import calibrate
from glint.match.enroll import enroll
from glint.match.params import CALIBRATED, MatchParams
from glint.match.spots import SpotSet, spots_from_image
from glint.match.verify import prepare, score_prepared, verify_prepared

IMAGE_SUFFIXES = (".png", ".pgm", ".jpg", ".jpeg")
MIN_IMPOSTOR_TRIALS = 10_000  # fewer resolve the tail only to ~1e-3: the chance constants in use are kept


def _read_image(path: Path) -> np.ndarray | None:
    from glint import imaging

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    try:
        return imaging.load_image(path, any_colour=True)
    except UsageError as e:
        raise MatchError(f"{path}: unreadable image: {e.msg}") from None


def load_capture(path: Path, rotations: bool = False) -> SpotSet:
    """A capture file: an 8-bit image (PNG, PGM or JPEG: the host detector runs on it) or a signed
    scan. ``rotations``: for an image, also the detections of its copies rotated by 90, 180 and 270
    degrees (``meta["rotated"]``: how the scanner sees the item held at other angles)."""
    from glint.match.spots import load_spots

    img = _read_image(path)
    if img is None:
        return load_spots(path)
    s = spots_from_image(img, str(path))
    if rotations:
        s.meta["rotated"] = [spots_from_image(np.ascontiguousarray(np.rot90(img, k)), f"{path} rot{90 * k}")
                             for k in (1, 2, 3)]
    return s


def load_captures(root: str | Path, rotations: bool = False) -> dict[str, list[SpotSet]]:
    """``root/<item>/<capture files>``: the captures of each item (sorted by name)."""
    root = Path(root)
    if not root.is_dir():
        raise MatchError(f"{root} is not a directory", hint="one folder per item, holding its captures")
    items = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
        if files:
            items[d.name] = [load_capture(f, rotations) for f in files]
    if not items:
        raise MatchError(f"{root} holds no item folders with captures", hint="root/<item>/<capture files>")
    return items


def calibrate_scanner(items: dict[str, list[SpotSet]], params: MatchParams | None = None,
                      augment: bool = False) -> dict:
    """Fit the noise model (and, with enough impostor trials, the chance model) to one scanner's
    captures; returns the report (constants, genuine and impostor figures)."""
    names = list(items)
    sizes = {(c.width, c.height) for caps in items.values() for c in caps}
    if len(sizes) != 1:
        raise MatchError(f"captures of several frame sizes {sorted(sizes)}: one scanner model at a time")
    if sum(len(c) >= 2 for c in items.values()) == 0:
        raise MatchError("no item has two captures: genuine pairs need M >= 2 captures of an item")
    if params is None:
        first = max((c for caps in items.values() for c in caps), key=len)
        params = MatchParams.for_spots(first.xy, first.width, first.height)
    refs, genuine = {}, []
    for name in names:
        for a, cap in enumerate(items[name]):
            try:
                refs[(name, a)] = enroll([cap], params, item=name)
            except MatchError as e:
                genuine.append({"item": name, "ref": a, "refused": e.msg})
    # Genuine pairs: every ordered pair of captures of one item (and rotated probes with augment).
    rows: list[dict[str, Any]] = []  # one verify result per pair, JSON-shaped
    for (name, a), ref in refs.items():
        for b, cap in enumerate(items[name]):
            if b == a:
                continue
            for probe in [cap] + (list(cap.meta.get("rotated", [])) if augment else []):
                r = verify_prepared(ref, prepare(probe, params))
                rows.append({"item": name, "ref": a, "probe": probe.source or str(b), "match": r.match,
                             "log10_far": r.log10_far, "matched": r.matched, "ratio": r.residual_ratio,
                             "z2": r.residual_z2, "p": r.residual_p, "reason": r.reason})
    if not rows:
        raise MatchError("no genuine pair to calibrate on (every capture refused at enrollment)",
                         hint="; ".join(sorted({g['refused'] for g in genuine}))[:300])
    beyond = [r for r in rows if r["log10_far"] <= params.log10_far_max and r["ratio"] is not None]
    fit = dataclasses.replace(params)
    noise_fit = None
    if beyond:
        ratio = float(np.median([r["ratio"] for r in beyond]))
        fit = dataclasses.replace(fit, noise_c=round(params.noise_c * ratio, 3))
        noise_fit = {"pairs": len(beyond), "median_ratio": round(ratio, 3),
                     "ratio_percentiles": [round(float(v), 3) for v in
                                           np.percentile([r["ratio"] for r in beyond], [5, 50, 95])]}
    # Impostor pairs: every capture against every other item's references.
    imp: dict[str, list[float]] = {"lam": [], "k": [], "n": [], "p": [], "far": [], "log_u": []}
    n_trials = 0
    for (name, _), ref in refs.items():
        for other in names:
            if other == name:
                continue
            for cap in items[other]:
                n_trials += 1
                sc = score_prepared(ref, prepare(cap, params))
                if sc.hypotheses:
                    for key, v in (("lam", sc.lam), ("k", sc.k), ("n", sc.n), ("p", sc.p), ("far", sc.log10_far),
                                   ("log_u", sc.log_u)):
                        imp[key].append(v)
    far = np.asarray(imp["far"], np.float64)
    tail = calibrate.table(far, max(1, n_trials)) if n_trials else []
    chance = {"trials": n_trials, "with_hypotheses": len(far), "table": tail,
              "agrees_down_to": calibrate.agreement_depth(tail) if tail else None,
              "least_log10_far": float(far.min()) if len(far) else 0.0}
    if n_trials >= MIN_IMPOSTOR_TRIALS:
        f = calibrate.fit(np.asarray(imp["lam"]), np.asarray(imp["k"]), np.asarray(imp["n"]),
                          np.asarray(imp["p"]), n_trials, log_u=np.asarray(imp["log_u"]))
        if f["rms_decades"] is not None:
            fit = dataclasses.replace(fit, far_offset=f["offset"], far_chance_scale=f["chance_scale"])
        chance["fit"] = f
    else:
        chance["fit"] = None
        chance["kept"] = (f"{n_trials} impostor trials resolve the tail only to ~{1.0 / max(n_trials, 1):.0e}: "
                          f"the chance constants in use are kept (need {MIN_IMPOSTOR_TRIALS:,})")

    def frr(p: MatchParams) -> float:
        from glint.match.noise import chi2_pvalue

        acc = []
        for r in rows:
            if r["z2"] is None:
                acc.append(False)
                continue
            pv = chi2_pvalue(r["z2"] * (params.noise_c / p.noise_c) ** 2, r["matched"], p.noise_margin)[0]
            acc.append(r["log10_far"] <= p.log10_far_max and r["matched"] >= p.min_matched and pv >= p.residual_alpha)
        return float(1.0 - np.mean(acc))

    return {"items": len(names), "captures": sum(len(c) for c in items.values()), "frame": list(sizes.pop()),
            "augment": augment, "genuine_pairs": len(rows), "refused_at_enrollment": genuine,
            "noise": noise_fit, "chance": chance,
            "frr_before": frr(params), "frr_after": frr(fit),
            "constants_before": {k: getattr(params, k) for k in CALIBRATED},
            "constants": {k: getattr(fit, k) for k in CALIBRATED},
            "genuine": [{k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()}
                        for r in rows]}
