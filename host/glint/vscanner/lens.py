"""What lies under the virtual scanner's lens: frames rendered with glint.sim, written as /sim files.

The sim board's camera (firmware/glintfw/cam_sim.py) reads ``/sim/lens.pgm`` at
every capture, or plays ``/sim/frames/*.pgm`` in name order when that folder has
frames. The host keeps those files in a directory (the bridge copies it into the
device whenever it changes); this module writes them atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glint.errors import UsageError

_log = logging.getLogger(__name__)

LENS_FILE = "lens.pgm"
FRAMES_DIR = "frames"
COUNTERFEIT_SEED_OFFSET = 1_000_003  # a counterfeit is a coating of another seed
EMPTY_LEVEL = 18  # an uncoated surface: dark, with sensor noise only
EMPTY_NOISE = 2.0


@dataclass
class LensSpec:
    """``kind``: "item" (an enrolled item's coating), "counterfeit", "empty" or "frames"."""

    kind: str = "item"
    item_seed: int = 1
    capture_seed: int = 0
    profile: str = "field"
    frames: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "LensSpec":
        kind = d.get("lens", d.get("kind", "item"))
        if kind not in ("item", "counterfeit", "empty", "frames"):
            raise UsageError(f"unknown lens {kind!r}", hint="item, counterfeit, empty or frames")
        return cls(kind=kind, item_seed=int(d.get("item_seed", d.get("seed", 1))),
                   capture_seed=int(d.get("capture_seed", 0)), profile=str(d.get("profile", "field")),
                   frames=d.get("frames"))


def render(spec: LensSpec) -> np.ndarray:
    """The camera frame (H, W uint8) for ``spec`` (not for kind "frames")."""
    from glint import sim

    prof = sim.get_profile(spec.profile)
    if spec.kind == "empty":
        rng = np.random.default_rng(spec.capture_seed)
        img = rng.normal(EMPTY_LEVEL, EMPTY_NOISE, (prof.height, prof.width))
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    seed = spec.item_seed + (COUNTERFEIT_SEED_OFFSET if spec.kind == "counterfeit" else 0)
    coating = sim.make_coating(seed, prof)
    return sim.capture(coating, prof, seed=spec.capture_seed).image


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
    _log.info("lens: %s (item seed %d, capture seed %d)", spec.kind, spec.item_seed, spec.capture_seed)
