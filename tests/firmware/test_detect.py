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
SIZES = [(320, 240), (640, 480), (1280, 960), (301, 203), (240, 320)]


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


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "%dx%d" % s)
def test_frame_sizes_are_bit_identical(size):
    w, h = size
    if h > w:  # a portrait sensor
        img = np.ascontiguousarray(np.rot90(_frame("field", 1, (h, w))))
    elif w % 8:  # odd sizes: a crop
        img = np.ascontiguousarray(_frame("field", 2)[:h, :w])
    else:
        img = _frame("field", 1, size)
    det = fw.Detector(w, h, max_spots=100, use_viper=False)
    spots, q, g = det.detect(img.tobytes())
    hd = host_detect(img, max_spots=100)
    assert (spots, q, g) == (hd.spots, hd.quality, hd.guidance)
    assert len(spots) >= 5 * 30


def test_records_are_a_valid_descriptor_spot_field():
    img = _frame("field", 3)
    spots, q, g = fw.Detector(320, 240).detect(img.tobytes())
    recs = descriptor.spots_list(spots)
    assert recs[0][2] == 255
    keys = [(-f, y, x) for x, y, f in recs]
    assert keys == sorted(keys)
    doc = descriptor.make(b"\x01" * 8, 1, "0.1.0", "sim", 320, 240, q, spots, g)
    assert descriptor.decode(descriptor.encode(doc))[descriptor.K_SPOTS] == spots


def _pure_and_viper(img):
    """Detect ``img`` with the pure kernels and with the viper source under the CPython shim; the two
    detections must be equal. Returns both detectors (their buffers) for further checks."""
    kv = load_viper_module()
    frame = bytearray(img.tobytes())
    pure = fw.Detector(img.shape[1], img.shape[0], use_viper=False)
    vip = fw.Detector(img.shape[1], img.shape[0], use_viper=False)
    for name in fw.KERNELS:
        setattr(vip, "_" + name, getattr(kv, "k_" + name))
    assert pure.detect(frame) == vip.detect(frame)
    return pure, vip


@pytest.mark.parametrize("profile,k", [("field", 0), ("harsh", 1), ("bench", 2)])
def test_viper_kernels_equal_pure_twins(profile, k):
    """The viper source under the CPython shim (32-bit wrap, no negative loads); real viper: test_detect_unix.py."""
    pure, vip = _pure_and_viper(_frame(profile, k))
    for name in ("work", "blocks", "kept", "order", "out", "tbuf"):
        assert getattr(pure, name) == getattr(vip, name), name


def test_viper_constants_equal_the_pure_twins():
    kv = load_viper_module()
    names = [n for n in dir(kv) if n.startswith("_") and n[1:2].isupper()]
    assert len(names) > 30
    for n in names:
        assert getattr(kv, n) == getattr(fw, n[1:]), n


def test_viper_shim_wraps_like_32_bit_viper_and_refuses_negative_loads():
    from viper_shim import _Ptr32
    from array import array

    a = array("q", [0])
    p = _Ptr32(a)
    p[0] = 0x7FFFFFFF + 3
    assert a[0] == -(1 << 31) + 2
    with pytest.raises(ValueError):
        p[0]


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
    for w, h in ((4000, 10), (2048, 8), (8, 7)):
        with pytest.raises(ValueError):
            fw.Detector(w, h)
    fw.Detector(2047, 8)  # the descriptor's limit: x * SPOT_SCALE fits u16


@pytest.mark.parametrize("n", [8, 9, 11, 12, 13, 203, 240, 301, 320, 961, 1280, 2047])
def test_background_blocks_are_symmetric_and_match_the_twin(n):
    idx, nb = fw.block_edges(n)
    assert idx == twin.block_edges(n).tolist()
    assert idx[0] == 0 and idx[-1] == nb - 1 and sorted(idx) == idx
    assert [nb - 1 - idx[n - 1 - p] for p in range(n)] == idx  # mirrored pixels, mirrored blocks
    sizes = [idx.count(b) for b in range(nb)]
    assert min(sizes) >= 4 and max(sizes) <= 11, sizes
    if n % fw.BLOCK == 0:
        assert idx == [p // fw.BLOCK for p in range(n)]  # the plain grid


def test_n_brightest_leaves_out_a_tie_across_the_cut():
    """Two identical spots competing for the last place: both left out (no scan-order choice)."""
    pts = [(40 + 30 * (i % 8), 40 + 30 * (i // 8), 120.0 - 2 * i) for i in range(20)]
    img = _synthetic(level=40, noise=0.0, spots=pts, sigma=0.9)
    # spots 4 and 5 made identical copies of each other (same pixels around their peaks)
    x4, y4, x5, y5 = 160, 40, 190, 40
    img[y5 - 3 : y5 + 4, x5 - 3 : x5 + 4] = img[y4 - 3 : y4 + 4, x4 - 3 : x4 + 4]
    full = host_detect(img, max_spots=64)
    keys = sorted(((int(f), x, y) for (x, y), f in zip(full.xy.tolist(), full.flux)), reverse=True)
    assert len(full) == 20
    det = fw.Detector(320, 240, max_spots=5, use_viper=False)
    spots, q, g = det.detect(img.tobytes())
    assert (spots, q, g) == (lambda h: (h.spots, h.quality, h.guidance))(host_detect(img, max_spots=5))
    assert len(spots) == 4 * 5 and q[0] == 20, (len(spots), keys[:6])


def _both(img, max_spots=64):
    """The pure firmware detector's result, checked bit-identical to the host twin's; -> host Detection."""
    h = host_detect(img, max_spots=max_spots)
    spots, q, g = fw.Detector(img.shape[1], img.shape[0], max_spots=max_spots, use_viper=False).detect(img.tobytes())
    assert (spots, q, g) == (h.spots, h.quality, h.guidance)
    return h


def _nearest(det, pts):
    return [float(np.min(np.hypot(det.xy[:, 0] - x, det.xy[:, 1] - y))) for x, y, _ in pts]


def test_broad_spot_gives_one_candidate_near_its_centre():
    """A PSF of sigma 2.5 px with noise on its flat top: one spot each (no fragments), placed by the 5x5 window."""
    rng = np.random.default_rng(3)
    pts = [(20 + 30 * (i % 5) + rng.random(), 20 + 27 * (i // 5) + rng.random(), 45.0) for i in range(20)]
    img = _synthetic(level=30, spots=pts, sigma=2.5, noise=2.0, seed=4, size=(160, 120))
    det = _both(img)
    assert len(det) == len(pts)  # no second candidate on any spot
    err = np.asarray(_nearest(det, pts))
    assert np.sqrt(np.mean(err**2)) < 0.25, err.round(2)
    # the width the quality map gives follows the broad PSF (Q_FOCUS ~ 1477 / sigma^2; the 3x3 window saw ~1.3 px)
    width = (1477 / det.quality[2] - 1 / 12) ** 0.5
    assert 1.8 < width < 3.2, width


def test_faint_spot_beside_a_bright_one_is_kept():
    """A faint spot 4 px from a bright one sits on its wing, with a dip between: both are spots."""
    pts = [(60.0, 60.0, 200.0), (64.0, 60.0, 16.0), (120.0, 30.0, 80.0)]
    det = _both(_synthetic(level=30, spots=pts, sigma=0.9, noise=0.0, size=(160, 120)))
    assert max(_nearest(det, pts)) < 0.3 and len(det) == 3


def test_jpeg_smeared_hot_pixel_rejected_sharp_spot_kept():
    """A hot pixel whose neighbours carry half of its peak (JPEG's smear) is not a spot; a PSF of 0.6 px is."""
    img = _synthetic(level=30, spots=[(60.0, 60.0, 120.0), (100.3, 80.2, 120.0)], sigma=0.6, noise=0.0, size=(160, 120))
    img[60, 60] = 30 + 120
    img[59:62, 59:62] = np.where(img[59:62, 59:62] == 150, 150, 30 + 8)  # 8 neighbours x 8 DN = 0.53 x 120
    det = _both(img)
    assert len(det) == 1 and _nearest(det, [(100.3, 80.2, 0)])[0] < 0.2


def saturated_frame(seed=5, size=(160, 120)):
    """Clipped spots (the wild family's bright end): sigma 0.6-1.5 px at 4-12 x full scale, plateaus of 2-25
    saturated pixels whose 3x3 sums tie, at random sub-pixel phases, beside a few unsaturated ones."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 20.0)
    pts = []
    for i in range(20):
        x, y = 14 + 33 * (i % 5) * w / 170 + rng.random(), 14 + 24 * (i // 5) * h / 120 + rng.random()
        s = (0.6, 0.8, 1.0, 1.2, 1.5)[i % 5]
        a = (1000.0, 3000.0, 600.0, 1000.0)[i // 5]
        img += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s))
        pts.append((x, y, a))
    img += rng.normal(0, 1.5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), pts


def test_saturated_plateaus_give_one_spot_each_placed_by_their_squared_excess():
    """A clipped top has no single maximum (its 3x3 sums tie) and no log-parabola: the 5x5 sums break the
    tie, the 5x5 window's squared excess places it (before: 7 of these 20 lost)."""
    img, pts = saturated_frame()
    assert np.count_nonzero(img >= fw.SAT_LEVEL) > 20 * 4
    det = _both(img)
    err = np.asarray(_nearest(det, pts))
    assert len(det) == len(pts) and err.max() < 0.5 and np.sqrt(np.mean(err**2)) < 0.2, err.round(3)
    _pure_and_viper(img)
