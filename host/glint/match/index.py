"""The persistent 1:N index of quad codes: hashed cells, memory-mapped, incremental, with geometry.

Index quads are a coupled subset of a reference's quads: those whose code has x_C below
``params.index_region`` (a quarter of them), at most ``index_codes`` per item. A probe
looks up only its quads in that region (widened by the tolerance), a quarter of them,
so a query reads four times fewer cells than with a random subset of the same size.

Every index quad is filed under the hash bucket of its code's cell (cells are
2 x ``index_eps`` wide, so a probe code's eps-box overlaps 16 of them). An entry is one
uint64: ``row << 32 | geometry``, the geometry being the quad's backbone direction
(9 bits), length (7 bits, log scale over the reference band) and midpoint (8 + 8 bits
over the frame). A hit therefore gives a whole similarity transform (rotation, scale,
where the reference frame's centre lands in the probe), and identify votes on that, so
only geometrically consistent hits of one item add up.

On disk (``DIR/index/``): ``meta.json`` (format, bits, entries), ``base_offsets.u32``
(buckets + 1, CSR) and ``base_entries.u64`` sorted by bucket, memory-mapped read-only;
``delta.npz``, the entries of items added since the last rebuild (small, sorted, in
memory). Removal is a tombstone in the database's ``alive`` map; ``rebuild`` folds the
delta in and drops removed rows.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from glint.errors import MatchError
from glint.match.codes import CORNERS, Quads, build_quads_batch, gather_ranges, reference_keep
from glint.match.params import MatchParams

log = logging.getLogger(__name__)

INDEX_FORMAT = 4          # 4: sparse references fill their cap from the fill band
MAX_ROWS = 1 << 24        # rows an index may address (the database's limit)
ANGLE_BITS, LEN_BITS, POS_BITS = 9, 7, 8
FP_BITS = 4               # cell fingerprint in the entry's top bits (above the 24-bit row)
ROW_SHIFT, SUB_SHIFT, FP_SHIFT = 36, 32, 60
ROW_MASK = np.uint64(MAX_ROWS - 1)
MIN_BUCKET_BITS = 18
MAX_BUCKET_BITS = 25      # 128 MiB of offsets at most
ENTRIES_PER_BUCKET = 4    # target load of a bucket
DELTA_REBUILD_FRACTION = 0.1
DELTA_REBUILD_MIN = 200_000
FILL_REGION = 1.6         # x index_region: the fill band's top (sparse references, second pass)
BATCH = 64                # references coded at once (vectorised; larger batches thrash the cache)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_TIEBREAK = np.array([7919.0, 104729.0, 1299709.0, 15485863.0])
GEOM_MASK = np.uint64(0xFFFFFFFF)
LOW_MASK = np.uint64((1 << ROW_SHIFT) - 1)  # half-cell bits and geometry


def bucket_of(keys: np.ndarray, bits: int) -> np.ndarray:
    """Fibonacci hash of int64 cell keys onto 2**bits buckets."""
    with np.errstate(over="ignore"):
        h = keys.astype(np.uint64) * _GOLDEN
    return (h >> np.uint64(64 - bits)).astype(np.int64)


def fingerprint_of(keys: np.ndarray, bits: int) -> np.ndarray:
    """8 more bits of the cell key's hash (below the bucket's): a bucket holds several cells, and a hit
    whose fingerprint differs from the looked-up cell's is another cell's entry (dropped, 255 in 256)."""
    with np.errstate(over="ignore"):
        h = keys.astype(np.uint64) * _GOLDEN
    return ((h >> np.uint64(64 - bits - FP_BITS)) & np.uint64((1 << FP_BITS) - 1)).astype(np.uint64)


def bits_for(n_entries: int) -> int:
    want = max(1, n_entries // ENTRIES_PER_BUCKET)
    return int(min(MAX_BUCKET_BITS, max(MIN_BUCKET_BITS, int(want).bit_length())))


def _nb(params: MatchParams) -> tuple[float, int]:
    w = 2.0 * params.index_eps
    return w, int(np.ceil(2.4 / w))


def index_cell_keys(code: np.ndarray, params: MatchParams) -> np.ndarray:
    """The index cell (int64 key) each code falls in (cells 2 x index_eps wide)."""
    w, nb = _nb(params)
    c = np.clip(np.floor((code + 0.6) / w).astype(np.int64), 0, nb - 1)
    return ((c[..., 0] * nb + c[..., 1]) * nb + c[..., 2]) * nb + c[..., 3]


def index_halves(code: np.ndarray, params: MatchParams) -> np.ndarray:
    """4 bits: on each axis, whether the code lies in the upper half of its index cell. A lookup box is
    one cell wide, so in each of the two cells it overlaps per axis it misses one half about half the
    time; hits in such a half lie outside the tolerance and are dropped (about 2 in 3 hits)."""
    w, _ = _nb(params)
    t = (code + 0.6) / w
    upper = (t - np.floor(t)) >= 0.5
    return (upper.astype(np.int64) * np.array([1, 2, 4, 8])).sum(-1)


def _corners(widen: int) -> np.ndarray:
    """((widen + 1)^4, 4) cell offsets of a box ``widen`` cells wide (CORNERS for 1, in its order)."""
    r = np.arange(widen + 1)
    return np.stack(np.meshgrid(r, r, r, r, indexing="ij")[::-1], -1).reshape(-1, 4)


def index_box_keys(code: np.ndarray, params: MatchParams, widen: int = 1) -> np.ndarray:
    """(Q, (widen + 1)^4) keys of the index cells overlapped by each code's box of +- widen x index_eps."""
    w, nb = _nb(params)
    corners = CORNERS if widen == 1 else _corners(widen)
    low = np.floor((code + 0.6 - widen * params.index_eps) / w).astype(np.int64)
    c = np.clip(low[:, None, :] + corners[None, :, :], 0, nb - 1)
    return ((c[..., 0] * nb + c[..., 1]) * nb + c[..., 2]) * nb + c[..., 3]


def fill_region(params: MatchParams) -> float:
    """The widest x_C a reference's index quads reach: a reference with fewer than ``index_codes``
    quads in the core region (x_C < ``index_region``, sparse coatings) fills up to its cap from
    x_C < ``FILL_REGION`` x ``index_region``; probes look up quads that far in the second pass."""
    return FILL_REGION * params.index_region


def select_index(owner: np.ndarray, q: Quads, score: np.ndarray, params: MatchParams, fill: bool = False) -> np.ndarray:
    """Positions of the index quads among ``q`` (grouped by ``owner``): boundary-safe codes in the
    index region, at most ``index_codes`` per owner, preferring spots seen in many captures
    (``score``), then a deterministic hash of the code. With ``fill``, an owner with fewer than
    ``index_codes`` such quads takes more from the fill band (index_region <= x_C < fill_region),
    in the same order: dense references are indexed as without it, sparse ones get up to the cap."""
    top = fill_region(params) if fill else params.index_region
    ok = np.nonzero(reference_keep(q, params) & (q.code[:, 0] < top))[0]
    tie = np.modf(np.abs(q.code[ok] @ _TIEBREAK))[0]
    band = q.code[ok, 0] >= params.index_region
    order = ok[np.lexsort((tie, -score[ok], band, owner[ok]))]
    own = owner[order]
    start = np.r_[0, np.nonzero(own[1:] != own[:-1])[0] + 1]
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    return np.sort(order[rank < params.index_codes])


def geometry(xy_a: np.ndarray, xy_b: np.ndarray, params: MatchParams, width: int, height: int) -> np.ndarray:
    """Packed uint32 geometry of backbones A->B (reference px): direction, log length, midpoint."""
    v = xy_b - xy_a
    ang = np.round(np.arctan2(v[:, 1], v[:, 0]) * ((1 << ANGLE_BITS) / (2 * math.pi))).astype(np.int64)
    ang &= (1 << ANGLE_BITS) - 1
    lo, hi = math.log(params.band_lo), math.log(params.band_hi)
    top = (1 << LEN_BITS) - 1
    ln = np.clip(np.round((np.log(np.hypot(v[:, 0], v[:, 1])) - lo) / (hi - lo) * top), 0, top).astype(np.int64)
    mid = (xy_a + xy_b) / 2
    pmax = (1 << POS_BITS) - 1
    mx = np.clip(np.round(mid[:, 0] / width * pmax), 0, pmax).astype(np.int64)
    my = np.clip(np.round(mid[:, 1] / height * pmax), 0, pmax).astype(np.int64)
    g = (((ang << LEN_BITS | ln) << POS_BITS | mx) << POS_BITS) | my
    return g.astype(np.uint32)


def unpack_geometry(g: np.ndarray, params: MatchParams, width: int, height: int):
    """(angle rad, length px, midpoint complex px) of packed geometry."""
    g = g.astype(np.int64)
    pmax = (1 << POS_BITS) - 1
    my = (g & pmax) * (height / pmax)
    mx = ((g >> POS_BITS) & pmax) * (width / pmax)
    ln = (g >> (2 * POS_BITS)) & ((1 << LEN_BITS) - 1)
    ang = (g >> (2 * POS_BITS + LEN_BITS)) * (2 * math.pi / (1 << ANGLE_BITS))
    lo, hi = math.log(params.band_lo), math.log(params.band_hi)
    length = np.exp(lo + ln * ((hi - lo) / ((1 << LEN_BITS) - 1)))
    return ang, length, mx + 1j * my


def reference_entries(xy: np.ndarray, n: np.ndarray, support: np.ndarray, params: MatchParams,
                      width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index entries of a batch of references, vectorised: ``xy`` (B, M, 2) px padded, ``n`` (B,) spots,
    ``support`` (B, M). Returns (batch row of each entry, cell key int64, half-cell bits << 32 | geometry)."""
    out_o, out_k, out_g = [], [], []
    for s in range(0, len(xy), BATCH):
        e = min(len(xy), s + BATCH)
        m = int(max(4, n[s:e].max())) if e > s else 4
        owner, q = build_quads_batch(xy[s:e, :m], n[s:e], params.band_lo, params.band_hi,
                                     1.0 - 2 * params.inner_margin)
        if len(q) == 0:
            continue
        sup = support[s:e, :m]
        score = sup[owner[:, None], q.idx].sum(1).astype(np.float64)
        sel = select_index(owner, q, score, params, fill=True)
        owner, q = owner[sel], q.take(sel)
        a = xy[s + owner, q.idx[:, 0]]
        b = xy[s + owner, q.idx[:, 1]]
        out_o.append(owner + s)
        out_k.append(index_cell_keys(q.code, params))
        low = (index_halves(q.code, params).astype(np.uint64) << np.uint64(SUB_SHIFT))
        out_g.append(low | geometry(a, b, params, width, height).astype(np.uint64))
    if not out_o:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(out_o), np.concatenate(out_k), np.concatenate(out_g)


def pack(rows: np.ndarray, low: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Entries ``fingerprint << 60 | row << 36 | half-cell bits << 32 | geometry`` (``low``: the last two)."""
    if len(rows) and int(rows.max()) >= MAX_ROWS:
        raise MatchError(f"index is full ({MAX_ROWS} rows); rebuild to compact removed items")
    return ((fp.astype(np.uint64) << np.uint64(FP_SHIFT)) | (rows.astype(np.uint64) << np.uint64(ROW_SHIFT))
            | (low.astype(np.uint64) & LOW_MASK))


def entry_rows(entries: np.ndarray) -> np.ndarray:
    return ((entries >> np.uint64(ROW_SHIFT)) & ROW_MASK).astype(np.int64)


def lookup_quads(q: Quads, params: MatchParams, widen: int = 1, fill: bool = False) -> np.ndarray:
    """Positions of a probe's quads that may match index quads: code x_C within the core region (or
    with ``fill`` the fill band) plus ``widen`` x the lookup tolerance."""
    top = fill_region(params) if fill else params.index_region
    return np.nonzero(q.code[:, 0] < top + widen * params.index_eps)[0]


class CodeIndex:
    """The index files of one database directory (reads are lock-free; writers hold the db lock)."""

    def __init__(self, root: Path, params: MatchParams):
        self.dir = Path(root) / "index"
        self.params = params
        self.bits = MIN_BUCKET_BITS
        self.stale = False
        self.offsets = np.zeros((1 << MIN_BUCKET_BITS) + 1, np.uint32)
        self.entries = np.zeros(0, np.uint64)
        self.delta_buckets = np.zeros(0, np.int64)
        self.delta_entries = np.zeros(0, np.uint64)
        self.load()

    # --- files -----------------------------------------------------------------------------
    def load(self) -> None:
        meta = self.dir / "meta.json"
        if not meta.exists():
            return
        try:
            m = json.loads(meta.read_text())
            if m.get("format") != INDEX_FORMAT:
                self.stale = True  # written by an older version: the database rebuilds it
                return
            self.stale = False
            self.bits = int(m["bits"])
            n = int(m["entries"])
            self.offsets = np.memmap(self.dir / "base_offsets.u32", np.uint32, "r", shape=((1 << self.bits) + 1,))
            self.entries = (np.memmap(self.dir / "base_entries.u64", np.uint64, "r", shape=(n,))
                            if n else np.zeros(0, np.uint64))
            d = self.dir / "delta.npz"
            if d.exists():
                z = np.load(d)
                self.delta_buckets, self.delta_entries = z["buckets"], z["entries"]
            else:
                self.delta_buckets, self.delta_entries = np.zeros(0, np.int64), np.zeros(0, np.uint64)
        except (OSError, ValueError, KeyError) as e:
            raise MatchError(f"index in {self.dir} is unreadable ({e})", hint="run 'glint identify --rebuild'") from None

    def write_base(self, buckets: np.ndarray, entries: np.ndarray, bits: int) -> None:
        """Replace the base with these entries (buckets computed for ``bits``) and clear the delta."""
        self.bits = bits
        self.dir.mkdir(parents=True, exist_ok=True)
        order = np.argsort(buckets, kind="stable")
        counts = np.bincount(buckets, minlength=1 << bits)
        offsets = np.zeros((1 << bits) + 1, np.uint64)
        np.cumsum(counts, out=offsets[1:])
        if offsets[-1] >= 1 << 32:
            raise MatchError("index too large for 32-bit offsets")
        self._atomic_write("base_offsets.u32", offsets.astype(np.uint32))
        self._atomic_write("base_entries.u64", entries[order].astype(np.uint64))
        (self.dir / "delta.npz").unlink(missing_ok=True)
        (self.dir / "base_entries.u32").unlink(missing_ok=True)  # format 1
        self._atomic_text("meta.json", json.dumps({"format": INDEX_FORMAT, "bits": bits, "entries": int(len(entries))}))
        self.load()

    def add_delta(self, buckets: np.ndarray, entries: np.ndarray) -> None:
        b = np.concatenate([self.delta_buckets, buckets])
        e = np.concatenate([self.delta_entries, entries.astype(np.uint64)])
        order = np.argsort(b, kind="stable")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "delta.tmp.npz"
        np.savez(tmp, buckets=b[order], entries=e[order])
        os.replace(tmp, self.dir / "delta.npz")
        if not (self.dir / "meta.json").exists():
            self._atomic_write("base_offsets.u32", np.zeros((1 << self.bits) + 1, np.uint32))
            self._atomic_text("meta.json", json.dumps({"format": INDEX_FORMAT, "bits": self.bits, "entries": 0}))
        self.load()

    def needs_rebuild(self) -> bool:
        return self.stale or len(self.delta_entries) > max(DELTA_REBUILD_MIN, DELTA_REBUILD_FRACTION * len(self.entries))

    def _atomic_write(self, name: str, arr: np.ndarray) -> None:
        tmp = self.dir / (name + ".tmp")
        arr.tofile(tmp)
        os.replace(tmp, self.dir / name)

    def _atomic_text(self, name: str, text: str) -> None:
        tmp = self.dir / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.dir / name)

    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.entries.nbytes + self.delta_buckets.nbytes + self.delta_entries.nbytes)

    # --- queries -----------------------------------------------------------------------------
    def hits(self, code: np.ndarray, widen: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """All entries filed under any cell a probe code's box of +- ``widen`` x index_eps overlaps
        (``widen`` + 1 cells per axis; entries in a half-cell the box does not reach are dropped).

        Returns (entries uint64, index into ``code`` of each hit)."""
        if len(code) == 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        corners = CORNERS if widen == 1 else _corners(widen)
        keys = index_box_keys(code, self.params, widen).ravel()     # (Q * (widen + 1)^4)
        b = bucket_of(keys, self.bits)
        # Per lookup (a cell of the box): the half-cell bits a hit must not have. On an axis where the
        # box starts in the upper half of its low cell, that cell's lower half is outside the box; where
        # it starts in the lower half, the high cell's upper half is. Corner offset 0 = low cell.
        w, _ = _nb(self.params)
        t = (code + 0.6 - widen * self.params.index_eps) / w
        frac = t - np.floor(t)                                       # (Q, 4)
        corner = corners[None, :, :]                                 # (1, C, 4): widen = high cell
        active = np.where(corner == 0, frac[:, None, :] >= 0.5, (corner == widen) & (frac[:, None, :] <= 0.5))
        bitw = np.array([1, 2, 4, 8])
        forbid_mask = (active * bitw).sum(-1).ravel()                # axes with a forbidden half
        corner_bits = np.tile(((corners == widen) * bitw).sum(-1), len(code))  # its forbidden value: upper in the high cell
        per_code = len(corners)
        check = (fingerprint_of(keys, self.bits) << np.uint64(4)) | forbid_mask.astype(np.uint64)
        out_e, out_q = [], []
        if len(self.entries):
            pos, own = gather_ranges(self.offsets[b].astype(np.int64), self.offsets[b + 1].astype(np.int64))
            out_e.append(self.entries[pos])
            out_q.append(own)
        if len(self.delta_entries):
            lo = np.searchsorted(self.delta_buckets, b, "left")
            hi = np.searchsorted(self.delta_buckets, b, "right")
            pos, own = gather_ranges(lo, hi)
            out_e.append(self.delta_entries[pos])
            out_q.append(own)
        if not out_e:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        e, own = np.concatenate(out_e), np.concatenate(out_q)
        chk = check[own]
        same = (e >> np.uint64(FP_SHIFT)) == (chk >> np.uint64(4))
        sub = ((e >> np.uint64(SUB_SHIFT)) & np.uint64(15)).astype(np.int64)
        same &= (~(sub ^ corner_bits[own]) & (chk & np.uint64(15)).astype(np.int64) & 15) == 0
        return e[same], (own[same] >> 4) if per_code == 16 else own[same] // per_code
