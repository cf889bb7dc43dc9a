"""The eight symmetries of a rectangular frame (the dihedral group D4) on images and on spot coordinates.

The detector's positions are fixed point (1/SPOT_SCALE px) with pixel centres at
integer multiples of SPOT_SCALE, so every transform maps a position exactly:
mirroring x is ``x' = SPOT_SCALE * (W - 1) - x``, with no half-pixel rounding.
A detector that treats every orientation alike returns, on ``image_fn(img)``,
exactly ``points_fn(its spots on img)`` (glint.imaging.twin; tests/host/test_equivariance.py).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from glint.imaging.twin import SPOT_SCALE


class Transform(NamedTuple):
    name: str
    image: Callable[[np.ndarray], np.ndarray]
    # (xq, yq, W, H) of the source frame -> (xq', yq') in the transformed frame (fixed point)
    points: Callable[[np.ndarray, np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]


def _m(n: int) -> int:
    return SPOT_SCALE * (n - 1)


TRANSFORMS: tuple[Transform, ...] = (
    Transform("identity", lambda a: a, lambda x, y, w, h: (x, y)),
    Transform("rot90", lambda a: np.rot90(a, 1), lambda x, y, w, h: (y, _m(w) - x)),
    Transform("rot180", lambda a: np.rot90(a, 2), lambda x, y, w, h: (_m(w) - x, _m(h) - y)),
    Transform("rot270", lambda a: np.rot90(a, 3), lambda x, y, w, h: (_m(h) - y, x)),
    Transform("flip_x", lambda a: a[:, ::-1], lambda x, y, w, h: (_m(w) - x, y)),
    Transform("flip_y", lambda a: a[::-1, :], lambda x, y, w, h: (x, _m(h) - y)),
    Transform("transpose", lambda a: a.T, lambda x, y, w, h: (y, x)),
    Transform("antitranspose", lambda a: np.rot90(a, 2).T, lambda x, y, w, h: (_m(h) - y, _m(w) - x)),
)
NON_IDENTITY = TRANSFORMS[1:]


def spot_points(spots: bytes) -> np.ndarray:
    """(N, 3) int array of (xq, yq, flux) from descriptor spot records (x:u16be, y:u16be, flux:u8)."""
    r = np.frombuffer(spots, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    return np.column_stack([r[:, 0] * 256 + r[:, 1], r[:, 2] * 256 + r[:, 3], r[:, 4]])


def agreement(spots: bytes, spots_t: bytes, t: Transform, w: int, h: int, tol_q: int = 0) -> dict:
    """How the spots found on a transformed frame agree with the moved spots of the original.

    ``same``: one-to-one pairs within ``tol_q`` (1/SPOT_SCALE px, Chebyshev) with the same flux byte;
    ``near``: pairs within 1 px whatever the flux; ``n``, ``n_t``: the two counts.
    """
    a = spot_points(spots)
    b = spot_points(spots_t)
    xa, ya = t.points(a[:, 0], a[:, 1], w, h)
    moved = np.column_stack([xa, ya, a[:, 2]])

    def pairs(tol: int, flux: bool) -> int:
        used = np.zeros(len(b), bool)
        k = 0
        for p in moved:
            d = np.maximum(np.abs(b[:, 0] - p[0]), np.abs(b[:, 1] - p[1]))
            ok = (d <= tol) & ~used
            if flux:
                ok &= b[:, 2] == p[2]
            if ok.any():
                j = int(np.flatnonzero(ok)[np.argmin(d[ok])])
                used[j] = True
                k += 1
        return k

    return {"n": len(a), "n_t": len(b), "same": pairs(tol_q, True), "near": pairs(SPOT_SCALE, False)}
