"""The detector on the real MicroPython Unix port, beyond test_viper_mpy.py's sizes: rotated and
mirrored frames, the randomized optics family up to 1280x960, a portrait sensor and a real
photograph. Viper kernels = pure kernels (every buffer) = host twin, bit for bit.

The port runs the viper kernels as x86-64 machine code with 64-bit native ints where a board
has 32-bit ones: the kernels keep every value in 31 bits and nothing negative in their arrays
(the Unix port zero-extends a ptr32 load), so both give the same bytes.
"""

from __future__ import annotations

import numpy as np
import pytest
from glinttest import REAL, require_micropython

from glint.imaging import detect as host_detect
from glint.imaging.dihedral import NON_IDENTITY
from glint.sim import capture, get_profile, make_coating

DRIVER = r"""
from glintfw.detect import Detector
dets = {}
def run(path, w, h, n):
    fr = open(path, 'rb').read()
    key = (w, h, n)
    if key not in dets:
        dets[key] = (Detector(w, h, n, use_viper=True), Detector(w, h, n, use_viper=False))
    v, p = dets[key]
    rv = v.detect(fr)
    rp = p.detect(fr)
    same = rv == rp and all(getattr(v, b) == getattr(p, b) for b in ('work', 'blocks', 'kept', 'order', 'out', 'tbuf'))
    return [rv[0].hex(), sorted(rv[1].items()), rv[2], same, v._stats is not p._stats]
"""


def _frames():
    out = []
    base = capture(make_coating(5, "field"), "field", seed=705).image
    out.append(("portrait", np.ascontiguousarray(np.rot90(base)), 64))
    for t in NON_IDENTITY:
        out.append((f"field-{t.name}", np.ascontiguousarray(t.image(base)), 64))
    for k in (1, 4, 10):  # the randomized family: 640x480, 800x600, 1280x960
        prof = get_profile("wild", item_seed=300 + k)
        out.append((f"wild-{k}", capture(make_coating(300 + k, prof), prof, seed=4000 + k).image, 64))
    from test_detect import saturated_frame

    out.append(("saturated", saturated_frame()[0], 64))  # plateaus: the 5x5 tie key, the squared-excess centroid
    if REAL.is_dir():  # where ../shared has the real photographs
        import cv2

        out.append(("real-20ms", cv2.imread(str(REAL / "test_5mp_g100_e20ms.jpg"), cv2.IMREAD_GRAYSCALE), 256))
    return out


FRAMES = _frames()


@pytest.fixture(scope="module")
def unix_port(tmp_path_factory):
    from glint.mpy import UnixMicroPython
    from glint.mpy.wasm import default_mounts

    require_micropython("unix")
    d = tmp_path_factory.mktemp("detect-frames")
    for i, (_, img, _) in enumerate(FRAMES):
        (d / f"{i}.raw").write_bytes(img.tobytes())
    with UnixMicroPython(mounts=default_mounts() + [(d, "/frames")], heap=32 * 1024 * 1024) as mp:
        mp.run(DRIVER)
        yield mp


@pytest.mark.parametrize("i", range(len(FRAMES)), ids=[n for n, _, _ in FRAMES])
def test_viper_equals_pure_equals_host_twin(unix_port, i):
    name, img, n = FRAMES[i]
    h, w = img.shape
    spots, q, g, same, viper = unix_port.eval_json(f"r = run('/frames/{i}.raw', {w}, {h}, {n})", "r")
    assert viper, "the Unix port did not load the viper kernels"
    assert same, f"{name}: viper and pure kernels differ on MicroPython"
    t = host_detect(img, max_spots=n)
    assert bytes.fromhex(spots) == t.spots
    assert {int(k): v for k, v in q} == t.quality and g == t.guidance
