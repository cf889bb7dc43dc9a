"""The vectorised quad coding and the geometric index: same quads as one by one, geometry round trip,
old-format indexes rebuilt."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from glint.match import Database, MatchParams, enroll, identify, synth
from glint.match.codes import build_quads, build_quads_batch
from glint.match.database import entries_of_records, to_record
from glint.match.index import (
    INDEX_FORMAT,
    SUB_SHIFT,
    CodeIndex,
    bucket_of,
    entry_rows,
    fill_region,
    fingerprint_of,
    geometry,
    index_cell_keys,
    index_halves,
    pack,
    unpack_geometry,
)


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
        assert np.count_nonzero(rows == i) == len(r.index_quads(fill=True)) >= len(r.index_quads()) > 0


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
    assert json.loads(meta.read_text())["format"] == INDEX_FORMAT == 4
    assert identify(again, synth.observe(fields[1], rng, **synth.SIM_HARSH)).item == "b"


def test_widened_lookup_finds_every_code_within_its_box(tmp_path):
    """hits(widen=k) returns every entry whose code lies within k x index_eps of the probe code on each
    axis (the half-cell filter never drops one), and widen 1 what it always did."""
    params = MatchParams.for_frame(synth.WIDTH, synth.HEIGHT)
    r = np.random.default_rng(7)
    n = 4000
    ref = r.uniform(0.05, 0.9, (n, 4))
    keys = index_cell_keys(ref, params)
    low = index_halves(ref, params).astype(np.uint64) << np.uint64(SUB_SHIFT)
    idx = CodeIndex(tmp_path, params)
    bits = 20  # few buckets shared: fingerprint collisions rare
    idx.write_base(bucket_of(keys, bits), pack(np.arange(n), low, fingerprint_of(keys, bits)), bits)
    eps = params.index_eps
    for widen in (1, 2):
        probe = ref + r.uniform(-widen * eps, widen * eps, ref.shape) * 0.999
        e, qi = idx.hits(probe, widen)
        found = set(zip(qi.tolist(), entry_rows(e).tolist()))
        assert all((i, i) in found for i in range(n))
        # What the fingerprint lets through aside, hits lie within the box plus the half-cell granularity.
        near = np.all(np.abs(ref[entry_rows(e)] - probe[qi]) <= (widen + 1) * eps + 1e-12, axis=1)
        assert near.mean() > 0.95
    one, q1 = idx.hits(probe[:50])
    two, q2 = idx.hits(probe[:50], 2)
    assert set(zip(q1.tolist(), one.tolist())) <= set(zip(q2.tolist(), two.tolist()))


def test_sparse_references_fill_their_cap_dense_ones_do_not_change(fields, rng):
    ref = enroll(synth.enrollment_captures(fields[0], rng, **synth.SIM_FIELD))
    core = ref.index_quads()
    assert len(ref.index_quads(fill=True)) == len(core) == ref.params.index_codes  # at the cap: core only

    def capped(n):
        p = dataclasses.replace(ref.params, index_codes=n)
        return type(ref)(ref.xy, ref.flux, ref.support, ref.width, ref.height, p, ref.captures, ref.info,
                         ref.sigma, ref.noise_scale)

    sparse = capped(10_000)  # a cap the core region does not reach: the fill band tops it up
    core, full = sparse.index_quads(), sparse.index_quads(fill=True)
    assert len(core) < len(full)
    assert {tuple(x) for x in core.idx} <= {tuple(x) for x in full.idx}
    assert np.all(full.code[:, 0] < fill_region(ref.params)) and np.any(full.code[:, 0] >= ref.params.index_region)
    mid = capped(len(core) + 5)
    assert len(mid.index_quads(fill=True)) == len(core) + 5
