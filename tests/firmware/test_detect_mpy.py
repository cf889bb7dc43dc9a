"""The detector on real MicroPython (the Unix port with its viper kernels, and WebAssembly with the pure ones):
the sim board's camera reads a PGM, the bytes match CPython on both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from glinttest import MICROPYTHON_RUNTIMES, require_micropython

from glint.imaging import detect as host_detect
from glint.sim import capture, make_coating
from glint.sim.frames import pgm_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=MICROPYTHON_RUNTIMES)
def mp_sim(request, tmp_path_factory):
    from glint.mpy import open_micropython
    from glint.mpy.wasm import default_mounts

    require_micropython(request.param)
    simdir = tmp_path_factory.mktemp("simfs")
    frames = simdir / "frames"
    frames.mkdir()
    caps = [capture(make_coating(k, "field"), "field", seed=200 + k) for k in range(2)]
    caps.append(capture(make_coating(9, "harsh"), "harsh", seed=209))
    for i, c in enumerate(caps):
        (frames / f"{i:03d}.pgm").write_bytes(pgm_bytes(c.image))
    (simdir / "entropy.bin").write_bytes(bytes(range(64)))
    mounts = default_mounts() + [
        (REPO / "boards" / "sim" / "board.py", "/board.py"),
        (REPO / "boards" / "sim" / "board.json", "/board.json"),
        (simdir, "/sim"),
    ]
    with open_micropython(request.param, mounts=mounts) as mp:
        mp.run("import sys\nsys.path.insert(0, '/')")
        yield mp, caps


def test_same_descriptor_bytes_on_micropython_as_cpython(mp_sim):
    mp, caps = mp_sim
    mp.run(
        "import board, gc\nfrom glintfw.detect import Detector\n"
        "cam = board.make_camera()\nbuf = bytearray(cam.width * cam.height)\n"
        "det = Detector(cam.width, cam.height)\n"
    )
    for cap in caps:
        got = mp.eval_json("cam.capture(buf)\ns, q, g = det.detect(buf)", "[s.hex(), q, g]")
        h = host_detect(cap.image)
        assert bytes.fromhex(got[0]) == h.spots
        assert {int(k): v for k, v in got[1].items()} == h.quality
        assert got[2] == h.guidance


def test_detect_allocation_does_not_grow_with_the_frame(mp_sim):
    mp, caps = mp_sim
    used = mp.eval_json(
        "cam.frame_index = 0\ncam.capture(buf)\ngc.collect()\na0 = gc.mem_alloc()\ns, q, g = det.detect(buf)\n"
        "a1 = gc.mem_alloc()",
        "a1 - a0",
    )
    # the result bytes (<= 64 * 5) plus a few small objects; the frame is 76800 bytes
    assert 0 < used < 1024, used


def test_pgm_reader_and_entropy_on_micropython(mp_sim):
    mp, _ = mp_sim
    out = mp.eval_json(
        "import board\nfrom glintfw import pgm\n"
        "f = open('/sim/bad.pgm', 'wb'); f.write(b'P5\\n4 4\\n65535\\n' + bytes(32)); f.close()\n"
        "try:\n    pgm.read_into('/sim/bad.pgm', bytearray(16), 4, 4); err = ''\n"
        "except Exception as e:\n    err = str(e)\n"
        "e1 = board.entropy(8); e2 = board.entropy(8)",
        "[err, e1.hex(), e2.hex(), board.load_config()['id']]",
    )
    assert "maxval" in out[0]
    assert out[1] == bytes(range(8)).hex() and out[2] == bytes(range(8, 16)).hex()
    assert out[3] == "sim"
