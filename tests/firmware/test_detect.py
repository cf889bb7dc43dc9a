"""The firmware detector under CPython: same bytes as the host twin, viper kernels = pure twins, guidance."""

from __future__ import annotations

import numpy as np
import pytest

import glintcore  # noqa: F401
from glintcore import descriptor, proto
from glintfw import detect as fw

from glint.imaging import detect as host_detect
from glint.imaging import twin
from glint.sim import PROFILES, capture, make_coating
from viper_shim import load_viper_module

FRAMES = [(p, k) for p in ("bench", "field", "harsh") for k in range(6)]


def _frame(profile, k, size=None):
    prof = PROFILES[profile] if size is None else PROFILES[profile].at(*size)
    return capture(make_coating(k, prof), prof, seed=100 + k).image


def test_tuning_constants_match_host_twin():
    for name in twin.TUNING:
        assert getattr(fw, name) == getattr(twin, name), name
    assert fw.LOG2_FRAC == twin.LOG2_FRAC
    assert fw.SPOT_SCALE == descriptor.SPOT_SCALE and fw.SPOT_RECORD == descriptor.SPOT_RECORD


def test_ilog2_matches_host_twin():
    v = np.arange(-2, 70000)
    assert [fw.ilog2_q10(int(x)) for x in v] == twin.ilog2_q10(v).tolist()


@pytest.mark.parametrize("profile,k", FRAMES)
def test_pure_twin_is_bit_identical_to_host_twin(profile, k):
    img = _frame(profile, k)
    det = fw.Detector(img.shape[1], img.shape[0], use_viper=False)
    spots, q, g = det.detect(bytearray(img.tobytes()))
    h = host_detect(img)
    assert spots == h.spots and q == h.quality and g == h.guidance
    assert len(spots) == 5 * min(q[0], 64)


def test_vga_and_odd_sizes_are_bit_identical():
    for img in (_frame("field", 1, (640, 480)), _frame("field", 2)[:203, :301]):
        img = np.ascontiguousarray(img)
        det = fw.Detector(img.shape[1], img.shape[0], max_spots=100, use_viper=False)
        spots, q, g = det.detect(img.tobytes())
        h = host_detect(img, max_spots=100)
        assert (spots, q, g) == (h.spots, h.quality, h.guidance)


def test_records_are_a_valid_descriptor_spot_field():
    img = _frame("field", 3)
    spots, q, g = fw.Detector(320, 240).detect(img.tobytes())
    recs = descriptor.spots_list(spots)
    assert recs[0][2] == 255
    keys = [(-f, y, x) for x, y, f in recs]
    assert keys == sorted(keys)
    doc = descriptor.make(b"\x01" * 8, 1, "0.1.0", "sim", 320, 240, q, spots, g)
    assert descriptor.decode(descriptor.encode(doc))[descriptor.K_SPOTS] == spots


@pytest.mark.parametrize("profile,k", [("field", 0), ("harsh", 1), ("bench", 2)])
def test_viper_kernels_equal_pure_twins(profile, k):
    kv = load_viper_module()
    img = _frame(profile, k)
    frame = bytearray(img.tobytes())
    pure = fw.Detector(320, 240, use_viper=False)
    vip = fw.Detector(320, 240, use_viper=False)
    vip._stats, vip._clip, vip._cands = kv.k_stats, kv.k_clip, kv.k_cands
    assert pure.detect(frame) == vip.detect(frame)
    for name in ("geom", "dhist", "bsum", "acc", "cand"):
        assert getattr(pure, name) == getattr(vip, name), name
    assert kv._BLOCK_SHIFT == fw.BLOCK_SHIFT and kv._SAT_LEVEL == fw.SAT_LEVEL


def test_viper_shim_wraps_like_32_bit_viper():
    from viper_shim import _Ptr32
    from array import array

    a = array("q", [0])
    p = _Ptr32(a)
    p[0] = 0x7FFFFFFF + 1
    assert p[0] == -(1 << 31)


def _synthetic(level=40, spots=(), sigma=0.9, noise=2.0, seed=0, size=(320, 240)):
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), float(level))
    for x, y, a in spots:
        img += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma * sigma))
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _grid(n, amp=60.0):
    rng = np.random.default_rng(n)
    pts = [(20 + 14 * (i % 20) + rng.random(), 20 + 14 * (i // 20) + rng.random(), amp) for i in range(n)]
    return pts


@pytest.mark.parametrize(
    "img,expected",
    [
        (_synthetic(level=4, noise=1.0, spots=_grid(80, 6.0)), proto.GD_TOO_DARK),
        (_synthetic(level=252, noise=1.0), proto.GD_SATURATED),
        (_synthetic(level=40), proto.GD_NO_COATING),
        (_synthetic(level=40, spots=_grid(80), sigma=2.2), proto.GD_OUT_OF_FOCUS),
        (_synthetic(level=40, spots=_grid(12)), proto.GD_TOO_FEW_SPOTS),
        (_synthetic(level=40, spots=_grid(80)), proto.GD_OK),
    ],
)
def test_guidance(img, expected):
    spots, q, g = fw.Detector(320, 240).detect(img.tobytes())
    assert g == expected, (q, proto.GUIDANCE_TEXT[g])
    assert host_detect(img).guidance == expected


def test_rejects_short_frame_and_bad_size():
    with pytest.raises(ValueError):
        fw.Detector(320, 240).detect(bytes(100))
    with pytest.raises(ValueError):
        fw.Detector(4000, 10)
