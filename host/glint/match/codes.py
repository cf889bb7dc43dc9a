"""Geometric-invariant quad codes (astrometry.net's idea) and their tolerant matching.

A quad is four spots A, B, C, D where C and D lie inside the circle whose diameter is
AB (so AB is the longest pair and the quad fixes its own backbone). Mapping A to 0 and
B to 1 in the complex plane, z -> (z - A) / (B - A), puts C and D at two points whose
coordinates (xc, yc, xd, yd) do not change under rotation, translation and scale: the
code. Swapping A and B sends z to 1 - z and swapping C and D exchanges them; a code is
canonical when xc + xd <= 1 and xc <= xd. Near those boundaries noise could flip the
canonical choice, so references keep only codes at least 2 x eps inside the region.

References use a narrow scale band and keep C, D away from the circle's edge; probes
use a wider band and a circle just large enough (by the code tolerance) that every
reference quad whose four spots are seen again, and whose code then matches, is formed again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from glint.match.params import MatchParams

MAX_GROUP = 64  # spots inside one circle beyond which the pair is skipped (pathological clusters)


@dataclass
class Quads:
    """Quads of one spot set: ``idx`` (Q,4) spot indices A,B,C,D; ``code`` (Q,4); ``length`` |AB| px;
    ``angle`` direction of AB (radians)."""

    idx: np.ndarray
    code: np.ndarray
    length: np.ndarray
    angle: np.ndarray

    def __len__(self) -> int:
        return len(self.idx)

    def take(self, sel) -> "Quads":
        return Quads(self.idx[sel], self.code[sel], self.length[sel], self.angle[sel])

    def idx_rows(self, sel: np.ndarray) -> np.ndarray:
        """idx.take(sel, 0): the spot indices of the quads ``sel`` (1-D)."""
        return self.idx.take(sel, 0)

    def length_rows(self, sel: np.ndarray) -> np.ndarray:
        """length.take(sel): the backbone lengths of the quads ``sel`` (1-D)."""
        return self.length.take(sel)

    def cell_keys(self, params: MatchParams) -> np.ndarray:
        """:func:`cell_keys` of the codes."""
        return cell_keys(self.code, params)

    def length_counts(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The quads' backbone lengths, sorted, and (None here) cumulative counts: see BuiltQuads."""
        return np.sort(self.length), None


class BuiltQuads(Quads):
    """:func:`build_quads`' quads: the codes made, and the spot indices, backbone lengths and angles
    gathered per quad only when first read (1:1 verify reads them at its few matched quads only).
    Each value is the one build_quads gathered before (the same gathers of the same arrays)."""

    def __init__(self, code: np.ndarray, ii: np.ndarray, jj: np.ndarray, ke: np.ndarray, ic: np.ndarray,
                 id_: np.ndarray, p: np.ndarray, pf: np.ndarray, za: np.ndarray, zb: np.ndarray,
                 per_pair: np.ndarray, w2: np.ndarray):
        self.code = code
        self._parts = (ii, jj, ke, ic, id_, p, pf, za, zb, per_pair, w2)
        self._idx: np.ndarray | None = None
        self._length: np.ndarray | None = None
        self._angle: np.ndarray | None = None
        self._plen: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.code)

    def _pair_length(self) -> np.ndarray:
        if self._plen is None:
            za, zb = self._parts[7], self._parts[8]
            self._plen = np.abs(zb - za)
        return self._plen

    def _idx_of(self, pf: np.ndarray, ic: np.ndarray, id_: np.ndarray) -> np.ndarray:
        ii, jj, ke = self._parts[0], self._parts[1], self._parts[2]
        ke2 = np.concatenate([ke, ke])
        idx = np.empty((len(pf), 4), np.int32)
        idx[:, 0], idx[:, 1] = np.concatenate([ii, jj]).take(pf), np.concatenate([jj, ii]).take(pf)
        idx[:, 2], idx[:, 3] = ke2.take(ic), ke2.take(id_)
        return idx

    @property
    def idx(self) -> np.ndarray:
        if self._idx is None:
            self._idx = self._idx_of(self._parts[6], self._parts[3], self._parts[4])
        return self._idx

    @idx.setter
    def idx(self, v: np.ndarray) -> None:
        self._idx = v

    @property
    def length(self) -> np.ndarray:
        if self._length is None:
            self._length = self._pair_length().take(self._parts[5])
        return self._length

    @length.setter
    def length(self, v: np.ndarray) -> None:
        self._length = v

    @property
    def angle(self) -> np.ndarray:
        if self._angle is None:
            za, zb = self._parts[7], self._parts[8]
            vec = zb - za
            # flipped: A - B (not -(B - A): a zero part's sign, so atan2's +-pi, would differ); np.angle is
            # arctan2(imag, real)
            flipped = za - zb
            angle = np.concatenate([np.arctan2(vec.imag, vec.real), np.arctan2(flipped.imag, flipped.real)])
            self._angle = angle.take(self._parts[6])
        return self._angle

    @angle.setter
    def angle(self, v: np.ndarray) -> None:
        self._angle = v

    def idx_rows(self, sel: np.ndarray) -> np.ndarray:
        if self._idx is not None:
            return self._idx.take(sel, 0)
        return self._idx_of(self._parts[6].take(sel), self._parts[3].take(sel), self._parts[4].take(sel))

    def length_rows(self, sel: np.ndarray) -> np.ndarray:
        return self._pair_length().take(self._parts[5].take(sel))

    def cell_keys(self, params: MatchParams) -> np.ndarray:
        """:func:`cell_keys` of the codes, binned per entry (C and D are entries, each in both backbone
        directions) and combined per quad: the same cells of the same values, so the same keys."""
        w = cell_width(params)
        nb = int(np.ceil(2.4 / w))
        w2, ic, id_ = self._parts[10], self._parts[3], self._parts[4]
        cx = np.clip(((w2.real + CELL_OFFSET) / w).astype(np.int64), 0, nb - 1)
        cy = np.clip(((w2.imag + CELL_OFFSET) / w).astype(np.int64), 0, nb - 1)
        e = cx * nb + cy  # _linear's first two (or last two) cells of a quad whose C (D) this entry is
        return e.take(ic) * (nb * nb) + e.take(id_)

    def length_counts(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The backbone pairs' lengths, sorted, and the cumulative count of quads (len + 1) up to each:
        the quads' sorted lengths as a run-length list (a pair's quads all have its length)."""
        plen = self._pair_length()
        order = plen.argsort()
        cum = np.zeros(len(plen) + 1, np.int64)
        np.cumsum(self._parts[9].take(order), out=cum[1:])
        return plen.take(order), cum


def _empty() -> Quads:
    return Quads(np.zeros((0, 4), np.int32), np.zeros((0, 4), np.float64), np.zeros(0), np.zeros(0))


def _pairs_within(pe: np.ndarray, ke: np.ndarray):
    """Every pair (C, D), C before D, of the spots ``ke`` listed for each backbone ``pe`` (sorted by
    backbone): returns (backbone, C, D) grouped by backbone, in one vectorised step."""
    if len(pe) < 2:
        return pe[:0], ke[:0], ke[:0]
    start = np.r_[0, np.nonzero(pe[1:] != pe[:-1])[0] + 1]
    size = np.diff(np.r_[start, len(pe)])
    rank = np.arange(len(pe)) - np.repeat(start, size)
    rep = np.repeat(size, size) - 1 - rank          # partners after each entry in its group
    first = np.repeat(np.arange(len(pe)), rep)
    offs = np.arange(len(first)) - np.repeat(np.cumsum(rep) - rep, rep)
    second = first + 1 + offs
    return pe[first], ke[first], ke[second]


def _row_entries(inside: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The True entries of a (P, n) mask as flat positions, row by row, with each row's bounds in
    them (P + 1,) and its count (P,): one pass over the mask and a search per row."""
    flat = inside.reshape(-1).nonzero()[0]
    bounds = np.searchsorted(flat, np.arange(len(inside) + 1) * n)
    return flat, bounds, bounds[1:] - bounds[:-1]


def _entry_pairs(counts: np.ndarray, bounds: np.ndarray, ne: int,
                 rowof: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``ne`` entries coming row by row with ``counts`` per row (row r's are bounds[r]:bounds[r+1]):
    every pair of entries (first, second), first before second in the same row, ordered by first
    then second (as :func:`_pairs_in_rows` orders them), and the row of each entry (``rowof``, when
    the caller has it)."""
    if rowof is None:
        rowof = np.repeat(np.arange(len(counts)), counts)
    ar = np.arange(ne)
    rep = bounds[1:].take(rowof) - 1 - ar  # partners after each entry in its row
    first = np.repeat(ar, rep)
    second = np.arange(1, len(first) + 1) + np.repeat(ar - (np.cumsum(rep) - rep), rep)
    return first, second, rowof


def _pairs_in_rows(counts: np.ndarray, ke: np.ndarray):
    """:func:`_pairs_within` when the entries ``ke`` come row by row with ``counts`` per row:
    returns (row, C, D), the same triples in the same order, without regrouping."""
    rowof = np.repeat(np.arange(len(counts)), counts)
    start = np.cumsum(counts) - counts
    rep = (start + counts)[rowof] - 1 - np.arange(len(ke))  # partners after each entry in its row
    first = np.repeat(np.arange(len(ke)), rep)
    second = np.arange(1, len(first) + 1) + np.repeat(np.arange(len(ke)) - (np.cumsum(rep) - rep), rep)
    return rowof[first], ke[first], ke[second]


_UPPER: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """np.triu_indices(n, 1), kept for the spot counts scans have (at most 512 spots)."""
    t = _UPPER.get(n)
    if t is None:
        t = np.triu_indices(n, 1)
        if n <= 512:
            _UPPER[n] = t
    return t


def spot_pairs(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The spots' x, y and z = x + 1j y, every pair i < j (iu, ju: np.nonzero's row-major order, half
    the work of the full N x N matrix) and its squared length d2: where :func:`build_quads` and
    glint.match.labscale's superset enumeration both start."""
    xy = np.asarray(xy, dtype=np.float64)
    x, y = xy[:, 0], xy[:, 1]
    iu, ju = _upper_pairs(len(xy))
    dx = x.take(iu) - x.take(ju)
    dy = y.take(iu) - y.take(ju)
    return x, y, x + 1j * y, iu, ju, dx * dx + dy * dy


def build_quads(xy: np.ndarray, lo: float, hi: float, radius_factor: float) -> Quads:
    """All quads whose backbone length is in [lo, hi] and whose C, D lie within
    ``radius_factor`` x |AB|/2 of AB's midpoint; codes canonical."""
    n = len(xy)
    if n < 4:
        return _empty()
    x, y, z, iu, ju, d2 = spot_pairs(xy)
    band = ((d2 >= lo * lo) & (d2 <= hi * hi)).nonzero()[0]
    if len(band) == 0:
        return _empty()
    # Gathers by take (1-D: the same values as [], with less overhead per element).
    ii, jj = iu.take(band), ju.take(band)
    mx, my = (x.take(ii) + x.take(jj)) / 2, (y.take(ii) + y.take(jj)) / 2
    rad2 = d2.take(band) * (radius_factor * radius_factor / 4.0)
    # |s - m|^2 < r^2  <=>  |s|^2 - 2 s.m < r^2 - |m|^2: one (P, 3) x (3, N) product instead of
    # four (P, N) array operations (the largest arrays of the probe's coding).
    # np.stack([-2 mx, -2 my, 1], axis=1) @ np.stack([x, y, x^2 + y^2]): the same C-ordered operands
    left = np.empty((len(ii), 3))
    left[:, 0], left[:, 1], left[:, 2] = -2.0 * mx, -2.0 * my, 1.0
    right = np.empty((3, n))
    right[0], right[1], right[2] = x, y, x * x + y * y
    lhs = left @ right
    inside = lhs < (rad2 - mx * mx - my * my)[:, None]
    row0 = np.arange(0, len(ii) * n, n)  # inside[r, ii[r]] = False as flat positions (a 1-D scatter)
    inside.reshape(-1)[row0 + ii] = False
    inside.reshape(-1)[row0 + jj] = False
    flat, bounds, counts = _row_entries(inside, n)
    crowded = counts > MAX_GROUP
    if crowded.any():
        inside[crowded] = False
        flat, bounds, counts = _row_entries(inside, n)
    if len(flat) < 2:
        return _empty()
    rowof = flat // n  # each entry's row (pair): np.repeat(np.arange(P), counts), from its flat position
    first, second, rowof = _entry_pairs(counts, bounds, len(flat), rowof)
    ke = flat - rowof * n  # entries sorted by pair, then spot
    if len(first) == 0:
        return _empty()
    # Every value a quad takes is one of its pair's or entries' (the C, D of a quad are two entries of
    # its pair's row): computed once per entry (E) or pair (P), in both backbone directions, and
    # gathered per quad (Q ~ 2 E): the same operations on the same operands, so the same bits.
    ne, npair = len(ke), len(ii)
    za, zb = z.take(ii), z.take(jj)
    zar = za.take(rowof)
    w = (z.take(ke) - zar) / (zb.take(rowof) - zar)  # entry's spot in its pair's frame A=ii -> 0, B=jj -> 1
    w2 = np.concatenate([w, 1 - w])  # ... and with the backbone flipped (A <-> B: z -> 1 - z)
    wr = w2.real.copy()
    # Canonical backbone direction: mean x of C, D at most 1/2.
    flip = (wr.take(first) + wr.take(second)) > 1.0
    off = ne * flip
    ic = first + off
    id_ = second + off
    swap = wr.take(ic) > wr.take(id_)
    ic, id_ = np.where(swap, id_, ic), np.where(swap, ic, id_)
    p = rowof.take(first)
    pf = p + npair * flip
    code = np.empty((len(p), 4))
    cz = code.view(np.complex128)  # (Q, 2): x_C + 1j y_C, x_D + 1j y_D: each gathered once as one complex
    cz[:, 0], cz[:, 1] = w2.take(ic), w2.take(id_)
    # idx, length and angle: gathered when first read (BuiltQuads), from these same arrays
    return BuiltQuads(code, ii, jj, ke, ic, id_, p, pf, za, zb, counts * (counts - 1) // 2, w2)


def reference_quads(xy: np.ndarray, params: MatchParams) -> Quads:
    """Quads a reference stores: narrow band, C and D well inside, away from canonical boundaries."""
    q = build_quads(xy, params.band_lo, params.band_hi, 1.0 - 2 * params.inner_margin)
    if len(q) == 0:
        return q
    return q.take(reference_keep(q, params))


def probe_quads(xy: np.ndarray, params: MatchParams) -> Quads:
    """Quads a probe looks up: wide band and a slightly larger circle.

    No boundary variants are needed: references keep only codes at least 2 x eps inside
    the canonical region, so a probe code within eps of one is canonical the same way.
    """
    return build_quads(xy, params.band_lo / params.scale_tol, params.band_hi * params.scale_tol,
                       probe_circle(params))


CIRCLE_SLACK = 1e-3  # of |AB|/2: keeps rounding (pixel-space circle test vs complex code) on the safe side


def probe_circle(params: MatchParams) -> float:
    """Radius factor of the probe's circle on AB: a reference code lies within (1 - 2 inner_margin) / 2
    of the circle's centre (0.5, 0) in code units and a matching probe code within code_eps of it in
    each coordinate, so within sqrt(2) code_eps more; a quad outside this circle cannot match any
    reference (nor index) code, and leaving it out (about 40% of a probe's quads) changes no match."""
    return 1.0 - 2 * params.inner_margin + 2 * math.sqrt(2) * params.code_eps + CIRCLE_SLACK


CELL_OFFSET = 0.6  # code coordinates lie in about [-0.55, 1.05]; shift them positive before binning
CORNERS = np.array([[(c >> d) & 1 for d in range(4)] for c in range(16)], dtype=np.int64)  # 16 x 4


def cell_width(params: MatchParams) -> float:
    """Cells of twice the tolerance: an eps-box around a code overlaps exactly 2 cells per axis."""
    return 2.0 * params.code_eps


def _linear(cells: np.ndarray, nb: int) -> np.ndarray:
    return ((cells[..., 0] * nb + cells[..., 1]) * nb + cells[..., 2]) * nb + cells[..., 3]


def cell_keys(code: np.ndarray, params: MatchParams) -> np.ndarray:
    """The cell (int64 key) each code falls in."""
    w = cell_width(params)
    nb = int(np.ceil(2.4 / w))
    # Truncation, not floor: the two differ only below 0, where the clip makes both 0.
    cells = ((code + CELL_OFFSET) / w).astype(np.int64)
    return _linear(np.clip(cells, 0, nb - 1), nb)


def box_keys(code: np.ndarray, params: MatchParams) -> np.ndarray:
    """(Q, 16) keys of the cells overlapped by each code's eps-box (every cell a match can be in)."""
    w = cell_width(params)
    nb = int(np.ceil(2.4 / w))
    low = np.floor((code + CELL_OFFSET - params.code_eps) / w).astype(np.int64)
    cells = np.clip(low[:, None, :] + CORNERS[None, :, :], 0, nb - 1)
    return _linear(cells, nb)


def gather_ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the index ranges [start, stop): returns (positions, owner of each position)."""
    cnt = np.maximum(stops - starts, 0)
    total = int(cnt.sum())
    owner = np.repeat(np.arange(len(cnt)), cnt)
    if total == 0:
        return np.zeros(0, np.int64), owner
    base = np.repeat(starts - (np.cumsum(cnt) - cnt), cnt)
    return base + np.arange(total), owner


@dataclass
class CodeTable:
    """Probe quads sorted by cell key, for repeated lookups (built once per probe)."""

    quads: Quads
    keys: np.ndarray   # sorted cell keys
    order: np.ndarray  # quad index of each sorted key
    cells: np.ndarray | None = None  # distinct cell keys, sorted ...
    start: np.ndarray | None = None  # ... the first position of each in ``keys``
    count: np.ndarray | None = None  # ... and how many quads fall in it


ORDER_BITS = 24  # code_table packs (cell key, quad index) in one int64: cell keys < 2**30, quads < 2**24


def code_table(q: Quads, params: MatchParams) -> CodeTable:
    keys = q.cell_keys(params)
    if len(keys) >= 1 << ORDER_BITS:
        order = np.argsort(keys, kind="stable")
        return CodeTable(q, keys[order], order)
    # One plain sort of (key, index) packed in an int64 is the stable argsort at half its cost.
    packed = (keys << ORDER_BITS) | np.arange(len(keys))
    packed.sort()
    keys = packed >> ORDER_BITS
    if len(keys) == 0:
        start = count = np.zeros(0, np.int64)
    else:
        new = np.empty(len(keys), bool)  # the first of each distinct key
        new[0] = True
        np.not_equal(keys[1:], keys[:-1], out=new[1:])
        start = new.nonzero()[0]
        end = np.empty(len(start), np.int64)  # np.diff(np.append(start, len(keys)))
        end[:-1] = start[1:]
        end[-1] = len(keys)
        count = end - start
    return CodeTable(q, keys, packed & ((1 << ORDER_BITS) - 1), keys.take(start), start, count)


def match_codes(ref: Quads, ref_boxes: tuple, table: CodeTable, params: MatchParams):
    """Pairs (i, j) of reference quad i and probe quad j whose codes agree within ``code_eps``
    (every coordinate) and whose backbone lengths agree within the scale tolerance.
    ``ref_boxes`` is (sorted box keys, quad of each), cached by the reference."""
    probe = table.quads
    if len(ref) == 0 or len(probe) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys, quad_of = ref_boxes
    cells, start, count = table.cells, table.start, table.count
    if cells is None or start is None or count is None:
        pos, owner = gather_ranges(np.searchsorted(table.keys, keys, "left"),
                                   np.searchsorted(table.keys, keys, "right"))
        ri = quad_of[owner]
    else:
        # One search among the probe's distinct cells (not two among all its codes).
        c = np.minimum(merge_left(cells, keys), len(cells) - 1)
        box = (cells.take(c) == keys).nonzero()[0]
        cb = c.take(box)
        first = start.take(cb)
        pos, owner = gather_ranges(first, first + count.take(cb))
        ri = quad_of.take(box.take(owner))
    pj = table.order.take(pos)
    # Rows by take, not [] (the same rows at a tenth of the cost of fancy indexing a 2-D array).
    ok = codes_agree(ref.code.take(ri, 0), ref.length.take(ri), probe.code.take(pj, 0), probe.length_rows(pj), params)
    sel = ok.nonzero()[0]
    return ri.take(sel), pj.take(sel)


def merge_left(hay: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """np.searchsorted(hay, needles) ('left') where both are sorted: one stable sort of the two runs
    (timsort merges them in linear time) in place of a binary search per needle (a quarter of the
    instructions at verify's 4,800 reference box keys). Needles first, so a needle sorts before an
    equal hay value: the hay values before it are those below it."""
    m = len(needles)
    order = np.concatenate([needles, hay]).argsort(kind="stable")
    return (order < m).nonzero()[0] - np.arange(m)


def codes_agree(ref_code: np.ndarray, ref_length: np.ndarray, probe_code: np.ndarray, probe_length: np.ndarray,
                params: MatchParams) -> np.ndarray:
    """Mask of candidate (reference quad, probe quad) rows that match: codes within ``code_eps`` in
    every coordinate and backbone lengths within the scale tolerance (the one test of a match)."""
    close = np.abs(ref_code - probe_code) <= params.code_eps  # (C, 4) bools, one byte each
    # np.all(close, axis=1): the row's four bytes all 1, read as one 32-bit word (no short-axis reduction)
    ok = close.view(np.uint32)[:, 0] == 0x01010101 if close.flags.c_contiguous else np.all(close, axis=1)
    ratio = probe_length / ref_length
    return ok & (ratio > 1 / params.scale_tol) & (ratio < params.scale_tol)


def build_quads_batch(xy: np.ndarray, n: np.ndarray, lo: float, hi: float, radius_factor: float):
    """:func:`build_quads` of many spot sets at once (vectorised over the batch).

    ``xy`` (B, M, 2) px, padded; ``n`` (B,) spots used of each row. Returns (owner (Q,) batch row,
    Quads) with each row's quads in the same order :func:`build_quads` gives them."""
    xy = np.asarray(xy, dtype=np.float64)
    bsz, m = xy.shape[:2]
    valid = np.arange(m)[None, :] < np.asarray(n)[:, None]
    empty = (np.zeros(0, np.int64), _empty())
    if bsz == 0 or m < 4:
        return empty
    dx = xy[:, :, None, 0] - xy[:, None, :, 0]
    dy = xy[:, :, None, 1] - xy[:, None, :, 1]
    d2 = dx * dx + dy * dy
    del dx, dy
    ok = (d2 >= lo * lo) & (d2 <= hi * hi) & valid[:, :, None] & valid[:, None, :]
    ok &= np.triu(np.ones((m, m), bool), 1)[None]
    bb, ii, jj = np.nonzero(ok)
    if len(bb) == 0:
        return empty
    z = xy[..., 0] + 1j * xy[..., 1]
    x, y = xy[..., 0], xy[..., 1]
    mx, my = (x[bb, ii] + x[bb, jj]) / 2, (y[bb, ii] + y[bb, jj]) / 2
    rad2 = d2[bb, ii, jj] * (radius_factor * radius_factor / 4.0)
    del d2, ok
    ex = x[bb] - mx[:, None]
    ey = y[bb] - my[:, None]
    inside = ex * ex + ey * ey < rad2[:, None]
    del ex, ey
    inside &= valid[bb]
    rows = np.arange(len(bb))
    inside[rows, ii] = False
    inside[rows, jj] = False
    counts = inside.sum(1)
    inside[counts > MAX_GROUP] = False
    pe, ke = np.nonzero(inside)
    if len(pe) < 2:
        return empty
    p, c, d = _pairs_within(pe, ke)  # grouped by pair, so by row too: build_quads' order
    if len(p) == 0:
        return empty
    owner = bb[p]
    a, b = ii[p], jj[p]
    za, zb, zc, zd = z[owner, a], z[owner, b], z[owner, c], z[owner, d]
    wc = (zc - za) / (zb - za)
    wd = (zd - za) / (zb - za)
    flip = (wc.real + wd.real) > 1.0
    wc = np.where(flip, 1 - wc, wc)
    wd = np.where(flip, 1 - wd, wd)
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    za, zb = np.where(flip, zb, za), np.where(flip, za, zb)
    swap = wc.real > wd.real
    wc, wd = np.where(swap, wd, wc), np.where(swap, wc, wd)
    c, d = np.where(swap, d, c), np.where(swap, c, d)
    code = np.stack([wc.real, wc.imag, wd.real, wd.imag], axis=1)
    vec = zb - za
    idx = np.stack([a, b, c, d], axis=1).astype(np.int32)
    return owner, Quads(idx, code, np.abs(vec), np.angle(vec))


def reference_keep(q: Quads, params: MatchParams) -> np.ndarray:
    """Mask of the quads a reference keeps: codes at least 2 x eps inside the canonical region."""
    e = params.code_eps
    # A code within eps of a canonical boundary would need probes to emit both variants
    # and still be ambiguous; dropping it costs little and keeps the index unique.
    return (q.code[:, 0] + q.code[:, 2] < 1 - 2 * e) & (q.code[:, 2] - q.code[:, 0] > 2 * e)
