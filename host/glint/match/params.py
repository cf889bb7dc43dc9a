"""Matching parameters: every tolerance and limit in one place, with why it has its value.

The defaults suit the scanners' frames (about 64 spots kept per capture); the quad
scale band follows from the frame size, so a database stores its own ``MatchParams``
and every reference and probe in it is coded with the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

# Captures keep at most this many spots (descriptor default); the scale band of the
# quads is chosen so that a quad's circle holds a few spots at this density.
NOMINAL_SPOTS = 64
# Decision: the operating point of the issue (false-accept probability <= 1e-9).
LOG10_FAR_MAX = -9.0
# Version of the chance model's form (glint.match.calibrate). Databases store their MatchParams;
# constants stored for another form are replaced by this version's calibration when read.
FAR_MODEL = 3  # 3: chance code matches from the code volume, mid-p tail, coverage p (no fitted constant)
FAR_CONSTANTS = ("far_offset", "far_chance_scale")
# The fields a scanner calibration sets (glint.match.scanner fits them; enroll and Database take them).
CALIBRATED = ("noise_c", "noise_floor", "far_offset", "far_chance_scale", "far_model")
CODE_EPS_MAX = 0.03  # widest code tolerance (noisy optics): beyond it chance code matches swamp the seeds
CODE_EPS_NOISE_K = 3.0  # code tolerance for noisy captures: 3 sigma_pair / mid-band |AB| (field: below 0.009)


@dataclass(frozen=True)
class MatchParams:
    """Tolerances of the quad codes, the verification and the decision.

    ``band_lo``/``band_hi`` (px) bound the backbone length |AB| of reference quads;
    probes use the band widened by ``scale_tol`` so a capture at 0.85..1.15 scale still
    forms the same quads.
    """

    band_lo: float = 104.0
    band_hi: float = 173.0
    scale_tol: float = 1.2          # scale +-15% plus perspective margin
    inner_margin: float = 0.04      # C,D at least this (in |AB| units) inside the circle on AB
    code_eps: float = 0.009         # max per-coordinate code difference of the same quad (99.9% at 2% tilt)
    verify_codes: int = 300         # quads kept per reference for 1:1 verify
    index_codes: int = 128          # at most this many quads per reference in the 1:N index
    index_region: float = 0.16      # index quads: code x_C below this (~30% of all quads; probes look up only these)
    index_eps: float = 0.0045       # code tolerance of index lookups (~75% of genuine quads at a sixteenth of verify's cost)
    seed_radius: float = 2.0        # px: a seed transform (from one quad) predicts spots near it this well
    seed_slope: float = 0.006       # ... plus this much per px of distance from the quad (perspective, seed error)
    seed_noise_k: float = 5.0       # ... or, where the pair's localisation noise S is larger, k S (1 + 2 d / band_lo)
    refine_radius: float = 1.5      # px: after the homography refit, or refine_noise_k x the pair's noise
    refine_noise_k: float = 5.0
    max_hypotheses: int = 6         # transform clusters scored per probe/reference pair (genuine: the largest)
    min_matched: int = 8            # never accept on fewer matched spots than this
    # The clone gate (glint.match.noise): the refit residuals against the pair's expected localisation
    # noise. Rejected when P(residuals this large | genuine, noise up to noise_margin x the model's)
    # < residual_alpha: the gate's false-reject probability where the model holds.
    residual_alpha: float = 1e-3
    noise_margin: float = 1.25
    # Localisation noise model sigma_i = sqrt((noise_c s / SNR_i)^2 + noise_floor^2) px per axis
    # (glint.match.noise; calibrated per scanner model with glint lab calibrate).
    noise_c: float = 2.2
    noise_floor: float = 0.03
    log10_far_max: float = LOG10_FAR_MAX
    # Chance model (glint.match.calibrate): from first principles, no constant fitted; a scanner
    # calibration may set log10_far = far_offset + log10 FAR with p scaled by far_chance_scale where
    # its impostor trials show otherwise. (0, 1): the model itself (docs/matching.md).
    far_offset: float = 0.0
    far_chance_scale: float = 1.0
    far_model: int = FAR_MODEL  # which form of the model the two constants belong to

    @classmethod
    def for_frame(cls, width: int, height: int, **over) -> "MatchParams":
        """Parameters for a frame size: band = [1.5, 2.5] x the mean spot spacing."""
        spacing = math.sqrt(width * height / NOMINAL_SPOTS)
        over.setdefault("band_lo", round(1.5 * spacing, 2))
        over.setdefault("band_hi", round(2.5 * spacing, 2))
        return cls(**over)

    @classmethod
    def for_spots(cls, xy, width: int, height: int, **over) -> "MatchParams":
        """Parameters for a coating seen as these spots: band = [1.5, 2.5] x their mean spacing
        (spots may fill only part of the frame, e.g. a printed dot of coating)."""
        import cv2
        import numpy as np

        xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
        if len(xy) < 8:
            return cls.for_frame(width, height, **over)
        area = float(cv2.contourArea(cv2.convexHull(xy)))
        spacing = math.sqrt(max(area, 1.0) / len(xy))
        over.setdefault("band_lo", round(1.5 * spacing, 2))
        over.setdefault("band_hi", round(2.5 * spacing, 2))
        return cls(**over)

    @property
    def noise(self):
        """The localisation noise model of these parameters (glint.match.noise.NoiseModel)."""
        from glint.match.noise import NoiseModel

        return NoiseModel(c=self.noise_c, floor=self.noise_floor)

    def with_noise(self, sigma: float) -> "MatchParams":
        """These parameters with the code tolerance widened for a pair noise ``sigma`` (px per axis):
        a code coordinate moves by about 1.7 sigma / |AB|; at mid-band, 1.8 of those (a genuine pair
        shares hundreds of quads, one matched is a seed), where that exceeds ``code_eps``."""
        mid = 0.5 * (self.band_lo + self.band_hi)
        eps = min(CODE_EPS_MAX, max(self.code_eps, CODE_EPS_NOISE_K * float(sigma) / mid))
        if eps <= self.code_eps:
            return self
        return replace(self, code_eps=round(eps, 5), index_eps=round(eps * self.index_eps / self.code_eps, 5))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MatchParams":
        known = set(cls.__dataclass_fields__)
        d = {k: v for k, v in d.items() if k in known}
        if d.get("far_model") != FAR_MODEL:
            for k in FAR_CONSTANTS + ("far_model",):
                d.pop(k, None)
        return cls(**d)
