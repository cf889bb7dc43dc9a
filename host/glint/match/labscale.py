"""The lab at scale: impostor trials by the hundred thousand over a profile (the randomized family).

``glint lab eval`` renders, enrolls and scores in one go and keeps nothing but its report; a run
of a million impostor trials takes hours on a shared machine and must survive being stopped.
Here each stage is cached in the run directory and a stopped run resumes where it stopped:

1. **images** (``images/block-NNNN.npz``, the render cache) and **items** (``items/block-NNNN.npz``):
   each item's enrollment captures and probes rendered once by the simulator and run through the
   host detector, exactly as ``lab eval`` does (the same seeds: the same items); the items kept as
   spot sets (positions, fluxes, frame, quality map). Another detector detects again from the images.
2. **references**: every item enrolled once from its cached captures (as ``lab eval`` does: each
   item of a randomized profile its own parameters); refused items keep their reason. Not cached:
   enrollment is the matcher's decision, and it is cheap beside rendering.
3. **trials** (``trials/chunk-NNNNN.npz``): every probe (of an enrolled item or not: a coating
   nobody enrolled is an impostor too) against every other item's reference, each with the whole
   verify decision: the probe coded with that reference's parameters (once per parameter group),
   the references sharing a quad code found by :class:`glint.match.lab.CodeSieve` (a pair without
   one has no hypothesis, and verify rejects it with log10_far 0), the chance model's half on the
   others, and for a pair beyond chance the refit and the clone gate (``verify_prepared``). The
   genuine probes of the enrolled items are all verified against their own references first
   (``trials/genuine.npz``), so that a stopped run's FRR covers every item.

Each directory carries a fingerprint of the code it was made with (simulator and detector for
the items; the matcher too for the trials): a run made with other code is refused, named, so
that a resumed run never mixes two matchers. ``run`` with a ``deadline`` stops starting chunks
then; run it again with the same arguments to go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glint.errors import MatchError
from glint.match import calibrate
from glint.match.codes import ORDER_BITS, CodeTable, Quads, cell_keys, code_table, gather_ranges
from glint.match.lab import (
    _WORK,
    REGION_AXES,
    CodeSieve,
    LabConfig,
    _enroll_item,
    _pool_map,
    _randomized,
    item_region,
    param_groups,
)
from glint.match.params import MatchParams
from glint.match.reference import Reference
from glint.match.spots import SpotSet, spots_from_image
from glint.match.verify import Probe, chance_codes, prepare, score_prepared, verify_prepared

log = logging.getLogger(__name__)

FORMAT = 1  # of the cached images and items
TRIALS_FORMAT = 4  # 2: the genuine probes verified apart (trials/genuine.npz); 3: each row's lambda (column 11);
                   # 4: each row's step position log u (column 12, calibrate.step_position)
TAIL_THRESHOLDS = (-1.0, -2.0, -3.0, -4.0, -5.0, -6.0)
SMALL_GROUP = 4  # parameter groups this small score each reference directly (the sieve would cost as much)


@dataclass(frozen=True)
class ScaleConfig:
    profile: str = "wild"
    items: int = 200
    probes: int = 4
    seed: int = 0
    block: int = 8    # items rendered per cached block (a worker's unit of rendering)
    chunk: int = 8    # probes per trial chunk (a worker's unit of trials; the unit of resuming)
    captures_as_probes: bool = False  # every item's enrollment captures are impostor probes too (not genuine ones)

    def lab(self) -> LabConfig:
        return LabConfig(self.profile, self.items, self.probes, 0, self.seed, False, 1)


def _sources_digest(modules: tuple[str, ...]) -> str:
    """sha256 over the source files of these packages / modules (sorted paths)."""
    import importlib

    h = hashlib.sha256()
    for name in modules:
        mod = importlib.import_module(name)
        path = Path(mod.__file__ or "")
        files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            h.update(str(f.relative_to(path.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


# What rendering and detection run (the simulator, the host detector and the glintcore modules it uses).
ITEM_CODE = ("glint.sim", "glint.imaging", "glint.match.spots", "glintcore.descriptor", "glintcore.guidance",
             "glintcore.proto")
TRIAL_CODE = ITEM_CODE + ("glint.match",)
SIM_CODE = ("glint.sim",)  # what the cached images depend on (a detector change only detects again)


def _check_stamp(d: Path, stamp: dict, fresh_hint: str) -> None:
    """Write ``d/stamp.json`` if absent, else refuse when it differs from ``stamp``."""
    d.mkdir(parents=True, exist_ok=True)
    f = d / "stamp.json"
    if f.exists():
        try:
            old = json.loads(f.read_text())
        except ValueError:
            old = None
        if old != stamp:
            diff = sorted(k for k in stamp if not isinstance(old, dict) or old.get(k) != stamp[k])
            raise MatchError(f"{d}: made with another {', '.join(diff) or 'format'} than this run",
                             hint=fresh_hint)
        return
    f.write_text(json.dumps(stamp, indent=1) + "\n")


# -- spot sets on disk -------------------------------------------------------------------------------

def _pack(sets: list[SpotSet], prefix: str, out: dict) -> None:
    out[f"{prefix}_n"] = np.array([len(s) for s in sets], np.int64)
    out[f"{prefix}_xy"] = np.concatenate([s.xy for s in sets]) if sets else np.zeros((0, 2))
    out[f"{prefix}_flux"] = np.concatenate([s.flux for s in sets]) if sets else np.zeros(0)
    out[f"{prefix}_frame"] = np.array([(s.width, s.height) for s in sets], np.int64).reshape(-1, 2)
    out[f"{prefix}_meta"] = np.array(json.dumps([_meta_out(s.meta) for s in sets], default=_plain))


def _plain(v):
    """numpy values in a spot set's meta as JSON (lists, numbers)."""
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} in a spot set's meta")


def _meta_out(meta: dict) -> dict:
    q = meta.get("quality")
    m = {k: v for k, v in meta.items() if k != "quality"}
    if q is not None:
        m["quality"] = [[int(k), int(v)] for k, v in q.items()]
    return m


def _unpack(z, prefix: str) -> list[SpotSet]:
    n, xy, flux, frame = z[f"{prefix}_n"], z[f"{prefix}_xy"], z[f"{prefix}_flux"], z[f"{prefix}_frame"]
    metas = json.loads(str(z[f"{prefix}_meta"]))
    out, at = [], 0
    for c, (w, h), m in zip(n, frame, metas):
        if "quality" in m:
            m["quality"] = {int(k): int(v) for k, v in m["quality"]}
        out.append(SpotSet(xy[at:at + c].copy(), flux[at:at + c].copy(), int(w), int(h), meta=m))
        at += c
    return out


def _pack_images(images: list[np.ndarray], out: dict) -> None:
    out["img_shape"] = np.array([im.shape for im in images], np.int64).reshape(-1, 2)
    out["img_data"] = np.concatenate([im.ravel() for im in images]) if images else np.zeros(0, np.uint8)


def _unpack_images(z) -> list[np.ndarray]:
    out, at = [], 0
    for h, w in z["img_shape"]:
        out.append(z["img_data"][at:at + h * w].reshape(h, w))
        at += h * w
    return out


def _save(path: Path, out: dict, compressed: bool = True) -> None:
    tmp = path.with_suffix(".tmp.npz")
    (np.savez_compressed if compressed else np.savez)(tmp, **out)
    os.replace(tmp, path)


def _render_block(job) -> int:
    """Items [start, stop): their images rendered by the simulator (``images/``, kept: the render
    cache) or read back from there, then run through the host detector into one block of spot sets."""
    from glint.match.lab import _item_images

    cfg, b, path, img_path = job
    stop = min(cfg.items, (b + 1) * cfg.block)
    if img_path.exists():
        with np.load(img_path, allow_pickle=False) as z:
            seeds, per = [int(v) for v in z["coating_seed"]], [tuple(int(x) for x in v) for v in z["counts"]]
            images, render_cpu = _unpack_images(z), float(z["cpu_seconds"])
    else:
        cpu0 = time.process_time()
        lcfg = cfg.lab()
        seeds, per, images = [], [], []
        for i in range(b * cfg.block, stop):
            c, caps, probes = _item_images(lcfg, i)
            seeds.append(c.seed)
            per.append((len(caps), len(probes)))
            images.extend(caps + probes)
        render_cpu = time.process_time() - cpu0
        img: dict = {"item": np.arange(b * cfg.block, stop, dtype=np.int64), "coating_seed": np.array(seeds, np.int64),
                     "counts": np.array(per, np.int64).reshape(-1, 2), "cpu_seconds": np.float64(render_cpu)}
        _pack_images(images, img)
        _save(img_path, img, compressed=False)  # noisy 8-bit frames: zlib saves little and costs CPU
    cpu1 = time.process_time()
    caps_all: list[SpotSet] = []
    probes_all: list[SpotSet] = []
    at = 0
    for nc, npr in per:
        caps_all.extend(spots_from_image(im) for im in images[at:at + nc])
        probes_all.extend(spots_from_image(im) for im in images[at + nc:at + nc + npr])
        at += nc + npr
    out: dict = {"item": np.arange(b * cfg.block, b * cfg.block + len(seeds), dtype=np.int64),
                 "coating_seed": np.array(seeds, np.int64), "counts": np.array(per, np.int64).reshape(-1, 2)}
    _pack(caps_all, "cap", out)
    _pack(probes_all, "probe", out)
    detect_cpu = time.process_time() - cpu1
    out["cpu_seconds"] = np.float64(render_cpu + detect_cpu)
    out["render_cpu_seconds"] = np.float64(render_cpu)
    out["detect_cpu_seconds"] = np.float64(detect_cpu)
    _save(path, out)
    return b


@dataclass
class Item:
    index: int
    coating_seed: int
    captures: list[SpotSet]
    probes: list[SpotSet]
    render_cpu_seconds: float = 0.0  # this item's share of its block's rendering and detection


def render_items(cfg: ScaleConfig, out_dir: Path, jobs: int = 1) -> list[Item]:
    """Every item's captures and probes, rendered once (``out_dir/items``) and read back."""
    d, di = out_dir / "items", out_dir / "images"
    common = {"format": FORMAT, "profile": cfg.profile, "seed": cfg.seed, "probes": cfg.probes, "block": cfg.block}
    _check_stamp(di, dict(common, simulator=_sources_digest(SIM_CODE)),
                 "give another --out, or delete its images/ and items/ to render the items again")
    _check_stamp(d, dict(common, **{"simulator and detector": _sources_digest(ITEM_CODE)}),
                 "give another --out, or delete its items/ to detect the spots again (from the cached images)")
    blocks = math.ceil(cfg.items / cfg.block)
    todo = [(cfg, b, d / f"block-{b:04d}.npz", di / f"block-{b:04d}.npz") for b in range(blocks)
            if not (d / f"block-{b:04d}.npz").exists()]
    if todo:
        log.info("detecting %d of %d item blocks (%d to render)", len(todo), blocks,
                 sum(not t[3].exists() for t in todo))
        _pool_map(_render_block, todo, jobs)
    items: list[Item] = []
    for b in range(blocks):
        with np.load(d / f"block-{b:04d}.npz", allow_pickle=False) as z:
            caps, probes = _unpack(z, "cap"), _unpack(z, "probe")
            share = (float(z["cpu_seconds"]) if "cpu_seconds" in z.files else 0.0) / max(1, len(z["item"]))
            ci = pi = 0
            for i, seed, (nc, npr) in zip(z["item"], z["coating_seed"], z["counts"]):
                if i >= cfg.items:
                    break
                items.append(Item(int(i), int(seed), caps[ci:ci + nc], probes[pi:pi + npr], share))
                ci += nc
                pi += npr
    return items


# -- enrollment --------------------------------------------------------------------------------------

def _enroll_worker(i: int):
    cfg, params, items = _WORK["cfg"], _WORK["params"], _WORK["items"]
    it = items[i]
    _, ref, _, why = _enroll_item(cfg, params, it.index, (None, it.captures, it.probes))
    return ref, why


def enroll_items(cfg: ScaleConfig, items: list[Item], jobs: int = 1) -> tuple[list[Reference | None], list[str]]:
    """Each item enrolled from its cached captures as ``lab eval`` enrolls it (None and the reason
    where refused). A profile that is not randomized takes the first enrolled item's parameters
    for all, as ``lab eval`` does."""
    lcfg = cfg.lab()
    params = None
    refs: list[Reference | None] = []
    whys: list[str] = []
    start = 0
    if not _randomized(lcfg):
        while params is None and start < len(items):
            it = items[start]
            _, ref, _, why = _enroll_item(lcfg, None, it.index, (None, it.captures, it.probes))
            refs.append(ref)
            whys.append(why or "")
            start += 1
            params = None if ref is None else ref.params
    _WORK.update(cfg=lcfg, params=params, items=items)
    try:
        rest = _pool_map(_enroll_worker, list(range(start, len(items))), jobs)
    finally:
        _WORK.clear()
    for ref, why in rest:
        refs.append(ref)
        whys.append(why or "")
    if params is not None:  # one scanner: every reference with the first one's parameters (lab eval)
        refs = [r if r is None else Reference(r.xy, r.flux, r.support, r.width, r.height, params, r.captures, r.info,
                                              r.sigma, r.noise_scale) for r in refs]
    return refs, whys


# -- a probe coded for many parameter groups at once ----------------------------------------------

LHS_TOL = 1e-12  # of 3 (max x^2 + max y^2): far above any rounding of build_quads' 3-term product
PAIR_CHUNK = 4096  # backbone pairs per circle-test block (bounds the (pairs, spots) arrays)


class ProbeCoder:
    """One probe's quads for every parameter group from a single enumeration, each exactly the
    :func:`glint.match.verify.prepare` of that group (the same quads in the same order, the same
    code table, hull and noise), at a fraction of coding it once per group.

    ``prepare`` forms, for the probe band [band_lo / scale_tol, band_hi x scale_tol], every backbone
    pair and every two spots inside the circle on it (radius factor from the code tolerance), and
    drops a pair with more than MAX_GROUP spots inside. Here the pairs of the union of the groups'
    bands and the spots inside the largest circle are enumerated once, in the same order; a group's
    quads are those whose backbone (its squared length, the very number ``build_quads`` compares) is
    in its band and whose C and D pass its circle test, less the pairs crowded in its circle. The
    circle test's left side is a 3-term matrix product whose last bits may depend on the shape of the
    product: where it lies within LHS_TOL of a group's threshold (never seen; about one entry in 10^10)
    that group is coded by ``prepare`` itself. Quads' codes, lengths and angles are computed with
    ``build_quads``' own element-wise steps on the same values, so they are bit-identical
    (tests/host/match/test_labscale.py checks every field against ``prepare``)."""

    def __init__(self, spots: SpotSet, params: list[MatchParams]):
        self.spots = spots
        self.fallbacks = 0
        self._hull: tuple | None = None
        self._sigma: dict = {}
        self._keys: dict = {}
        self._lengths: tuple = (np.zeros(0), None)
        self.ok = len(spots) >= 4 and len(params) > 0
        if self.ok:
            self._enumerate(params)

    # the superset ------------------------------------------------------------------------------
    def _enumerate(self, params: list[MatchParams]) -> None:
        from glint.match.codes import MAX_GROUP, _pairs_in_rows, probe_circle, spot_pairs

        x, y, z, iu, ju, d2 = spot_pairs(self.spots.xy)  # as build_quads starts
        n = len(x)
        los = [p.band_lo / p.scale_tol for p in params]
        his = [p.band_hi * p.scale_tol for p in params]
        rfs = [probe_circle(p) for p in params]
        lo, hi = min(los), max(his)
        band = np.flatnonzero((d2 >= lo * lo) & (d2 <= hi * hi))
        self.tol = LHS_TOL * 3.0 * (float(np.max(x * x)) + float(np.max(y * y)))
        rmax, rmin = max(rfs), min(rfs)
        rhs = np.stack([x, y, x * x + y * y])
        pq, cq, dq, lc, ld, crowd_rows = [], [], [], [], [], {}
        for s0 in range(0, len(band), PAIR_CHUNK):
            bsel = band[s0:s0 + PAIR_CHUNK]
            ii, jj = iu[bsel], ju[bsel]
            mx, my = (x[ii] + x[jj]) / 2, (y[ii] + y[jj]) / 2
            lhs = np.stack([-2.0 * mx, -2.0 * my, np.ones(len(ii))], axis=1) @ rhs
            thr_max = d2[bsel] * (rmax * rmax / 4.0) - mx * mx - my * my
            thr_min = d2[bsel] * (rmin * rmin / 4.0) - mx * mx - my * my
            inside = lhs < (thr_max + self.tol)[:, None]
            rows = np.arange(len(ii))
            inside[rows, ii] = False
            inside[rows, jj] = False
            surely = lhs < (thr_min - self.tol)[:, None]
            surely[rows, ii] = False
            surely[rows, jj] = False
            counts = inside.sum(1)
            gone = surely.sum(1) > MAX_GROUP  # crowded in every group's circle: no group forms them
            inside[gone] = False
            counts[gone] = 0
            for r in np.flatnonzero(counts > MAX_GROUP):  # crowded in some circles only: kept to count
                row = lhs[r].copy()
                row[ii[r]] = row[jj[r]] = np.inf
                crowd_rows[s0 + int(r)] = row
            ke = np.flatnonzero(inside) % n
            if len(ke) < 2:
                continue
            p, c, d = _pairs_in_rows(counts, ke)
            pq.append(p + s0)
            cq.append(c)
            dq.append(d)
            lc.append(lhs[p, c])
            ld.append(lhs[p, d])
        self.n_pairs = len(band)
        if pq:
            p, c, d = np.concatenate(pq), np.concatenate(cq), np.concatenate(dq)
            self.lhs_c, self.lhs_d = np.concatenate(lc), np.concatenate(ld)
        else:
            p = c = d = np.zeros(0, np.int64)
            self.lhs_c = self.lhs_d = np.zeros(0)
        self.q_start = np.searchsorted(p, np.arange(len(band) + 1))  # quads are grouped by pair, in order
        self.crowd_rows = crowd_rows
        self.crowd_list = np.array(sorted(crowd_rows), np.int64)
        ii, jj = iu[band], ju[band]
        self.pair_d2 = d2[band]
        self.pair_mx, self.pair_my = (x[ii] + x[jj]) / 2, (y[ii] + y[jj]) / 2
        # build_quads' codes, step by step on the same values.
        a, b = ii[p], jj[p]
        za = z[a]
        ab = z[b] - za
        wc = (z[c] - za) / ab
        wd = (z[d] - za) / ab
        flip = (wc.real + wd.real) > 1.0
        wc = np.where(flip, 1 - wc, wc)
        wd = np.where(flip, 1 - wd, wd)
        a, b = np.where(flip, b, a), np.where(flip, a, b)
        swap = wc.real > wd.real
        wc, wd = np.where(swap, wd, wc), np.where(swap, wc, wd)
        c, d = np.where(swap, d, c), np.where(swap, c, d)
        code = np.empty((len(p), 4))
        code[:, 0], code[:, 1], code[:, 2], code[:, 3] = wc.real, wc.imag, wd.real, wd.imag
        vec = z[b] - z[a]
        idx = np.empty((len(p), 4), np.int32)
        idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3] = a, b, c, d
        self.quads = Quads(idx, code, np.abs(vec), np.angle(vec))

    # one group ----------------------------------------------------------------------------------
    def _select(self, params: MatchParams) -> np.ndarray | None:
        """Indices (ascending) of the superset quads ``params``' probe_quads forms (None: a circle
        test too close to call)."""
        from glint.match.codes import MAX_GROUP, probe_circle

        lo, hi = params.band_lo / params.scale_tol, params.band_hi * params.scale_tol
        rf = probe_circle(params)
        pd2 = self.pair_d2
        pairs = np.flatnonzero((pd2 >= lo * lo) & (pd2 <= hi * hi))
        thr = pd2[pairs] * (rf * rf / 4.0) - self.pair_mx[pairs] * self.pair_mx[pairs] \
            - self.pair_my[pairs] * self.pair_my[pairs]
        if self.crowd_rows:
            keep = np.ones(len(pairs), bool)
            for k in np.flatnonzero(np.isin(pairs, self.crowd_list)):
                row = self.crowd_rows[int(pairs[k])]
                if np.any(np.abs(row - thr[k]) <= self.tol):
                    return None
                keep[k] = int(np.sum(row < thr[k])) <= MAX_GROUP
            pairs, thr = pairs[keep], thr[keep]
        q, owner = gather_ranges(self.q_start[pairs], self.q_start[pairs + 1])
        t = thr[owner]
        lc, ld = self.lhs_c[q], self.lhs_d[q]
        if np.any(np.abs(lc - t) <= self.tol) or np.any(np.abs(ld - t) <= self.tol):
            return None
        formed = (lc < t) & (ld < t)
        # The group's quads per backbone pair (a pair's quads all have its length): chance_codes' run-length
        # list of the quads' sorted lengths, without sorting the quads (verify.Probe.length_counts).
        per_pair = np.bincount(owner[formed], minlength=len(pairs))
        live = np.flatnonzero(per_pair)
        plen = self.quads.length.take(self.q_start.take(pairs.take(live)))
        order = plen.argsort()
        cum = np.zeros(len(live) + 1, np.int64)
        np.cumsum(per_pair.take(live).take(order), out=cum[1:])
        self._lengths = (plen.take(order), cum)
        return q[formed]

    def prepare(self, params: MatchParams) -> Probe:
        """``glint.match.verify.prepare(spots, params)``, from the superset: the code table holds the
        group's quads only, each named by its index in the superset (``quads``, which matching reads
        only through the table), so that no quad is copied."""
        if not self.ok:
            return prepare(self.spots, params)
        sel = self._select(params)
        if sel is None or len(self.quads) >= 1 << ORDER_BITS:
            self.fallbacks += 1
            return prepare(self.spots, params)
        area, edges = self._hull_of()
        if len(sel) == 0:  # as build_quads: no quads (matching tests the table's quads for none)
            q = Quads(np.zeros((0, 4), np.int32), np.zeros((0, 4)), np.zeros(0), np.zeros(0))
            return Probe(self.spots, q, code_table(q, params), area, edges, self._sigma_of(params), params)
        keys = self._keys_for(params)
        # code_table's one sort of (cell key, quad) packed in an int64; the superset's quad order is the group's.
        packed = np.sort((keys[sel] << ORDER_BITS) | sel)
        keys = packed >> ORDER_BITS
        start = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if len(keys) else np.zeros(0, np.int64)
        count = np.diff(np.append(start, len(keys)))
        table = CodeTable(self.quads, keys, packed & ((1 << ORDER_BITS) - 1), keys[start], start, count)
        probe = Probe(self.spots, self.quads, table, area, edges, self._sigma_of(params), params)
        probe.lengths, probe.length_counts = self._lengths  # _select's, for chance_codes
        return probe

    def _keys_for(self, params: MatchParams) -> np.ndarray:
        """Cell keys of every superset quad at ``params``' code tolerance (computed once per tolerance)."""
        keys = self._keys.get(params.code_eps)
        if keys is None:
            keys = self._keys[params.code_eps] = cell_keys(self.quads.code, params)
        return keys

    def _hull_of(self):
        if self._hull is None:
            import cv2

            from glint.match.verify import hull_edges, spread_area

            spots = self.spots
            if len(spots) < 3:
                self._hull = (spread_area(spots), None)
            else:
                hull = cv2.convexHull(spots.xy.astype(np.float32))
                self._hull = (spread_area(spots, hull), hull_edges(hull))
        return self._hull

    def _sigma_of(self, params: MatchParams):
        key = (params.noise_c, params.noise_floor)
        s = self._sigma.get(key)
        if s is None:
            s = self._sigma[key] = self.spots.spot_sigma(params.noise)
        return s


# -- trials ------------------------------------------------------------------------------------------

def _trial_chunk(job) -> dict | None:
    """Probes [start, stop) of the run against every reference: writes ``path``; None after the deadline."""
    c, start, stop, path = job
    w = _WORK
    if w["deadline"] is not None and time.time() > w["deadline"]:
        return None
    t0, cpu0 = time.perf_counter(), time.process_time()
    refs, probes, probe_item = w["refs"], w["probes"], w["probe_item"]
    groups, ref_of_item = w["groups"], w["ref_of_item"]
    rows = []
    trials = 0
    lam_all = 0.0  # the chance model's expected chance code matches over every trial (sum of lambda) ...
    hit_all = 0.0  # ... and pairs with one (sum of 1 - exp(-lambda)), beside the hypotheses seen
    # The model's own tail per probe: a trial reaches log10_far <= t with probability min(10^t, P(H > 0))
    # (a pair whose chance code match is rarer than 10^t reaches t whenever it has one, never otherwise).
    tt = np.array(TAIL_THRESHOLDS)
    analytic = np.zeros((stop - start, len(tt)))
    for j in range(start, stop):
        spots, own = probes[j], int(probe_item[j])
        own_ref = ref_of_item.get(own)
        trials += len(refs) - (own_ref is not None)
        coder = ProbeCoder(spots, [g[0] for g in groups]) if len(groups) > 1 else None
        coded: dict = {}
        for gparams, members, sieve in groups:
            pr = coded.get(gparams)
            if pr is None:
                pr = coded[gparams] = prepare(spots, gparams) if coder is None else coder.prepare(gparams)
            local = np.arange(len(members)) if sieve is None else sieve.refs_for(pr)
            lam = np.array([chance_codes(refs[int(r)], pr) for r in members if int(r) != own_ref])
            lam_all += float(lam.sum())
            hit_all += float(-np.expm1(-lam).sum())
            if len(lam):
                analytic[j - start] += np.minimum(10.0 ** (tt - gparams.far_offset)[None, :],
                                                  -np.expm1(-lam)[:, None]).sum(0)
            for loc in local:
                r = int(members[loc])
                if r == own_ref:
                    continue
                sc = score_prepared(refs[r], pr)
                if not sc.hypotheses:
                    continue
                match, matched, rp = 0, -1, math.nan
                if sc.log10_far <= refs[r].params.log10_far_max:
                    # Beyond chance: verify's refit and clone gate decide, as verify itself does.
                    res = verify_prepared(refs[r], pr, sc)
                    match, matched = int(res.match), res.matched
                    rp = math.nan if res.residual_p is None else res.residual_p
                rows.append((j, r, sc.hypotheses, sc.log10_tail, sc.k, sc.n, sc.p, sc.log10_far, match, matched, rp,
                             sc.lam, sc.log_u))
    out: dict = {"rows": np.array(rows, np.float64).reshape(-1, 13),
           "trials": np.int64(trials), "lambda_sum": np.float64(lam_all), "lambda_hit_sum": np.float64(hit_all),
           "analytic": analytic, "seconds": np.float64(time.perf_counter() - t0),
           "cpu_seconds": np.float64(time.process_time() - cpu0), "chunk": np.int64(c)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **out)
    os.replace(tmp, path)
    return {"chunk": c, "trials": trials, "cpu_seconds": float(out["cpu_seconds"])}


def _genuine_worker(j: int) -> tuple:
    """Probe ``j`` verified against its own item's reference (verify itself)."""
    from glint.match.verify import verify

    r = _WORK["ref_of_item"][int(_WORK["probe_item"][j])]
    res = verify(_WORK["refs"][r], _WORK["probes"][j])
    return (j, r, int(res.match), res.log10_far, res.matched, math.nan if res.residual_p is None else res.residual_p)


def _groups(refs: list[Reference]) -> list[tuple]:
    groups = []
    for gp, ix in param_groups(refs):
        sieve = None if len(ix) <= SMALL_GROUP else CodeSieve([refs[i] for i in ix], gp)
        groups.append((gp, ix, sieve))
    return groups


def run_trials(cfg: ScaleConfig, items: list[Item], refs: list[Reference | None], out_dir: Path, jobs: int = 1,
               deadline: float | None = None) -> dict:
    """Every probe against every other item's reference, in chunks of ``cfg.chunk`` probes
    (``out_dir/trials``; chunks already there are kept: the run resumes). Returns the merged trials."""
    d = out_dir / "trials"
    kept = [r for r in refs if r is not None]
    ref_item = [it.index for it, r in zip(items, refs) if r is not None]
    stamp = {"format": TRIALS_FORMAT, "profile": cfg.profile, "seed": cfg.seed, "items": cfg.items, "probes": cfg.probes,
             "chunk": cfg.chunk, "simulator, detector and matcher": _sources_digest(TRIAL_CODE)}
    if cfg.captures_as_probes:
        stamp["captures as probes"] = True
    _check_stamp(d, stamp, "give another --out, or delete its trials/ to score the cached items again")
    sets = [(it, it.probes + (it.captures if cfg.captures_as_probes else [])) for it in items]
    probes = [p for _, ps in sets for p in ps]
    probe_item = np.array([it.index for it, ps in sets for _ in ps], np.int64)
    genuine_probe = np.array([k < len(it.probes) for it, ps in sets for k in range(len(ps))], bool)
    n_chunks = math.ceil(len(probes) / cfg.chunk)
    # In a fixed shuffled order: a run stopped by its time limit has scored probes drawn across all the items.
    todo = [(c, c * cfg.chunk, min(len(probes), (c + 1) * cfg.chunk), d / f"chunk-{c:05d}.npz")
            for c in (int(v) for v in np.random.default_rng(cfg.seed).permutation(n_chunks))
            if not (d / f"chunk-{c:05d}.npz").exists()]
    ref_of_item = {i: r for r, i in enumerate(ref_item)}
    gfile = d / "genuine.npz"
    if kept and not gfile.exists():
        gj = [j for j in range(len(probes)) if genuine_probe[j] and int(probe_item[j]) in ref_of_item]
        _WORK.update(refs=kept, probes=probes, probe_item=probe_item, ref_of_item=ref_of_item)
        try:
            g = _pool_map(_genuine_worker, gj, jobs)
        finally:
            _WORK.clear()
        _save(gfile, {"genuine": np.array(g, np.float64).reshape(-1, 6)})
    if todo and kept:
        log.info("scoring %d of %d trial chunks", len(todo), n_chunks)
        _WORK.update(refs=kept, probes=probes, probe_item=probe_item, groups=_groups(kept), ref_of_item=ref_of_item,
                     deadline=deadline)
        try:
            _pool_map(_trial_chunk, todo, jobs)
        finally:
            _WORK.clear()
    parts, trials, cpu, done, lam_sum, hit_sum = [], 0, 0.0, 0, 0.0, 0.0
    analytic: np.ndarray | None = np.zeros((len(probes), len(TAIL_THRESHOLDS)))
    for c in range(n_chunks):
        f = d / f"chunk-{c:05d}.npz"
        if not f.exists():
            continue
        with np.load(f, allow_pickle=False) as z:
            parts.append(z["rows"])
            trials += int(z["trials"])
            cpu += float(z["cpu_seconds"])
            lam_sum += float(z["lambda_sum"])
            hit_sum += float(z["lambda_hit_sum"])
            if analytic is not None and "analytic" in z.files:
                analytic[c * cfg.chunk:c * cfg.chunk + len(z["analytic"])] = z["analytic"]
            else:
                analytic = None
        done += 1
    gen = np.zeros((0, 6))
    if gfile.exists():
        with np.load(gfile, allow_pickle=False) as z:
            gen = z["genuine"]
    rows = np.concatenate(parts) if parts else np.zeros((0, 13))
    return {"rows": rows, "genuine": gen, "trials": trials, "cpu_seconds": cpu, "lambda_sum": lam_sum,
            "lambda_hit_sum": hit_sum, "chunks_done": done, "analytic": analytic,
            "chunks": n_chunks, "probes": len(probes), "probe_item": probe_item, "ref_item": np.array(ref_item, np.int64)}


# -- the report --------------------------------------------------------------------------------------

def _tail(far: np.ndarray, n: int, pairs: np.ndarray | None = None, analytic: np.ndarray | None = None) -> dict:
    """The tail against 10^t; with ``analytic`` (the model's expected count per threshold over these
    trials: sum of min(10^t, P(H > 0))) against that too (``analytic``, ``deviation_analytic_decades``,
    ``agrees_analytic``: within 0.3 decades or inside the count's 95 % interval)."""
    tab = calibrate.table(far, n, TAIL_THRESHOLDS, pairs=pairs)
    if analytic is not None:
        for d, a in zip(tab, analytic):
            lo, hi = d["ci95"][0] * n, d["ci95"][1] * n
            dev = None if d["count"] == 0 or a <= 0 else round(math.log10(d["count"] / a), 3)
            d["analytic"] = round(float(a), 3)
            d["deviation_analytic_decades"] = dev
            d["agrees_analytic"] = bool(lo <= a <= hi or (dev is not None and abs(dev) <= calibrate.AGREE_DECADES))
    bounded = None  # the deepest resolved threshold down to which the count never exceeds the model significantly
    for d in tab:
        if not d["resolved"] or d["ci95"][0] > d["predicted"]:
            break
        bounded = d["log10_threshold"]
    keys = ("log10_threshold", "count", "empirical", "ci95", "deviation_decades", "agrees", "resolved") \
        + (("pairs",) if pairs is not None else ()) \
        + (("analytic", "deviation_analytic_decades", "agrees_analytic") if analytic is not None else ())
    return {"rows": [{k: d[k] for k in keys} for d in tab],
            "agrees_down_to": calibrate.agreement_depth(tab), "bounded_down_to": bounded,
            "resolved_down_to": min((d["log10_threshold"] for d in tab if d["resolved"]), default=None)}


def region_table(profile: str, items: list[Item], refs: list[Reference | None], tr: dict,
                 clones: dict[int, bool] | None = None) -> dict:
    """Per region (PSF width x SNR x particles, and per axis): items, refused at enrollment, genuine
    probes and FRR, impostor trials and false accepts, and the tail twice: over the trials whose
    probe is of an item of the region, and over those whose reference is; with ``clones`` (item ->
    whether its replica at 2 x the noise passed) the clone pass rate."""
    reg = {it.index: item_region(profile, it.coating_seed) for it in items}
    enrolled = {it.index for it, r in zip(items, refs) if r is not None}
    rows, gen = tr["rows"], tr["genuine"]
    probe_item, ref_item = tr["probe_item"], tr["ref_item"]
    n_refs = len(ref_item)
    done_probes = tr["chunks_done_mask"]  # the probes whose chunk was scored (a stopped run: the first ones)
    probes_per_item: dict[int, int] = {}
    for j in np.flatnonzero(done_probes):
        probes_per_item[int(probe_item[j])] = probes_per_item.get(int(probe_item[j]), 0) + 1
    far = rows[:, 7] if len(rows) else np.zeros(0)
    t_probe_item = probe_item[rows[:, 0].astype(np.int64)] if len(rows) else np.zeros(0, np.int64)
    t_ref_item = ref_item[rows[:, 1].astype(np.int64)] if len(rows) else np.zeros(0, np.int64)
    g_item = probe_item[gen[:, 0].astype(np.int64)] if len(gen) else np.zeros(0, np.int64)

    def summarise(select) -> dict:
        mine = [i for i in reg if select(reg[i])]
        if not mine:
            return {}
        ms = set(mine)
        sel = np.array(sorted(ms), np.int64)
        pin, rin, gin = np.isin(t_probe_item, sel), np.isin(t_ref_item, sel), np.isin(g_item, sel)
        n_probe_trials = sum(probes_per_item.get(i, 0) * (n_refs - (i in enrolled)) for i in mine)
        done_total = sum(probes_per_item.values())
        n_ref_trials = sum(done_total - probes_per_item.get(i, 0) for i in mine if i in enrolled)
        row: dict[str, Any] = {"items": len(mine), "enrolled": len(ms & enrolled), "refused_at_enrollment": len(ms - enrolled),
               "genuine_trials": int(gin.sum()),
               "frr": float(np.mean(gen[gin, 2] == 0)) if gin.any() else None,
               "impostor_trials": int(n_probe_trials),
               "false_accepts": int(np.sum(rows[pin, 8] == 1)) if len(far) else 0,
               "beyond_chance": int(np.sum(far[pin] <= -9.0)) if len(far) else 0,
               "least_log10_far": float(far[pin].min()) if pin.any() else 0.0,
               "impostor_trials_as_reference": int(n_ref_trials)}
        if n_probe_trials:
            ana = tr.get("analytic")
            row["tail"] = _tail(far[pin], n_probe_trials, analytic=None if ana is None else
                                ana[np.isin(probe_item, sel) & done_probes].sum(0))
        if n_ref_trials:
            row["tail_as_reference"] = _tail(far[rin], n_ref_trials)
        cl = [v for i, v in (clones or {}).items() if i in ms]
        if cl:
            row["clone_pass_at_2x"] = float(np.mean(cl))
            row["clone_trials"] = len(cl)
        return row

    cells = {}
    for key in sorted(set(reg.values())):
        cells[" / ".join(key)] = summarise(lambda r, key=key: r == key)
    axes = {}
    for a in range(len(REGION_AXES)):
        for lab in sorted({r[a] for r in reg.values()}):
            axes[lab] = summarise(lambda r, a=a, lab=lab: r[a] == lab)
    return {"axes": [name for name, _, _ in REGION_AXES], "cells": cells, "by_axis": axes}


def clones_of(cfg: ScaleConfig, items: list[Item], refs: list[Reference | None], n: int) -> tuple[list, dict]:
    """``lab eval``'s clone curve on the first ``n`` enrolled items (glint.match.lab.clone_curve:
    replicas displaced by r x the genuine noise of the capture) and each item's outcome at 2 x."""
    from glint import sim
    from glint.match.lab import clone_curve

    kept = [(it, r) for it, r in zip(items, refs) if r is not None][:n]
    coats = [sim.make_coating(it.coating_seed, cfg.profile) for it, _ in kept]
    lcfg = LabConfig(cfg.profile, cfg.items, cfg.probes, n, cfg.seed, False, 1)
    curve, outcomes = clone_curve(coats, [r for _, r in kept], lcfg, sim.get_profile(cfg.profile))
    return curve, {kept[o["item"]][0].index: bool(o["passed"].get(2.0)) for o in outcomes}


def run(cfg: ScaleConfig, out_dir: str | Path, jobs: int = 1, deadline: float | None = None,
        clone_items: int = 0) -> dict:
    """Render (cached), enroll, score the trials (chunked, resumable), and with ``clone_items`` the
    clone curve on that many enrolled items; returns the report (also ``out_dir/report.json``)."""
    from glint import sim

    if cfg.profile not in sim.PROFILES:
        raise MatchError(f"unknown profile {cfg.profile!r}", hint="choose one of: " + ", ".join(sim.PROFILES))
    if cfg.items < 2 or cfg.probes < 1 or cfg.block < 1 or cfg.chunk < 1:
        raise MatchError("a run needs at least 2 items and 1 probe each", hint="e.g. --items 200 --probes 4")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    items = render_items(cfg, out, jobs)
    t_items = time.perf_counter() - t0
    refs, whys = enroll_items(cfg, items, jobs)
    t_enroll = time.perf_counter() - t0 - t_items
    n_refs = sum(r is not None for r in refs)
    if n_refs < 2:
        raise MatchError(f"{n_refs} of {len(items)} items enrolled: too few for impostor trials",
                         hint="; ".join(sorted({w for w in whys if w}))[:300])
    tr = run_trials(cfg, items, refs, out, jobs, deadline)
    t_trials = time.perf_counter() - t0 - t_items - t_enroll
    mask = np.zeros(tr["probes"], bool)
    for c in range(tr["chunks"]):
        if (out / "trials" / f"chunk-{c:05d}.npz").exists():
            mask[c * cfg.chunk:(c + 1) * cfg.chunk] = True
    tr["chunks_done_mask"] = mask
    rows, gen = tr["rows"], tr["genuine"]
    far = rows[:, 7]
    a, b = tr["probe_item"][rows[:, 0].astype(np.int64)], tr["ref_item"][rows[:, 1].astype(np.int64)]
    pairs = np.minimum(a, b) * (cfg.items + 1) + np.maximum(a, b)
    per_trial = tr["cpu_seconds"] / max(1, tr["trials"])
    per_item = float(np.mean([it.render_cpu_seconds for it in items]))
    # A run of 1e6 trials of this profile: N items give ~ probes x N x (enrolled share x N) trials.
    per_probe_item = tr["probes"] / max(1, len(items))  # probes (and captures used as probes) per item
    n_1e6 = math.ceil(math.sqrt(1e6 / (per_probe_item * n_refs / len(items))))
    report = {
        "profile": cfg.profile, "config": asdict(cfg), "items": len(items), "enrolled": n_refs,
        "refused_at_enrollment": len(items) - n_refs,
        "refused_reasons": sorted({w.split(": ", 1)[-1] for w in whys if w})[:40],
        "probes": tr["probes"], "probes_scored": int(mask.sum()), "chunks_done": tr["chunks_done"],
        "chunks": tr["chunks"], "complete": tr["chunks_done"] == tr["chunks"],
        "impostor_trials": tr["trials"], "impostor_trials_with_hypotheses": len(rows),
        # the chance code matches the model predicts over all trials (sum of lambda; pairs with one:
        # sum of 1 - exp(-lambda)) beside those seen
        "chance_codes": {"hypotheses": int(rows[:, 2].sum()) if len(rows) else 0,
                         "predicted": round(tr["lambda_sum"], 1), "pairs_with_one": len(rows),
                         "pairs_predicted": round(tr["lambda_hit_sum"], 1)},
        "impostor_beyond_chance": int(np.sum(far <= -9.0)),
        "impostor_refit": int(np.sum(rows[:, 9] >= 0)) if len(rows) else 0,
        "false_accepts": int(np.sum(rows[:, 8] == 1)) if len(rows) else 0,
        "impostor_min_log10_far": float(far.min()) if len(far) else 0.0,
        "genuine_trials": len(gen), "frr": float(np.mean(gen[:, 2] == 0)) if len(gen) else None,
        "tail": (_tail(far, tr["trials"], pairs, None if tr["analytic"] is None else tr["analytic"][mask].sum(0))
                 if tr["trials"] else None),
        "cpu_seconds_per_trial": per_trial,
        "cpu_hours_for_1e6_trials": round(per_trial * 1e6 / 3600, 2),
        "render_cpu_seconds_per_item": round(per_item, 2),
        "for_1e6_trials": {"items": n_1e6, "cpu_hours": round((n_1e6 * per_item + 1e6 * per_trial) / 3600, 1)},
        "seconds": {"items": round(t_items, 1), "enroll": round(t_enroll, 1), "trials": round(t_trials, 1),
                    "trials_cpu_all_chunks": round(tr["cpu_seconds"], 1)},
    }
    clones = None
    if clone_items:
        from glint import sim
        from glint.match.lab import half_pass

        t1 = time.perf_counter()
        curve, clones = clones_of(cfg, items, refs, clone_items)
        report["clone_curve"] = curve
        report["clone_half_pass_ratio"] = half_pass(curve, "ratio")
        report["clone_pass_at_2x_noise"] = next((d["pass_rate"] for d in curve if d["ratio"] == 2.0), None)
        report["clone_half_pass_sigma_px"] = half_pass(curve, "sigma_px")
        report["clone_half_pass_sigma_um"] = half_pass(curve, "sigma_um")
        if not sim.get_profile(cfg.profile).randomized:
            report["um_per_px"] = round(1000.0 / sim.get_profile(cfg.profile).px_per_mm, 3)
        report["seconds"]["clones"] = round(time.perf_counter() - t1, 1)
    if _randomized(cfg.lab()):
        report["regions"] = region_table(cfg.profile, items, refs, tr, clones)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
