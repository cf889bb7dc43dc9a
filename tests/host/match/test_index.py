"""The vectorised quad coding and the geometric index: same quads as one by one, geometry round trip,
old-format indexes rebuilt."""

from __future__ import annotations

import json

import numpy as np

from glint.match import Database, MatchParams, enroll, identify, synth
from glint.match.codes import build_quads, build_quads_batch
from glint.match.database import entries_of_records, to_record
from glint.match.index import entry_rows, geometry, unpack_geometry


def test_batch_quads_equal_one_by_one(rng):
    params = MatchParams.for_frame(synth.WIDTH, synth.HEIGHT)
    sets = [synth.observe(synth.make_field(rng), rng, max_spots=int(rng.integers(20, 97))).xy for _ in range(12)]
    m = max(len(x) for x in sets)
    xy = np.zeros((len(sets), m, 2))
    for i, x in enumerate(sets):
        xy[i, :len(x)] = x
    owner, q = build_quads_batch(xy, np.array([len(x) for x in sets]), params.band_lo, params.band_hi, 0.92)
    for i, x in enumerate(sets):
        one = build_quads(x, params.band_lo, params.band_hi, 0.92)
        assert np.array_equal(one.idx, q.idx[owner == i])
        assert np.allclose(one.code, q.code[owner == i]) and np.allclose(one.angle, q.angle[owner == i])


def test_index_entries_match_reference_index_quads(fields, rng):
    refs = [enroll(synth.enrollment_captures(f, rng, **synth.SIM_FIELD)) for f in fields[:5]]
    recs = np.stack([to_record(r) for r in refs])
    _, entries = entries_of_records(recs, np.arange(5), refs[0].params, synth.WIDTH, synth.HEIGHT, 20)
    rows = entry_rows(entries)
    for i, r in enumerate(refs):
        assert np.count_nonzero(rows == i) == len(r.index_quads()) > 0


def test_geometry_round_trip(rng):
    params = MatchParams.for_frame(synth.WIDTH, synth.HEIGHT)
    a = rng.uniform(0, 500, (50, 2))
    ang = rng.uniform(-np.pi, np.pi, 50)
    length = rng.uniform(params.band_lo, params.band_hi, 50)
    b = a + np.c_[np.cos(ang), np.sin(ang)] * length[:, None]
    keep = (b[:, 0] > 0) & (b[:, 0] < 640) & (b[:, 1] > 0) & (b[:, 1] < 480)
    a, b, ang, length = a[keep], b[keep], ang[keep], length[keep]
    g_ang, g_len, g_mid = unpack_geometry(geometry(a, b, params, 640, 480), params, 640, 480)
    assert np.all(np.abs((g_ang - ang + np.pi) % (2 * np.pi) - np.pi) < 0.007)
    assert np.allclose(g_len, length, rtol=0.003)
    mid = (a + b) / 2
    assert np.all(np.abs(g_mid - (mid[:, 0] + 1j * mid[:, 1])) < 1.6)


def test_old_format_index_is_rebuilt(fields, rng, tmp_path):
    refs = [enroll(synth.enrollment_captures(f, rng, **synth.SIM_FIELD)) for f in fields[:3]]
    db = Database(tmp_path / "db")
    db.add_many(["a", "b", "c"], refs)
    meta = tmp_path / "db" / "index" / "meta.json"
    meta.write_text(json.dumps({"bits": 20, "entries": 0}))  # format 1 had no "format" key
    again = Database(tmp_path / "db")
    assert json.loads(meta.read_text())["format"] == 3
    assert identify(again, synth.observe(fields[1], rng, **synth.SIM_HARSH)).item == "b"
