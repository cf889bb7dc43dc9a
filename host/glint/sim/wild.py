"""The randomized optics family (profile ``wild``): every item draws its own scanner.

A new scanner model is optics nobody tuned the matcher for. ``item_profile(profile, seed)``
turns the ``wild`` placeholder into one concrete :class:`Profile` per item, drawn from the
item seed over the ranges below (docs/simulator.md). Every capture of that item (enrollment,
probes, clones) uses the same drawn scanner; pose, noise, wear and the defocus of each
capture still vary per capture.

The drawn values that define the evaluation regions (PSF width, signal-to-noise, particles
in view) are kept in ``profile.extras["draw"]``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from glint.sim.profile import Profile

FRAMES = ((320, 240), (640, 480), (800, 600), (1024, 768), (1280, 960))
PX_PER_MM = (40.0, 240.0)        # magnification, log-uniform
PSF_SIGMA_PX = (0.6, 3.0)        # in-focus Gaussian PSF sigma, uniform
DEFOCUS_DISC_PX = (0.0, 2.5)     # defocus disc radius of the scanner, uniform (each capture +-0.2)
PARTICLES_IN_VIEW = (30, 300)    # expected particles inside the frame, log-uniform
PHOTONS = (150.0, 3000.0)        # median photo-electrons per particle, log-uniform
READ_NOISE_E = (1.0, 6.0)        # read noise, electrons rms
BACKGROUND_E = (10.0, 120.0)     # substrate light under the particles, electrons per pixel
PEAK_DN = (40.0, 200.0)          # exposure: a median particle's peak lands here (gain follows)
JPEG_QUALITY = (50, 95)          # or raw (no JPEG) with probability JPEG_NONE
JPEG_NONE = 0.4
WEAR = (0.0, 0.30)


def _disc_fraction_in_frame(radius: float, cx: float, cy: float, w: int, h: int) -> float:
    """Fraction of the frame area covered by a disc (grid estimate, 1 part in ~10^4)."""
    yy, xx = np.mgrid[0:h:max(1, h // 160), 0:w:max(1, w // 160)]
    return float(np.mean((xx - cx) ** 2 + (yy - cy) ** 2 <= radius * radius))


def _draw(base: Profile, seed: int) -> Profile:
    rng = np.random.default_rng([0x77696C64, int(seed)])
    w, h = FRAMES[int(rng.integers(0, len(FRAMES)))]
    ppm = float(math.exp(rng.uniform(math.log(PX_PER_MM[0]), math.log(PX_PER_MM[1]))))
    psf = float(rng.uniform(*PSF_SIGMA_PX))
    disc = float(rng.uniform(*DEFOCUS_DISC_PX))
    n_view = float(math.exp(rng.uniform(math.log(PARTICLES_IN_VIEW[0]), math.log(PARTICLES_IN_VIEW[1]))))
    photons = float(math.exp(rng.uniform(math.log(PHOTONS[0]), math.log(PHOTONS[1]))))
    read_e = float(rng.uniform(*READ_NOISE_E))
    bg_e = float(rng.uniform(*BACKGROUND_E))
    s_eff = math.hypot(psf, disc / 2)
    peak_e = photons / (2 * math.pi * s_eff * s_eff)
    # e- per DN (exposure / ISO): the median peak near the target, the background below 60 DN
    gain = float(np.clip(max(peak_e / rng.uniform(*PEAK_DN), bg_e / 60.0), 0.25, 16.0))
    read = read_e / gain
    jpeg = None if rng.random() < JPEG_NONE else int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    # The coating dot: from a third of the frame's height to well beyond it (a frame filled with
    # particles, like the real photographs); its density gives n_view particles inside the frame.
    radius_px = float(rng.uniform(0.35, 0.8)) * min(w, h)
    frac = _disc_fraction_in_frame(radius_px, (w - 1) / 2, (h - 1) / 2, w, h)
    view_mm2 = frac * w * h / ppm**2
    spacing_px = math.sqrt(frac * w * h / n_view)
    # Clusters: a few neighbours at 1.5-3 PSF widths, resolvable or just not.
    c_lo = max(1.5, 1.5 * math.hypot(psf, disc / 2))
    cluster_px = (c_lo, max(c_lo + 0.5, min(3.0 * math.hypot(psf, disc / 2), 0.6 * spacing_px)))
    draw = {"frame": [w, h], "px_per_mm": ppm, "psf_sigma_px": psf, "defocus_disc_px": disc,
            "particles_in_view": n_view, "photons": photons, "read_noise_e": read_e, "background_e": bg_e, "gain_e_per_dn": gain,
            "jpeg_quality": jpeg, "spacing_px": spacing_px}
    p = replace(
        base,
        width=w, height=h, px_per_mm=ppm,
        patch_radius_mm=radius_px / ppm,
        density_per_mm2=n_view / view_mm2,
        flux_median=photons / gain,
        flux_sigma_log=float(rng.uniform(0.2, 0.8)),  # brightness spread
        cluster_fraction=float(rng.uniform(0.0, 0.15)),
        cluster_size=(1, 3),
        cluster_spacing_mm=(cluster_px[0] / ppm, cluster_px[1] / ppm),
        shift_sigma_px=0.03 * min(w, h), shift_max_px=0.1 * min(w, h),
        scale_range=0.10,
        tilt_max_deg=float(rng.uniform(0.0, 12.0)),
        focal_px=float(w * rng.uniform(1.0, 4.0)),
        psf_sigma_px=psf,
        defocus_sigma_px=(0.0, 0.2),
        defocus_disc_px=(max(0.0, disc - 0.2), min(DEFOCUS_DISC_PX[1], disc + 0.2)),
        background=bg_e / gain,
        vignetting=float(rng.uniform(0.0, 0.5)),
        gradient=float(rng.uniform(0.0, 0.3)),
        texture_sigma=float(rng.uniform(0.0, 3.0)),
        texture_scale_px=float(rng.uniform(2.0, 12.0)),
        gain_e_per_dn=gain,
        read_noise_dn=read,
        hot_pixels=0,
        hot_pixel_rate=float(rng.uniform(0.0, 500.0)),
        dust_specks=int(rng.integers(0, 9)),
        dust_depth=float(rng.uniform(0.2, 0.6)),
        wear_loss=float(rng.uniform(*WEAR)),
        jpeg_quality=jpeg,
        randomized=False,
        extras={"draw": draw, "item_seed": int(seed)},
    )
    return p


def item_profile(profile: Profile, item_seed: int) -> Profile:
    """The concrete scanner item ``item_seed`` of a randomized profile is captured with."""
    if not profile.randomized:
        return profile
    key = (profile.name, int(item_seed))
    p = _CACHE.get(key)
    if p is None:
        if len(_CACHE) > 4096:
            _CACHE.clear()
        p = _CACHE[key] = _draw(profile, int(item_seed))
    return p


_CACHE: dict = {}


def snr_estimate(p: Profile) -> float:
    """Peak signal-to-noise of a median particle of a drawn profile (before vignetting and dust):
    the region variable of the lab's tables."""
    s = math.hypot(p.psf_sigma_px, 0.5 * sum(p.defocus_disc_px) / 2)
    peak_dn = p.flux_median / (2 * math.pi * s * s)
    noise = math.sqrt(p.background / p.gain_e_per_dn + p.read_noise_dn**2 + peak_dn / p.gain_e_per_dn)
    return peak_dn / noise
