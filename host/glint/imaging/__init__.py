"""Host-side imaging: load frames, and the host twin of the device's spot detector.

``detect(image)`` returns a Detection whose ``spots`` bytes, ``quality`` and
``guidance`` are bit-identical to firmware/glintfw/detect.py on the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glint.errors import UsageError
from glint.imagefiles import HEAD_BYTES, is_jpeg
from glint.imaging import twin
from glint.imaging.twin import MAX_SPOTS_DEFAULT
from glintcore.descriptor import MAX_DIM, SPOT_RECORD, SPOT_SCALE
from glintcore.proto import GD_OK

__all__ = ["Detection", "detect", "load_image", "SPOT_SCALE", "SPOT_RECORD"]


@dataclass(frozen=True)
class Detection:
    """Spots of one frame: ``spots`` in the descriptor record format, plus decoded views."""

    spots: bytes
    xy: np.ndarray  # (N, 2) float px (exactly the fixed-point values / SPOT_SCALE)
    flux: np.ndarray  # (N,) float, the u8 record flux
    quality: dict
    guidance: int
    width: int
    height: int
    # (N,) each spot's 3x3 sum over the measured noise of a 3x3 sum (the detector's significance statistic;
    # the host computes it, a descriptor does not carry it)
    significance: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.guidance == GD_OK

    def __len__(self) -> int:
        return len(self.spots) // SPOT_RECORD


def detect(image: np.ndarray, max_spots: int = MAX_SPOTS_DEFAULT) -> Detection:
    """Detect spots in an (H, W) uint8 grayscale image exactly as the scanner firmware does."""
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise UsageError(f"detect needs an (H, W) uint8 grayscale image, got {img.dtype} {img.shape}")
    if img.shape[0] < 8 or img.shape[1] < 8 or max(img.shape) > MAX_DIM:
        raise UsageError(f"frame size {img.shape[1]}x{img.shape[0]} out of range", hint=f"8..{MAX_DIM} pixels a side")
    spots, q, g, (x, y, f, sig) = twin.detect_raw(img, max_spots)
    return Detection(
        spots=spots,
        xy=np.column_stack([x, y]).astype(float) if len(x) else np.zeros((0, 2)),
        flux=np.asarray(f, dtype=float),
        quality=q,
        guidance=g,
        width=int(img.shape[1]),
        height=int(img.shape[0]),
        significance=np.asarray(sig, dtype=float),
    )


def load_image(path: str | Path, any_colour: bool = False) -> np.ndarray:
    """Read an 8-bit grayscale PNG or PGM, or a JPEG photograph -> (H, W) uint8; anything else is a
    one-line UsageError. A JPEG (a camera's photograph, often colour-encoded even of a grey scene)
    is decoded to grayscale, as ``any_colour`` does for every format (the lab's capture folders)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such image: {path}")
    if path.suffix.lower() == ".pgm":
        from glint.sim.frames import read_pgm

        return read_pgm(path.read_bytes())
    with open(path, "rb") as f:
        jpeg = is_jpeg(f.read(HEAD_BYTES))
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if any_colour or jpeg else cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UsageError(f"cannot read image {path}", hint="expected an 8-bit grayscale PNG or PGM, or a JPEG")
    if img.ndim != 2 or img.dtype != np.uint8:
        raise UsageError(f"{path} is not 8-bit grayscale ({img.dtype}, shape {img.shape})",
                         hint="convert it to 8-bit grayscale first")
    return img
