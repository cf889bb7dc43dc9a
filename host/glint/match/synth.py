"""Synthetic spot sets for tests and large benchmarks (no images, no detector).

A synthetic item is a field of particles (px, in the enrollment frame) with a
brightness; ``observe`` photographs it at a random pose (any rotation, shift, scale
0.85..1.15, mild perspective), adds Gaussian localisation noise, loses a fraction of
the spots and adds spurious ones, and keeps the brightest ``max_spots`` as the device
does. The image-level simulator (glint.sim) is the realistic path; this one is cheap
enough to make a million references.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glint.match.spots import SpotSet

WIDTH, HEIGHT = 640, 480
DENSITY = 80 / (WIDTH * HEIGHT)  # particles per px^2 bright enough to be seen
# Spot statistics measured on the image simulator (glint.sim, 6 items x 2 probes, verify's matched
# pairs): a probe keeps 94% of the reference's spots in view with 5% spurious ones in the field
# profile, 86% / 12% in the harsh one. observe() defaults (30% / 30%) are far harsher than either.
SIM_FIELD = {"drop": 0.06, "spurious": 0.05}
SIM_HARSH = {"drop": 0.14, "spurious": 0.12}


@dataclass
class Field:
    """Particles of one synthetic item: ``xy`` (N,2) px around the frame centre, ``brightness`` (N,)."""

    xy: np.ndarray
    brightness: np.ndarray
    width: int = WIDTH
    height: int = HEIGHT


def make_field(rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT,
               density: float = DENSITY) -> Field:
    """Particles uniform over a disc covering the frame under any rotation and 15% shrink."""
    radius = 0.5 * np.hypot(width, height) * 1.25
    n = rng.poisson(density * np.pi * radius**2)
    r = radius * np.sqrt(rng.random(n))
    t = rng.random(n) * 2 * np.pi
    xy = np.stack([width / 2 + r * np.cos(t), height / 2 + r * np.sin(t)], axis=1)
    return Field(xy, rng.lognormal(0.0, 0.5, n), width, height)


def displace(field: Field, sigma_px: float, rng: np.random.Generator) -> Field:
    """A clone: every particle moved by a Gaussian error of ``sigma_px`` (per axis)."""
    return Field(field.xy + rng.normal(0, sigma_px, field.xy.shape), field.brightness.copy(),
                 field.width, field.height)


def random_pose(rng: np.random.Generator, scale=(0.85, 1.15), shift=40.0, tilt=0.01, rotate=True) -> np.ndarray:
    """A 3x3 homography mapping field px to capture px: rotation, scale, shift and mild perspective.

    ``tilt`` bounds the anisotropy/shear (a fraction) and the projective terms at the frame edge.
    """
    cx, cy = WIDTH / 2, HEIGHT / 2
    th = rng.uniform(0, 2 * np.pi) if rotate else 0.0
    s = rng.uniform(*scale)
    c, si = np.cos(th) * s, np.sin(th) * s
    a = np.array([[c, -si], [si, c]]) @ (np.eye(2) + rng.uniform(-tilt, tilt, (2, 2)) / 2)
    h = np.eye(3)
    h[:2, :2] = a
    h[2, :2] = rng.uniform(-tilt, tilt, 2) / (2 * max(WIDTH, HEIGHT))
    t0 = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    t1 = np.array([[1, 0, cx + rng.uniform(-shift, shift)], [0, 1, cy + rng.uniform(-shift, shift)], [0, 0, 1.0]])
    return t1 @ h @ t0


def apply_h(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    p = np.c_[xy, np.ones(len(xy))] @ h.T
    return p[:, :2] / p[:, 2:3]


def observe(field: Field, rng: np.random.Generator, pose: np.ndarray | None = None, noise: float = 0.1,
            drop: float = 0.3, spurious: float = 0.3, max_spots: int = 64) -> SpotSet:
    """One capture's spots: pose, noise, ``drop`` fraction lost, ``spurious`` fraction added."""
    if pose is None:
        pose = random_pose(rng)
    xy = apply_h(pose, field.xy) + rng.normal(0, noise, field.xy.shape)
    w, h = field.width, field.height
    vis = (xy[:, 0] >= 1) & (xy[:, 0] < w - 1) & (xy[:, 1] >= 1) & (xy[:, 1] < h - 1)
    xy, fl = xy[vis], field.brightness[vis] * rng.lognormal(0, 0.2, vis.sum())
    keep = rng.random(len(xy)) >= drop
    xy, fl = xy[keep], fl[keep]
    # ``spurious`` is the fraction of the kept spots that are not particles of the item.
    n_sp = int(rng.poisson(len(xy) * spurious / (1 - spurious))) if spurious else 0
    sp = np.stack([rng.uniform(1, w - 1, n_sp), rng.uniform(1, h - 1, n_sp)], axis=1)
    xy = np.concatenate([xy, sp])
    fl = np.concatenate([fl, rng.lognormal(0.0, 0.5, n_sp)])
    order = np.argsort(-fl)[:max_spots]
    # The capture's localisation precision is known here: ``noise`` per axis for every spot.
    s = SpotSet(xy[order], fl[order], w, h, "synthetic", sigma=np.full(len(order), float(noise)))
    s.meta = {"pose": pose}
    return s


def enrollment_captures(field: Field, rng: np.random.Generator, n: int = 3, **kw) -> list[SpotSet]:
    """``n`` captures as taken at enrollment: the item placed once (any rotation, nominal scale), small
    jitter between shots. Probes (``observe``) then vary in scale by +-15% relative to the reference."""
    pose = random_pose(rng, scale=(1.0, 1.0))
    return [observe(field, rng, pose=random_pose(rng, scale=(0.99, 1.01), shift=3.0, tilt=0.002, rotate=False) @ pose,
                    **kw) for _ in range(n)]
