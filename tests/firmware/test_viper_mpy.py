"""The viper kernels executed on a real MicroPython (the Unix port, which has the viper emitter).

On every frame (QVGA, VGA and odd sizes; >= 30 in all) the firmware's Detector runs twice
on the Unix port: with its pure-Python kernels, each call checked against the viper kernel
of the same name on copies of the same arguments (every buffer and the return value must
be bit-identical), and as a board loads it (use_viper None: the viper kernels). Both
results must equal the host twin (glint.imaging.detect). Generic over whatever kernels
glintfw.detect_viper exports (every ``k_*``): each must have a pure twin of that name in
glintfw.detect, be bound on the Detector, and run on every frame.
"""

from __future__ import annotations

import numpy as np
import pytest
from glinttest import require_micropython

from glint.imaging import detect as host_detect
from glint.sim import PROFILES, capture, make_coating

MAX_SPOTS = 64


def _frames():
    """(name, image): 18 QVGA, 3 VGA, 9 odd sizes (rendered at that size, or cropped)."""
    out = []
    for p in ("bench", "field", "harsh"):
        for k in range(6):
            out.append((f"qvga-{p}-{k}", capture(make_coating(40 + k, p), p, seed=500 + k).image))
    for p in ("bench", "field", "harsh"):
        prof = PROFILES[p].at(640, 480)
        out.append((f"vga-{p}", capture(make_coating(60, prof), prof, seed=600).image))
    for k, (w, h) in enumerate(((301, 203), (97, 61), (321, 239), (250, 250), (160, 117))):
        prof = PROFILES["field"].at(w, h)
        out.append((f"odd-{w}x{h}", capture(make_coating(70 + k, prof), prof, seed=700 + k).image))
    big = capture(make_coating(80, PROFILES["harsh"].at(640, 480)), PROFILES["harsh"].at(640, 480), seed=800).image
    for w, h, x0, y0 in ((333, 211, 17, 9), (9, 8, 300, 200), (641 - 2, 479, 1, 0), (127, 403, 250, 40)):
        out.append((f"crop-{w}x{h}", np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])))
    return out


FRAMES = _frames()

CHECK = r"""
import glintfw.detect as D
import glintfw.detect_viper as V
from array import array

KERNELS = sorted(n for n in dir(V) if n.startswith("k_"))


def _copy(a):
    if isinstance(a, array):
        return a[:]  # a copy (MicroPython arrays have no typecode attribute)
    if isinstance(a, (bytes, bytearray, memoryview)):
        return bytearray(a)
    return a


def _same(a, b):
    if isinstance(a, (array, bytes, bytearray, memoryview)):
        return bytes(a) == bytes(b)
    return a == b


def _checked(name, pure, vip, calls, bad):
    def k(*args):
        copies = [_copy(a) for a in args]
        r1 = pure(*args)
        r2 = vip(*copies)
        calls[name] += 1
        diff = [i for i in range(len(args)) if not _same(args[i], copies[i])]
        if r1 != r2 or diff:
            bad.append([name, diff, r1 == r2])
        return r1
    return k


def check(path, w, h, n):
    with open(path, "rb") as f:
        frame = bytearray(f.read())
    pure = D.Detector(w, h, n, use_viper=False)
    bound = {}
    for attr in pure.__dict__:
        for name in KERNELS:
            if getattr(pure, attr) is getattr(D, name, None):
                bound[name] = attr
    calls = {name: 0 for name in KERNELS}
    bad = []
    for name, attr in bound.items():
        setattr(pure, attr, _checked(name, getattr(D, name), getattr(V, name), calls, bad))
    s, q, g = pure.detect(frame)
    r_pure = [s.hex(), sorted(q.items()), g]
    board = D.Detector(w, h, n)  # as a board loads it: viper where the port has the emitter
    uses_viper = [name for name in bound if getattr(board, bound[name]) is getattr(V, name)]
    s, q, g = board.detect(frame)
    r_board = [s.hex(), sorted(q.items()), g]
    return {"kernels": KERNELS, "twins": [k for k in KERNELS if hasattr(D, k)], "bound": sorted(bound),
            "calls": calls, "bad": bad, "uses_viper": sorted(uses_viper), "pure": r_pure, "board": r_board}
"""


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("viper-frames")
    for i, (_, img) in enumerate(FRAMES):
        (d / f"{i}.raw").write_bytes(img.tobytes())
    return d


@pytest.fixture(scope="module")
def unix_port(frames_dir):
    from glint.mpy import UnixMicroPython
    from glint.mpy.wasm import default_mounts

    require_micropython("unix")
    with UnixMicroPython(mounts=default_mounts() + [(frames_dir, "/frames")]) as mp:
        mp.run(CHECK)
        yield mp


def test_enough_frames_of_each_kind():
    kinds = {n.split("-")[0] for n, _ in FRAMES}
    assert len(FRAMES) >= 30 and kinds == {"qvga", "vga", "odd", "crop"}
    assert any(img.shape == (480, 640) for _, img in FRAMES) and any(img.shape[1] % 2 for _, img in FRAMES)


@pytest.mark.parametrize("i", range(len(FRAMES)), ids=[n for n, _ in FRAMES])
def test_viper_kernels_and_detect_bit_identical_on_the_unix_port(unix_port, i):
    name, img = FRAMES[i]
    h, w = img.shape
    r = unix_port.eval_json(f"r = check('/frames/{i}.raw', {w}, {h}, {MAX_SPOTS})", "r")
    assert r["kernels"], "glintfw.detect_viper exports no k_* kernels"
    assert r["twins"] == r["kernels"], "every viper kernel needs a pure twin of the same name in glintfw.detect"
    assert r["bound"] == r["kernels"], (
        f"kernels {sorted(set(r['kernels']) - set(r['bound']))} are not bound on the Detector instance "
        "(this test checks the kernels a Detector calls)")
    assert all(n > 0 for n in r["calls"].values()), f"a kernel was never called by detect(): {r['calls']}"
    assert not r["bad"], f"viper differs from the pure twin (kernel, differing argument indexes, same return): {r['bad']}"
    assert r["uses_viper"] == r["kernels"], "the Unix port must load the viper kernels as a board does"
    assert r["board"] == r["pure"]
    t = host_detect(img, max_spots=MAX_SPOTS)
    assert bytes.fromhex(r["pure"][0]) == t.spots
    assert dict((int(k), v) for k, v in r["pure"][1]) == t.quality and r["pure"][2] == t.guidance
