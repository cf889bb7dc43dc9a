"""What lies under the virtual scanner's lens: frames rendered with glint.sim, written as /sim files.

The sim board's camera (firmware/glintfw/cam_sim.py) reads ``/sim/lens.pgm`` at
every capture, or plays ``/sim/frames/*.pgm`` in name order when that folder has
frames. The host keeps those files in a directory (the bridge copies it into the
device whenever it changes); this module writes them atomically.

A capture is what a hand-held scanner sees: ``capture_seed`` draws the placement
within the profile's hand-held range (rotation, shift, scale, tilt: glint.sim's
random_pose), the sensor noise, wear and the exposure (EXPOSURE_RANGE: the whole
signal, coating and substrate, scaled by one factor). ``capture_seed=None`` (the
default) means a new seed for every capture (glint.vscanner.server renders the next
one after each capture the device reports); an integer pins that capture, for
reproducible tests.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from glint.errors import UsageError

_log = logging.getLogger(__name__)

LENS_FILE = "lens.pgm"
FRAMES_DIR = "frames"
COUNTERFEIT_SEED_OFFSET = 1_000_003  # a counterfeit is a coating of another seed
EMPTY_LEVEL = 18  # an uncoated surface: dark, with sensor noise only
EMPTY_NOISE = 2.0
EXPOSURE_RANGE = (0.85, 1.18)  # exposure factor per capture (log-uniform): auto-exposure and light vary


@dataclass
class LensSpec:
    """``kind``: "item" (an enrolled item's coating), "counterfeit", "empty" or "frames"."""

    kind: str = "item"
    item_seed: int = 1
    capture_seed: int | None = None  # None: a new capture (placement, noise, exposure) every time
    profile: str = "field"
    frames: str | None = None

    @property
    def pinned(self) -> bool:
        return self.capture_seed is not None

    def with_seed(self, seed: int) -> "LensSpec":
        return replace(self, capture_seed=int(seed))

    @classmethod
    def from_dict(cls, d: dict) -> "LensSpec":
        kind = d.get("lens", d.get("kind", "item"))
        if kind not in ("item", "counterfeit", "empty", "frames"):
            raise UsageError(f"unknown lens {kind!r}", hint="item, counterfeit, empty or frames")
        seed = d.get("capture_seed")
        return cls(kind=kind, item_seed=int(d.get("item_seed", d.get("seed", 1))),
                   capture_seed=None if seed is None else int(seed), profile=str(d.get("profile", "field")),
                   frames=d.get("frames"))


def exposure(capture_seed: int) -> float:
    """The exposure factor of a capture (EXPOSURE_RANGE, log-uniform, drawn from its seed)."""
    lo, hi = EXPOSURE_RANGE
    u = np.random.default_rng([0x6578706F, int(capture_seed)]).random()
    return float(lo * (hi / lo) ** u)


def render(spec: LensSpec) -> np.ndarray:
    """The camera frame (H, W uint8) for ``spec`` (not for kind "frames"; an unpinned spec draws a seed)."""
    from glint import sim

    prof = sim.get_profile(spec.profile)
    cseed: int = spec.capture_seed if spec.capture_seed is not None else secrets.randbits(63)
    if spec.kind == "empty":
        rng = np.random.default_rng(cseed)
        img = rng.normal(EMPTY_LEVEL, EMPTY_NOISE, (prof.height, prof.width))
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    seed = spec.item_seed + (COUNTERFEIT_SEED_OFFSET if spec.kind == "counterfeit" else 0)
    coating = sim.make_coating(seed, prof)
    f = exposure(cseed)
    coating = replace(coating, brightness=coating.brightness * f)
    lit = replace(prof, background=prof.background * f, texture_sigma=prof.texture_sigma * f)
    return sim.capture(coating, lit, seed=cseed).image


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _pgm_of(path: Path) -> bytes:
    from glint.imaging import load_image
    from glint.sim.frames import pgm_bytes

    return pgm_bytes(load_image(path))


def write_lens(sim_dir: str | Path, img: np.ndarray) -> None:
    """Put the frame ``img`` under the lens (atomically: the device reads the old or the new one)."""
    from glint.sim.frames import pgm_bytes

    _atomic_write(Path(sim_dir) / LENS_FILE, pgm_bytes(img))


def apply(sim_dir: str | Path, spec: LensSpec) -> None:
    """Make ``sim_dir`` show ``spec`` to the device (lens.pgm, or frames/ for playback)."""
    from glint.sim.frames import pgm_bytes

    sim_dir = Path(sim_dir)
    sim_dir.mkdir(parents=True, exist_ok=True)
    frames = sim_dir / FRAMES_DIR
    if spec.kind == "frames":
        src = Path(spec.frames or "")
        names = sorted(p for p in src.iterdir() if p.suffix.lower() in (".png", ".pgm")) if src.is_dir() else []
        if not names:
            raise UsageError(f"no PNG/PGM frames in {src}", hint="--frames DIR with *.png or *.pgm")
        staging = sim_dir / (FRAMES_DIR + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for i, p in enumerate(names):
            (staging / f"{i:05d}.pgm").write_bytes(_pgm_of(p))
        shutil.rmtree(frames, ignore_errors=True)
        staging.rename(frames)
        _log.info("lens: playing %d frames from %s", len(names), src)
        return
    shutil.rmtree(frames, ignore_errors=True)
    _atomic_write(sim_dir / LENS_FILE, pgm_bytes(render(spec)))
    _log.debug("lens: %s (item seed %d, capture seed %s)", spec.kind, spec.item_seed,
               spec.capture_seed if spec.pinned else "new")
