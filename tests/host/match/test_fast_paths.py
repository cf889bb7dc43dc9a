"""The closed-form refit and the cheaper probe coding give the answers of the slow forms they replace."""

import cv2
import numpy as np

from glint.match import synth
from glint.match.codes import (box_keys, build_quads, cell_keys, code_table, match_codes, probe_circle, probe_quads,
                               reference_quads)
from glint.match.params import MatchParams
from glint.match.verify import fit_homography, hull_edges, mutual_pairs, sq_dist


def test_fit_homography_recovers_a_mild_perspective():
    rng = np.random.default_rng(4)
    h = np.array([[0.98, -0.17, 40.0], [0.16, 1.01, -25.0], [2e-5, -1e-5, 1.0]])
    src = rng.uniform(0, 640, (60, 2))
    dst = cv2.perspectiveTransform(src[None], h)[0]
    fit = fit_homography(src, dst)
    assert np.allclose(fit, h, rtol=1e-7, atol=1e-9)
    # With noise it agrees with OpenCV's least-squares fit to far below the residual gate (0.2 px).
    noisy = dst + rng.normal(0, 0.1, dst.shape)
    ref, _ = cv2.findHomography(src, noisy, 0)
    ours = cv2.perspectiveTransform(src[None], fit_homography(src, noisy))[0]
    theirs = cv2.perspectiveTransform(src[None], ref)[0]
    assert np.abs(ours - theirs).max() < 0.01
    polished = cv2.perspectiveTransform(src[None], fit_homography(src, noisy, polish=True))[0]
    assert np.abs(polished - theirs).max() < 0.002  # the same minimiser as its Levenberg-Marquardt


def test_fit_homography_degenerate_points_give_none():
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    assert fit_homography(pts, pts) is None


def test_sq_dist_and_mutual_pairs():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0, 640, (30, 2)), rng.uniform(0, 640, (25, 2))
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(2)
    assert np.allclose(sq_dist(a, b), d2, atol=1e-6)
    near = b[:10] + 0.3
    pairs = mutual_pairs(near, b, 1.0)
    assert pairs.tolist() == [[i, i] for i in range(10)]


def test_hull_edges_inside_test():
    pts = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    e = hull_edges(cv2.convexHull(pts))
    inside = lambda p: (e[:, 0] * p[0] + e[:, 1] * p[1] + e[:, 2]).min()
    assert inside((5, 5)) == 5.0 and inside((12, 5)) == -2.0


def test_code_table_is_the_stable_sort():
    rng = np.random.default_rng(6)
    xy = synth.observe(synth.make_field(rng), rng).xy
    p = MatchParams.for_frame(synth.WIDTH, synth.HEIGHT)
    q = probe_quads(xy, p)
    t = code_table(q, p)
    keys = cell_keys(q.code, p)
    order = np.argsort(keys, kind="stable")
    assert np.array_equal(t.order, order) and np.array_equal(t.keys, keys[order])
    assert np.array_equal(t.keys[t.start], t.cells) and t.count.sum() == len(q)


def test_probe_circle_keeps_every_quad_a_reference_code_can_match():
    """The probe's circle is only as large as the code tolerance needs: a probe coded with a much
    larger circle finds exactly the same matches against a reference."""
    rng = np.random.default_rng(7)
    p = MatchParams.for_frame(synth.WIDTH, synth.HEIGHT)
    for _ in range(4):
        f = synth.make_field(rng)
        ref = reference_quads(synth.observe(f, rng).xy, p)
        xy = synth.observe(f, rng, pose=synth.random_pose(rng)).xy
        small = probe_quads(xy, p)
        big = build_quads(xy, p.band_lo / p.scale_tol, p.band_hi * p.scale_tol, 1.3)
        assert probe_circle(p) < 1.0 and len(small) < len(big)
        keys = box_keys(ref.code, p).ravel()
        order = np.argsort(keys, kind="stable")
        boxes = (keys[order], order // 16)
        ri_s, pj_s = match_codes(ref, boxes, code_table(small, p), p)
        ri_b, pj_b = match_codes(ref, boxes, code_table(big, p), p)
        assert len(ri_s) > 0
        got = sorted(zip(ri_s.tolist(), map(tuple, small.idx[pj_s].tolist())))
        want = sorted(zip(ri_b.tolist(), map(tuple, big.idx[pj_b].tolist())))
        assert got == want


def test_build_quads_is_the_definition():
    """Every quad (A, B backbone in the band, C and D inside the circle), in the order of the full
    N x N pair matrix's row-major scan, canonical, from a plain loop over the definition."""
    import itertools

    r = np.random.default_rng(3)
    xy = r.uniform(0, 150, (40, 2))
    lo, hi, f = 30.0, 70.0, 0.9
    want = []
    for i, j in itertools.combinations(range(len(xy)), 2):
        d2 = float(((xy[i] - xy[j]) ** 2).sum())
        if not lo * lo <= d2 <= hi * hi:
            continue
        m = (xy[i] + xy[j]) / 2
        inside = [k for k in range(len(xy)) if k not in (i, j) and ((xy[k] - m) ** 2).sum() < d2 * f * f / 4]
        for c, d in itertools.combinations(inside, 2):
            za, zb = complex(*xy[i]), complex(*xy[j])
            wc, wd = (complex(*xy[c]) - za) / (zb - za), (complex(*xy[d]) - za) / (zb - za)
            a, b = i, j
            if wc.real + wd.real > 1.0:
                wc, wd, a, b = 1 - wc, 1 - wd, j, i
            if wc.real > wd.real:
                wc, wd, c, d = wd, wc, d, c
            want.append((a, b, c, d, wc.real, wc.imag, wd.real, wd.imag))
    q = build_quads(xy, lo, hi, f)
    assert len(q) == len(want) > 50
    assert q.idx.tolist() == [list(w[:4]) for w in want]
    assert np.allclose(q.code, [w[4:] for w in want], atol=1e-12)
