"""Frame files: binary PGM (P5, 8-bit) as the device's simulated camera reads it, and PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from glint.errors import UsageError


def pgm_bytes(image: np.ndarray) -> bytes:
    """Binary PGM (P5, maxval 255) of an (H, W) uint8 image."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape
    return b"P5\n%d %d\n255\n" % (w, h) + img.tobytes()


def write_pgm(path: str | Path, image: np.ndarray) -> Path:
    path = Path(path)
    path.write_bytes(pgm_bytes(image))
    return path


def read_pgm(data: bytes) -> np.ndarray:
    """Parse binary 8-bit PGM bytes (comments allowed in the header) -> (H, W) uint8."""
    fields: list[bytes] = []
    i = 0
    n = len(data)
    while len(fields) < 4:
        while i < n and data[i : i + 1].isspace():
            i += 1
        if i < n and data[i : i + 1] == b"#":
            while i < n and data[i : i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        j = i
        while j < n and not data[j : j + 1].isspace():
            j += 1
        if j == i:
            raise UsageError("truncated PGM header", hint="expected 'P5 width height 255'")
        fields.append(data[i:j])
        i = j
    if fields[0] != b"P5" or fields[3] != b"255":
        raise UsageError("not an 8-bit binary PGM (P5, maxval 255)", hint="convert with: glint sim render ... --out x.pgm")
    w, h = int(fields[1]), int(fields[2])
    body = data[i + 1 : i + 1 + w * h]
    if len(body) != w * h:
        raise UsageError(f"PGM pixel data truncated: {len(body)} of {w * h} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(h, w).copy()


def write_frame(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` as PGM (.pgm) or PNG (.png), chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pgm":
        return write_pgm(path, image)
    if suffix == ".png":
        if not cv2.imwrite(str(path), np.ascontiguousarray(image, dtype=np.uint8)):
            raise UsageError(f"cannot write {path}")
        return path
    raise UsageError(f"unsupported frame format {suffix or '(none)'}", hint="use a .pgm or .png file name")
