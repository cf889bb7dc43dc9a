"""glint.imaging: the host twin agrees with the firmware bit for bit, loads frames, and meets the field targets."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from glint.errors import UsageError
from glint.imaging import detect, load_image
from glint.sim import capture, make_coating, write_frame
from glint.sim.evaluate import Score, score

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


@pytest.fixture(scope="module")
def fw_detect():
    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))
    import glintcore  # noqa: F401
    from glintfw import detect as fw

    return fw


@pytest.mark.parametrize("profile", ["bench", "field", "harsh"], ids=lambda p: "profile-" + p)
def test_host_twin_bit_identical_on_many_frames(profile, fw_detect):
    det = fw_detect.Detector(320, 240, use_viper=False)
    for k in range(10):
        img = capture(make_coating(50 + k, profile), profile, seed=500 + k).image
        spots, q, g = det.detect(img.tobytes())
        h = detect(img)
        assert (h.spots, h.quality, h.guidance) == (spots, q, g), (profile, k)
        assert np.allclose(h.xy * 32, np.round(h.xy * 32))


def test_field_accuracy_targets():
    """Recall >= 95 % of SNR >= 5 particles, precision >= 97 %, RMSE <= 0.15 px (isolated particles)."""
    s = Score()
    for k in range(8):
        cap = capture(make_coating(k, "field"), "field", seed=1000 + k)
        s.add(score(detect(cap.image, max_spots=256).xy, cap))
    assert s.detectable > 600
    assert s.recall >= 0.95, s.as_dict()
    assert s.precision >= 0.97, s.as_dict()
    assert s.rmse <= 0.15, s.as_dict()


def test_load_image_png_and_pgm(tmp_path):
    img = capture(make_coating(1), "field", seed=1).image
    for name in ("a.png", "a.pgm"):
        write_frame(tmp_path / name, img)
        assert np.array_equal(load_image(tmp_path / name), img)


def test_load_image_rejects_bad_input(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    rgb = tmp_path / "rgb.png"
    import cv2

    cv2.imwrite(str(rgb), np.zeros((8, 8, 3), np.uint8))
    for p in (tmp_path / "missing.png", tmp_path / "x.png", rgb):
        with pytest.raises(UsageError):
            load_image(p)
    (tmp_path / "b.pgm").write_bytes(b"P2\n2 2\n255\n1 2 3 4")
    with pytest.raises(UsageError):
        load_image(tmp_path / "b.pgm")
    with pytest.raises(UsageError):
        detect(np.zeros((10, 10), np.float32))
