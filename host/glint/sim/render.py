"""Render a camera frame of a coating: pose, optics, sensor, wear and transport artefacts.

Deterministic: the same coating, profile, seed and pose give the same frame
bit for bit (numpy's PCG64 and OpenCV's JPEG codec are both deterministic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from glint.sim.coating import Coating
from glint.sim.profile import Profile
from glint.sim.profiles import get_profile

RENDER_RADIUS_SIGMAS = 4.0  # a particle's PSF is drawn out to this many sigmas
_erf = np.vectorize(math.erf, otypes=[float])


@dataclass(frozen=True)
class Pose:
    """How the item sits under the lens: rotation (deg), shift (px), scale, tilt (deg) about ``tilt_axis_deg``."""

    rotation: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    tilt: float = 0.0
    tilt_axis_deg: float = 0.0

    def as_dict(self) -> dict:
        return {
            "rotation": self.rotation,
            "shift": list(self.shift),
            "scale": self.scale,
            "tilt": self.tilt,
            "tilt_axis": self.tilt_axis_deg,
        }


@dataclass(frozen=True)
class Capture:
    """A rendered frame and its ground truth (particles whose centre lies inside the frame)."""

    image: np.ndarray  # (H, W) uint8
    truth_xy: np.ndarray  # (M, 2) px, pixel centres at integers
    truth_snr: np.ndarray  # (M,) peak signal over local noise sigma
    truth_flux: np.ndarray  # (M,) integrated signal, DN
    pose: Pose
    noise_sigma: float  # noise sigma at the background level, DN
    psf_sigma: float
    profile: Profile | None = None  # the set-up used (for a randomized profile: the item's drawn optics)

    def truth_json(self) -> dict:
        return {
            "width": int(self.image.shape[1]),
            "height": int(self.image.shape[0]),
            "pose": self.pose.as_dict(),
            "psf_sigma_px": self.psf_sigma,
            "noise_sigma_dn": self.noise_sigma,
            "particles": [
                {"x": round(float(x), 4), "y": round(float(y), 4), "snr": round(float(s), 3), "flux": round(float(f), 2)}
                for (x, y), s, f in zip(self.truth_xy, self.truth_snr, self.truth_flux)
            ],
        }


def random_pose(profile: Profile, rng: np.random.Generator) -> Pose:
    """A hand-held pose: any rotation, placement error (clipped by the guide), +-scale, mild tilt."""
    shift = np.clip(rng.normal(0.0, profile.shift_sigma_px, 2), -profile.shift_max_px, profile.shift_max_px)
    return Pose(
        rotation=float(rng.uniform(0.0, 360.0)),
        shift=(float(shift[0]), float(shift[1])),
        scale=float(1.0 + rng.uniform(-profile.scale_range, profile.scale_range)),
        tilt=float(rng.uniform(0.0, profile.tilt_max_deg)),
        tilt_axis_deg=float(rng.uniform(0.0, 180.0)),
    )


def project(xy_mm: np.ndarray, profile: Profile, pose: Pose) -> np.ndarray:
    """Coating millimetres -> frame pixels (pixel centres at integer coordinates)."""
    a = math.radians(pose.tilt_axis_deg)
    axis = np.array([math.cos(a), math.sin(a)])
    # Tilt foreshortens the coating along the tilt axis by cos(tilt).
    along = xy_mm @ axis
    v = xy_mm + np.outer(along * (math.cos(math.radians(pose.tilt)) - 1.0), axis)
    if profile.focal_px > 0 and pose.tilt:
        # A pinhole camera at stand-off D = focal / magnification: the tilted plane's near side is
        # imaged larger, the far side smaller (a true homography, not only foreshortening).
        depth = along * math.sin(math.radians(pose.tilt))  # mm towards the lens
        v = v / (1.0 - depth * profile.px_per_mm / profile.focal_px)[:, None]
    r = math.radians(pose.rotation)
    rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    v = (v @ rot.T) * (profile.px_per_mm * pose.scale)
    centre = np.array([(profile.width - 1) / 2.0, (profile.height - 1) / 2.0])
    return v + centre + np.asarray(pose.shift)


def disc_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """A uniform disc of ``radius`` px (defocus), pixel-integrated by supersampling; sums to 1."""
    r = int(math.ceil(radius))
    n = (2 * r + 1) * supersample
    c = (np.arange(n) + 0.5) / supersample - (r + 0.5)
    inside = (c[None, :] ** 2 + c[:, None] ** 2) <= radius * radius
    k = inside.reshape(2 * r + 1, supersample, 2 * r + 1, supersample).sum((1, 3)).astype(np.float64)
    return k / k.sum()


def _render_spots(shape, xy: np.ndarray, flux: np.ndarray, sigma: float,
                  disc: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-integrated Gaussian spots, convolved with the defocus ``disc`` kernel when given; also
    each spot's own brightest pixel (for its SNR)."""
    h, w = shape
    img = np.zeros((h, w))
    peaks = np.zeros(len(xy))
    rad = int(math.ceil(RENDER_RADIUS_SIGMAS * sigma)) + 1 + (0 if disc is None else len(disc) // 2)
    offs = np.arange(-rad, rad + 1)
    s2 = sigma * math.sqrt(2.0)
    for i, ((x, y), f) in enumerate(zip(xy, flux)):
        cx, cy = int(round(x)), int(round(y))
        xs, ys = cx + offs, cy + offs
        ix = 0.5 * (_erf((xs + 0.5 - x) / s2) - _erf((xs - 0.5 - x) / s2))
        iy = 0.5 * (_erf((ys + 0.5 - y) / s2) - _erf((ys - 0.5 - y) / s2))
        patch = f * np.outer(iy, ix)
        if disc is not None:
            patch = cv2.filter2D(patch, -1, disc, borderType=cv2.BORDER_CONSTANT)
        peaks[i] = patch.max()
        x0, x1 = max(xs[0], 0), min(xs[-1] + 1, w)
        y0, y1 = max(ys[0], 0), min(ys[-1] + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        img[y0:y1, x0:x1] += patch[y0 - ys[0] : y1 - ys[0], x0 - xs[0] : x1 - xs[0]]
    return img, peaks


def _texture(rng: np.random.Generator, shape, sigma: float, scale: float) -> np.ndarray:
    if sigma <= 0:
        return np.zeros(shape)
    t = rng.normal(0.0, 1.0, shape)
    k = int(2 * math.ceil(2 * scale) + 1)
    t = cv2.GaussianBlur(t, (k, k), scale / 2.0)
    return t * (sigma / max(t.std(), 1e-9))


def capture(coating: Coating, profile: str | Profile = "field", seed: int = 0, pose: Pose | None = None) -> Capture:
    """Photograph ``coating`` with the scanner set-up ``profile``; ``seed`` draws pose, noise and wear."""
    p = get_profile(profile, item_seed=coating.seed)
    rng = np.random.default_rng([0x63617074, int(seed)])
    if pose is None:
        pose = random_pose(p, rng)
    h, w = p.height, p.width
    keep = rng.random(len(coating.xy)) >= p.wear_loss * rng.random()  # wear varies per capture
    xy = project(coating.xy[keep], p, pose)
    flux = coating.brightness[keep] * pose.scale**2  # nearer lens: larger image, more light collected
    sigma = math.hypot(p.psf_sigma_px * pose.scale, rng.uniform(*p.defocus_sigma_px))
    disc = None
    if p.defocus_disc_px[1] > 0:
        radius = rng.uniform(*p.defocus_disc_px) * pose.scale
        disc = disc_kernel(radius) if radius >= 0.25 else None
    spots, peaks = _render_spots((h, w), xy, flux, sigma, disc)

    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - (w - 1) / 2.0) ** 2 + (yy - (h - 1) / 2.0) ** 2) / (((w - 1) / 2.0) ** 2 + ((h - 1) / 2.0) ** 2)
    illum = 1.0 - p.vignetting * r2
    if p.gradient:
        g = rng.uniform(0.0, 2 * math.pi)
        u = ((xx - (w - 1) / 2.0) * math.cos(g) + (yy - (h - 1) / 2.0) * math.sin(g)) / (0.5 * math.hypot(w, h))
        illum = illum * (1.0 + p.gradient * u)
    dust = np.ones((h, w))
    for _ in range(p.dust_specks):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rad = rng.uniform(4.0, 10.0) * (w / 320.0)
        dust *= 1.0 - p.dust_depth * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad * rad))
    texture = _texture(rng, (h, w), p.texture_sigma, p.texture_scale_px)
    signal = (p.background + texture + spots) * illum * dust

    electrons = rng.poisson(np.clip(signal, 0, None) * p.gain_e_per_dn)
    frame = electrons / p.gain_e_per_dn + rng.normal(0.0, p.read_noise_dn, (h, w))
    hot = p.hot_pixels + (int(rng.poisson(p.hot_pixel_rate * w * h / 1e6)) if p.hot_pixel_rate else 0)
    for _ in range(hot):
        frame[rng.integers(0, h), rng.integers(0, w)] += rng.uniform(60.0, 200.0)
    img = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    if p.jpeg_quality is not None:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(p.jpeg_quality)])
        img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)

    # Ground truth: particles whose centre is in the frame; SNR of each spot's own brightest pixel.
    ix = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
    iy = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
    gain_here = (illum * dust)[iy, ix]
    bg_here = (p.background * illum * dust)[iy, ix]
    noise = np.sqrt(bg_here / p.gain_e_per_dn + p.read_noise_dn**2)
    snr = peaks * gain_here / noise
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < h - 0.5)
    noise0 = math.sqrt(p.background / p.gain_e_per_dn + p.read_noise_dn**2)
    return Capture(
        image=img,
        truth_xy=xy[inside],
        truth_snr=snr[inside],
        truth_flux=(flux * gain_here)[inside],
        pose=pose,
        noise_sigma=noise0,
        psf_sigma=sigma,
        profile=p,
    )
