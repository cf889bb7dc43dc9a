"""The persistent 1:N index of quad codes: hashed cells, memory-mapped, incremental.

Every reference quad is filed under the hash bucket of its code's cell (cells are
2 x eps wide, so a probe code's eps-box overlaps 16 of them). An entry is one uint32:
the reference's row << 8 | the quad's backbone direction (256 steps), so a hit says
which item and by how much the probe is rotated; genuine hits agree on the rotation.

On disk (``DIR/index/``): ``base_offsets.u32`` (buckets + 1, CSR) and
``base_entries.u32`` sorted by bucket, memory-mapped read-only; ``delta.npz``, the
entries of items added since the last rebuild (small, sorted, loaded in memory).
Removal is a tombstone in the database's ``alive`` map; ``rebuild`` folds the delta in
and drops removed rows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from glint.errors import MatchError
from glint.match.codes import Quads, box_keys, cell_keys, gather_ranges
from glint.match.params import MatchParams

log = logging.getLogger(__name__)

MAX_ROWS = 1 << 24        # 24 bits of row in an entry
ANGLE_STEPS = 256
MIN_BUCKET_BITS = 20      # a probe reads ~75k cells: buckets must far outnumber them
MAX_BUCKET_BITS = 26
ENTRIES_PER_BUCKET = 4    # target load of a bucket
DELTA_REBUILD_FRACTION = 0.1
DELTA_REBUILD_MIN = 200_000
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def bucket_of(keys: np.ndarray, bits: int) -> np.ndarray:
    """Fibonacci hash of int64 cell keys onto 2**bits buckets."""
    with np.errstate(over="ignore"):
        h = keys.astype(np.uint64) * _GOLDEN
    return (h >> np.uint64(64 - bits)).astype(np.int64)


def angle_code(angle: np.ndarray) -> np.ndarray:
    return (np.round(angle / (2 * np.pi) * ANGLE_STEPS).astype(np.int64)) & (ANGLE_STEPS - 1)


def entries_for(row: int, q: Quads, params: MatchParams, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, entry) arrays of one reference's index quads."""
    if row >= MAX_ROWS:
        raise MatchError(f"index is full ({MAX_ROWS} rows); rebuild to compact removed items")
    buckets = bucket_of(cell_keys(q.code, params), bits)
    entries = (np.int64(row) << 8) | angle_code(q.angle)
    return buckets, entries.astype(np.uint32)


def bits_for(n_entries: int) -> int:
    want = max(1, n_entries // ENTRIES_PER_BUCKET)
    return int(min(MAX_BUCKET_BITS, max(MIN_BUCKET_BITS, int(want).bit_length())))


class CodeIndex:
    """The index files of one database directory (reads are lock-free; writers hold the db lock)."""

    def __init__(self, root: Path, params: MatchParams):
        self.dir = Path(root) / "index"
        self.params = params
        self.bits = MIN_BUCKET_BITS
        self.offsets = np.zeros((1 << MIN_BUCKET_BITS) + 1, np.uint32)
        self.entries = np.zeros(0, np.uint32)
        self.delta_buckets = np.zeros(0, np.int64)
        self.delta_entries = np.zeros(0, np.uint32)
        self.load()

    # --- files -----------------------------------------------------------------------------
    def load(self) -> None:
        meta = self.dir / "meta.json"
        if not meta.exists():
            return
        try:
            m = json.loads(meta.read_text())
            self.bits = int(m["bits"])
            n = int(m["entries"])
            self.offsets = np.memmap(self.dir / "base_offsets.u32", np.uint32, "r", shape=((1 << self.bits) + 1,))
            self.entries = (np.memmap(self.dir / "base_entries.u32", np.uint32, "r", shape=(n,))
                            if n else np.zeros(0, np.uint32))
            d = self.dir / "delta.npz"
            if d.exists():
                z = np.load(d)
                self.delta_buckets, self.delta_entries = z["buckets"], z["entries"]
            else:
                self.delta_buckets, self.delta_entries = np.zeros(0, np.int64), np.zeros(0, np.uint32)
        except (OSError, ValueError, KeyError) as e:
            raise MatchError(f"index in {self.dir} is unreadable ({e})", hint="run 'glint identify --rebuild'") from None

    def write_base(self, buckets: np.ndarray, entries: np.ndarray, bits: int) -> None:
        """Replace the base with these entries (buckets computed for ``bits``) and clear the delta."""
        self.bits = bits
        self.dir.mkdir(parents=True, exist_ok=True)
        bits = self.bits
        order = np.argsort(buckets, kind="stable")
        counts = np.bincount(buckets, minlength=1 << bits)
        offsets = np.zeros((1 << bits) + 1, np.uint64)
        np.cumsum(counts, out=offsets[1:])
        if offsets[-1] >= 1 << 32:
            raise MatchError("index too large for 32-bit offsets")
        self._atomic_write("base_offsets.u32", offsets.astype(np.uint32))
        self._atomic_write("base_entries.u32", entries[order].astype(np.uint32))
        (self.dir / "delta.npz").unlink(missing_ok=True)
        self._atomic_text("meta.json", json.dumps({"bits": bits, "entries": int(len(entries))}))
        self.load()

    def add_delta(self, buckets: np.ndarray, entries: np.ndarray) -> None:
        b = np.concatenate([self.delta_buckets, buckets])
        e = np.concatenate([self.delta_entries, entries.astype(np.uint32)])
        order = np.argsort(b, kind="stable")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "delta.tmp.npz"
        np.savez(tmp, buckets=b[order], entries=e[order])
        os.replace(tmp, self.dir / "delta.npz")
        if not (self.dir / "meta.json").exists():
            self._atomic_write("base_offsets.u32", np.zeros((1 << self.bits) + 1, np.uint32))
            self._atomic_text("meta.json", json.dumps({"bits": self.bits, "entries": 0}))
        self.load()

    def needs_rebuild(self) -> bool:
        return len(self.delta_entries) > max(DELTA_REBUILD_MIN, DELTA_REBUILD_FRACTION * len(self.entries))

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
    def hits(self, q: Quads) -> tuple[np.ndarray, np.ndarray]:
        """All entries filed under any cell a probe quad's eps-box overlaps.

        Returns (entries uint32, probe quad index of each hit)."""
        if len(q) == 0:
            return np.zeros(0, np.uint32), np.zeros(0, np.int64)
        keys = box_keys(q.code, self.params)                    # (Q, 16)
        owner_q = np.repeat(np.arange(len(q)), 16)
        out_e, out_q = [], []
        b = bucket_of(keys.ravel(), self.bits)
        if len(self.entries):
            pos, own = gather_ranges(self.offsets[b].astype(np.int64), self.offsets[b + 1].astype(np.int64))
            out_e.append(self.entries[pos])
            out_q.append(owner_q[own])
        if len(self.delta_entries):
            lo = np.searchsorted(self.delta_buckets, b, "left")
            hi = np.searchsorted(self.delta_buckets, b, "right")
            pos, own = gather_ranges(lo, hi)
            out_e.append(self.delta_entries[pos])
            out_q.append(owner_q[own])
        if not out_e:
            return np.zeros(0, np.uint32), np.zeros(0, np.int64)
        return np.concatenate(out_e), np.concatenate(out_q)
