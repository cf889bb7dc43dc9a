"""The detector treats every orientation alike: on a rotated or mirrored frame, exactly the moved spots.

Exact in fixed point: pixel centres sit at multiples of SPOT_SCALE, so each of the
7 non-identity symmetries of the frame maps a position to a position with no
rounding (glint.imaging.dihedral), and the detector makes no choice that depends
on scan order or on a side of the frame (glintfw.detect's docstring). So the
tolerance is zero: the same count, the same flux bytes, the same positions.
"""

from __future__ import annotations

import numpy as np
import pytest

from glint.imaging import detect
from glint.imaging.dihedral import NON_IDENTITY, agreement
from glint.sim import capture, get_profile, make_coating

# 42 simulator frames in the default run: 10 of each fixed profile and 12 of the randomized optics family
# (320x240..1280x960; each frame is detected 8 times, ~0.2 s a small frame, 1-2 s a large one); under
# -m slow the rest of the 100 the default run had before (10 more of each profile, 28 of the family) and
# 200 more of the family
SIM = [(p, k) for p in ("bench", "field", "harsh") for k in range(10)] + [("wild", k) for k in range(12)]
SIM_SLOW = [(p, k) for p in ("bench", "field", "harsh") for k in range(10, 20)] + [("wild", k) for k in range(12, 240)]


def _sim_frame(profile: str, k: int) -> np.ndarray:
    prof = get_profile(profile, item_seed=300 + k)
    return capture(make_coating(300 + k, prof), prof, seed=4000 + k).image


def _check(img: np.ndarray, max_spots: int, what: str) -> int:
    h, w = img.shape
    d = detect(img, max_spots=max_spots)
    for t in NON_IDENTITY:
        dt = detect(np.ascontiguousarray(t.image(img)), max_spots=max_spots)
        a = agreement(d.spots, dt.spots, t, w, h, tol_q=0)
        assert a["n"] == a["n_t"] == a["same"], (what, t.name, a)
        assert dt.quality == d.quality, (what, t.name)
    return len(d)


@pytest.mark.parametrize("chunk", range(6))
def test_simulator_frames_equivariant(chunk):
    total = 0
    for profile, k in SIM[chunk::6]:
        total += _check(_sim_frame(profile, k), 64, f"{profile} {k}")
    assert total > 7 * 20  # the frames do have spots


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(10))
def test_more_frames_equivariant(chunk):
    for profile, k in SIM_SLOW[chunk::10]:
        _check(_sim_frame(profile, k), 64, f"{profile} {k}")


def test_saturated_plateaus_equivariant():
    """Clipped tops whose 3x3 sums tie: the 5x5 tie key and the squared-excess centroid favour no side."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for d in (root / "firmware", root / "tests" / "firmware"):  # as tests/firmware/conftest.py sets them up
        if str(d) not in sys.path:
            sys.path.append(str(d))
    from test_detect import saturated_frame

    img = saturated_frame()[0]
    assert _check(img, 64, "saturated") == 20
    assert _check(np.ascontiguousarray(img[:, 1:]), 64, "saturated, odd width") >= 18


def test_real_photographs_equivariant(real_photos):
    import cv2

    files = sorted(real_photos.glob("*.jpg"))
    assert len(files) >= 12
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        assert _check(img, 256, p.name) >= 20, p.name


def test_agreement_counts_a_moved_spot():
    """The check itself can fail: a detector that ignored the transform would not agree."""
    img = _sim_frame("field", 1)
    d = detect(img)
    t = NON_IDENTITY[0]
    a = agreement(d.spots, d.spots, t, img.shape[1], img.shape[0])
    assert a["same"] < a["n"] // 4
