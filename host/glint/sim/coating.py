"""The coating: a seeded random field of particles on the item, in millimetres.

A coating is what the physical item carries; a counterfeit is a coating of
another seed, and a clone (a copy made by imaging the original and reprinting
it) is the original with every particle displaced by a small error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glint.sim.profile import Profile
from glint.sim.profiles import get_profile


@dataclass(frozen=True)
class Coating:
    """Particles of one item: ``xy`` (N,2) mm relative to the patch centre, ``brightness`` (N,) flux in DN."""

    xy: np.ndarray
    brightness: np.ndarray
    seed: int
    profile: str

    def __len__(self) -> int:
        return len(self.xy)


def _uniform_disc(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    r = radius * np.sqrt(rng.random(n))
    t = rng.random(n) * 2 * np.pi
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


def make_coating(seed: int, profile: str | Profile = "field") -> Coating:
    """Draw the particle field of item ``seed``: same seed and profile, same coating, on any machine."""
    p = get_profile(profile, item_seed=seed)
    rng = np.random.default_rng([0x6C696E74, int(seed)])
    area = np.pi * p.patch_radius_mm**2
    n = int(rng.poisson(p.density_per_mm2 * area))
    xy = _uniform_disc(rng, n, p.patch_radius_mm)
    # Small clusters: a seed particle with a few neighbours at a short, resolvable distance.
    seeds = np.flatnonzero(rng.random(n) < p.cluster_fraction)
    extra = []
    for i in seeds:
        k = int(rng.integers(p.cluster_size[0], p.cluster_size[1] + 1))
        d = rng.uniform(*p.cluster_spacing_mm, size=k)
        a = rng.random(k) * 2 * np.pi
        extra.append(xy[i] + np.column_stack([d * np.cos(a), d * np.sin(a)]))
    if extra:
        xy = np.vstack([xy] + extra)
    inside = np.hypot(xy[:, 0], xy[:, 1]) <= p.patch_radius_mm
    xy = xy[inside]
    flux = p.flux_median * np.exp(rng.normal(0.0, p.flux_sigma_log, len(xy)))
    return Coating(xy=xy, brightness=flux, seed=int(seed), profile=p.name)


def clone_coating(coating: Coating, sigma_px: float, seed: int, profile: str | Profile = "field") -> Coating:
    """A copy of ``coating`` whose particles are each displaced by N(0, sigma_px) pixels at the profile's
    magnification (a randomized profile: the item's own drawn magnification)."""
    p = get_profile(profile, item_seed=coating.seed)
    rng = np.random.default_rng([0x636C6F6E, int(seed)])
    sigma_mm = float(sigma_px) / p.px_per_mm
    xy = coating.xy + rng.normal(0.0, sigma_mm, coating.xy.shape)
    return Coating(xy=xy, brightness=coating.brightness.copy(), seed=coating.seed, profile=coating.profile)
