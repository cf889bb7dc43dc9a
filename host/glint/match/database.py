"""Database: a directory of enrolled references plus the persistent 1:N code index.

Layout of ``DIR``::

    meta.json       format, frame size and the MatchParams every reference uses
    items.txt       one item id per row, append-only (row = line number)
    refs.bin        fixed-size reference records (memory-mapped): spots in 1/32 px, support, each
                    spot's localisation sigma and the item's noise scale (format 2)
    alive.u8        1 per live row, 0 once removed (a tombstone until ``rebuild``)
    index/          the quad-code index (glint.match.index)
    .lock           writers hold an exclusive flock on it

Reads are lock-free and thread-safe (they only touch arrays that writers replace, never
mutate); writes (add, remove, rebuild) take a thread lock and the file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from glint.errors import MatchError, UsageError
from glint.items import check_item_id
from glint.match.index import CodeIndex, bits_for, bucket_of, fingerprint_of, pack, reference_entries
from glint.match.params import CALIBRATED, MatchParams
from glint.match.reference import Reference
from glintcore.descriptor import SPOT_SCALE  # 1/32 px per unit of the spot records: the wire contract

log = logging.getLogger(__name__)

DB_FORMAT = 2
MAX_REF_SPOTS = 96
RECORD_V1 = np.dtype([("n", "<u2"), ("captures", "u1"), ("pad", "u1"),
                      ("xy", "<u2", (MAX_REF_SPOTS, 2)), ("support", "u1", (MAX_REF_SPOTS,))])
# Format 2 adds each spot's localisation sigma and the item's noise scale (glint.match.noise), both
# log-coded in a byte: sigma = SIGMA_UNIT * 2^(code / 24) px (0: unknown), scale = 2^((code - 64) / 32).
RECORD = np.dtype([("n", "<u2"), ("captures", "u1"), ("noise_scale", "u1"),
                   ("xy", "<u2", (MAX_REF_SPOTS, 2)), ("support", "u1", (MAX_REF_SPOTS,)),
                   ("sigma", "u1", (MAX_REF_SPOTS,))])
SIGMA_UNIT = 0.004  # px: code 1 .. 255 spans 0.004 .. 6.5 px in steps of 2.9 %


def sigma_code(sigma: np.ndarray) -> np.ndarray:
    return np.clip(np.round(24.0 * np.log2(np.maximum(np.asarray(sigma, np.float64), 1e-6) / SIGMA_UNIT)),
                   1, 255).astype(np.uint8)


def sigma_of_code(code: np.ndarray) -> np.ndarray:
    return SIGMA_UNIT * np.exp2(np.asarray(code, np.float64) / 24.0)


def scale_code(scale: float) -> int:
    return int(np.clip(round(32.0 * math.log2(max(scale, 1e-6)) + 64), 1, 255))
ENTRY_CHUNK = 20_000  # references coded per step of a rebuild (bounds the temporary memory)
# Decoded references kept with their verify quads and code boxes (computed once, about 100 KB each):
# a rescanned item skips decoding its record and coding its quads again.
REF_CACHE = 256


def to_record(ref: Reference) -> np.ndarray:
    rec = np.zeros((), RECORD)
    order = np.lexsort((-ref.flux, -ref.support))[:MAX_REF_SPOTS]
    n = len(order)
    rec["n"] = n
    rec["captures"] = min(255, ref.captures)
    rec["xy"][:n] = np.clip(np.round(ref.xy[order] * SPOT_SCALE), 0, 65535)
    rec["support"][:n] = np.clip(ref.support[order], 0, 255)
    # A stored reference's own codes (its sigma for verify adds the rounding variance): the record round-trips.
    sig = ref.record_sigma if ref.record_sigma is not None else ref.spot_sigma()
    rec["sigma"][:n] = sigma_code(sig[order])
    rec["noise_scale"] = scale_code(ref.noise_scale)
    return rec


def entries_of_records(recs: np.ndarray, rows: np.ndarray, params: MatchParams, width: int, height: int,
                       bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, packed entry) of the index quads of reference records ``recs`` stored at ``rows``."""
    xy = recs["xy"].astype(np.float64) / SPOT_SCALE
    owner, keys, low = reference_entries(xy, recs["n"].astype(np.int64), recs["support"], params, width, height)
    return bucket_of(keys, bits), pack(rows[owner], low, fingerprint_of(keys, bits))


def check_additions(items: list[str], refs: list) -> None:
    """Refuse an add whose ids are malformed or repeated, or whose references do not pair up."""
    if len(items) != len(refs):
        raise UsageError("items and references differ in number")
    for i in items:
        check_item_id(i)
    if len(set(items)) != len(items):
        raise UsageError("duplicate item ids in one add")


def append_rows(folder: Path, records: bytes, alive: bytes, items: list[str]) -> None:
    """Append rows to a database folder's three row files (records, alive flags, item ids)."""
    with open(folder / "refs.bin", "ab") as f:
        f.write(records)
    with open(folder / "alive.u8", "ab") as f:
        f.write(alive)
    with open(folder / "items.txt", "a") as f:
        f.write("".join(i + "\n" for i in items))


class Database:
    """Enrolled references and the 1:N index in directory ``path`` (created on first add)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self.params: MatchParams | None = None
        self.width = self.height = 0
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.records = np.zeros(0, RECORD)
        self.alive = np.zeros(0, np.uint8)
        self.index: CodeIndex | None = None
        self._refs: OrderedDict[int, Reference] = OrderedDict()
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path} is not a directory")
        self._load()

    # --- opening -------------------------------------------------------------------------
    def _load(self) -> None:
        # Rows, records or parameters may change: decode afresh. Emptied again once the new state
        # is in place, so that nothing a reader decoded from the old state meanwhile survives.
        self._refs = OrderedDict()
        try:
            self._load_state()
        finally:
            self._refs = OrderedDict()

    def _load_state(self) -> None:
        meta = self.path / "meta.json"
        if not meta.exists():
            return
        try:
            m = json.loads(meta.read_text())
            if m.get("format") == 1 and not getattr(self, "_in_write", False):
                self._upgrade_v1(m)
                return
            if m.get("format") != DB_FORMAT:
                raise ValueError(f"format {m.get('format')}")
            self.params = MatchParams.from_dict(m["params"])
            self.width, self.height = int(m["width"]), int(m["height"])
            self.ids = (self.path / "items.txt").read_text().splitlines() if (self.path / "items.txt").exists() else []
            n = len(self.ids)
            self.records = (np.memmap(self.path / "refs.bin", RECORD, "r", shape=(n,)) if n else np.zeros(0, RECORD))
            self.alive = (np.fromfile(self.path / "alive.u8", np.uint8, count=n) if n else np.zeros(0, np.uint8))
            if len(self.alive) != n:
                raise ValueError("alive map and items disagree")
        except (OSError, ValueError, KeyError) as e:
            raise MatchError(f"database {self.path} is unreadable ({e})") from None
        self.rows = {i: r for r, i in enumerate(self.ids) if self.alive[r]}
        self.index = CodeIndex(self.path, self.params)
        if self.index.stale and not getattr(self, "_in_write", False):
            log.warning("index of %s has an older format: rebuilding it", self.path)
            with self._writing():
                if self.index.stale:
                    self._rebuild_locked()

    def _upgrade_v1(self, meta: dict) -> None:
        """Rewrite a format-1 database's records in format 2 (spots' sigma unknown: the noise model's
        nominal), under the write lock; nothing else changes."""
        log.warning("database %s has format 1: adding the noise fields (format 2)", self.path)
        with self._lock, open(self.path / ".lock", "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                m = json.loads((self.path / "meta.json").read_text())
                if m.get("format") == 1:
                    old = np.fromfile(self.path / "refs.bin", RECORD_V1)
                    new = np.zeros(len(old), RECORD)
                    for k in ("n", "captures", "xy", "support"):
                        new[k] = old[k]
                    tmp = self.path / "refs.bin.tmp"
                    tmp.write_bytes(new.tobytes())
                    os.replace(tmp, self.path / "refs.bin")
                    m["format"] = DB_FORMAT
                    tmp = self.path / "meta.json.tmp"
                    tmp.write_text(json.dumps(m, indent=1, sort_keys=True))
                    os.replace(tmp, self.path / "meta.json")
            finally:
                fcntl.flock(lk, fcntl.LOCK_UN)
        self._load()

    def _init(self, ref: Reference) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.params, self.width, self.height = ref.params, ref.width, ref.height
        meta = {"format": DB_FORMAT, "width": ref.width, "height": ref.height, "params": ref.params.to_dict()}
        (self.path / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        self.index = CodeIndex(self.path, self.params)

    @contextlib.contextmanager
    def _writing(self):
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(self.path / ".lock", "a") as lk:
                fcntl.flock(lk, fcntl.LOCK_EX)
                self._in_write = True
                try:
                    self._load()  # another process may have written since we opened
                    yield
                finally:
                    self._in_write = False
                    fcntl.flock(lk, fcntl.LOCK_UN)

    # --- reading -------------------------------------------------------------------------
    def opened(self) -> tuple[MatchParams, CodeIndex]:
        """The parameters and code index, which exist from the first enrolment on (MatchError before)."""
        if self.params is None or self.index is None:
            raise MatchError(f"database {self.path} is empty", hint="enroll items first: glint enroll --db DIR --item ID FILE")
        return self.params, self.index

    def refresh(self) -> bool:
        """Follow references others added (glint.match.shared); a local directory has nothing to follow."""
        return False

    def close(self) -> None:
        """Release what the database holds open (nothing for a local directory)."""

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, item: str) -> bool:
        return item in self.rows

    def items(self) -> list[str]:
        return [self.ids[r] for r in sorted(self.rows.values())]

    def reference_at(self, row: int) -> Reference:
        """The reference stored at ``row``, decoded once and kept (``REF_CACHE`` most recent) with its
        quads and code boxes; its arrays are read-only, as it is shared by every caller."""
        cache = self._refs
        ref = cache.get(row)
        if ref is not None:
            with contextlib.suppress(KeyError):  # another thread evicted it meanwhile
                cache.move_to_end(row)
            return ref
        ref = self._decode(row)
        cache[row] = ref
        while len(cache) > REF_CACHE:
            with contextlib.suppress(KeyError):
                cache.popitem(last=False)
        return ref

    def _decode(self, row: int) -> Reference:
        rec = self.records[row]
        n = int(rec["n"])
        code = rec["sigma"][:n]
        support = rec["support"][:n].astype(np.int64)
        params, _ = self.opened()
        ref = Reference(rec["xy"][:n].astype(np.float64) / SPOT_SCALE, np.ones(n), support,
                        self.width, self.height, params, int(rec["captures"]),
                        noise_scale=2.0 ** ((int(rec["noise_scale"]) - 64) / 32.0) if rec["noise_scale"] else 1.0)
        if n and code.all():
            # The record's positions are rounded to 1/SPOT_SCALE px: an error of variance 1 / (12
            # SPOT_SCALE^2) per axis (0.009 px) that the in-memory reference does not have, added to
            # each spot's sigma (divided by the noise scale, which verify multiplies it by).
            q2 = 1.0 / (12.0 * SPOT_SCALE * SPOT_SCALE) / ref.noise_scale ** 2
            ref.record_sigma = sigma_of_code(code)
            ref.sigma = np.sqrt(ref.record_sigma ** 2 + q2)
        for a in (ref.xy, ref.flux, ref.support, ref.sigma, ref.record_sigma):
            if a is not None:
                a.setflags(write=False)
        return ref

    def reference(self, item: str) -> Reference:
        if not self.rows:
            raise MatchError(f"database {self.path} is empty", hint="enroll items first: glint enroll --db DIR --item ID FILE")
        row = self.rows.get(item)
        if row is None:
            raise MatchError(f"unknown item {item!r} in {self.path}")
        return self.reference_at(row)

    def index_nbytes(self) -> int:
        return self.index.nbytes() if self.index else 0

    # --- writing -------------------------------------------------------------------------
    def add(self, item: str, ref: Reference, replace: bool = False) -> None:
        """Add (or with ``replace`` re-enroll) one item."""
        self.add_many([item], [ref], replace=replace)

    def add_many(self, items: list[str], refs: list[Reference], replace: bool = False) -> None:
        """Add many items at once (one append, one index update); ids must be new unless ``replace``.
        The first reference fixes the database's frame size and MatchParams."""
        check_additions(items, refs)
        with self._writing():
            if self.params is None:
                self._init(refs[0])
            for r in refs:
                if (r.width, r.height) != (self.width, self.height):
                    raise MatchError(f"reference frame {r.width}x{r.height} differs from the database's "
                                     f"{self.width}x{self.height}")
            # Quads are recomputed from the spots with the database's parameters (records hold spots only).
            dup = [i for i in items if i in self.rows]
            if dup and not replace:
                raise MatchError(f"item {dup[0]!r} is already enrolled", hint="use --replace to re-enroll it")
            if dup:
                self._tombstone([self.rows[i] for i in dup])
            first = len(self.ids)
            if first + len(items) > (1 << 24):
                raise MatchError("database is full (16.7M rows)", hint="rebuild to drop removed items")
            recs = np.stack([to_record(r) for r in refs]) if refs else np.zeros(0, RECORD)
            append_rows(self.path, recs.tobytes(), b"\x01" * len(items), items)
            self._load()
            self._index_added(first, len(items))
            log.info("added %d item(s) to %s", len(items), self.path)

    def _index_added(self, first: int, n: int) -> None:
        """Index rows ``first .. first+n`` just appended: as a delta, or a rebuild where the base
        index is empty and would need other bits, or the delta has grown past its share."""
        params, idx = self.opened()
        new_total = len(idx.entries) + len(idx.delta_entries) + n * params.index_codes
        if len(idx.entries) == 0 and bits_for(new_total) != idx.bits or idx.needs_rebuild():
            self._rebuild_locked()
            return
        b, e = self._entries(range(first, first + n), idx.bits)
        idx.add_delta(b, e)
        if idx.needs_rebuild():
            self._rebuild_locked()

    def remove(self, item: str) -> None:
        with self._writing():
            row = self.rows.get(item)
            if row is None:
                raise MatchError(f"unknown item {item!r} in {self.path}")
            self._tombstone([row])
            self._load()

    def _tombstone(self, rows: list[int]) -> None:
        with open(self.path / "alive.u8", "r+b") as f:
            for r in rows:
                f.seek(r)
                f.write(b"\x00")

    def _entries(self, rows, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, entry) of the index quads of these rows, computed in vectorised batches."""
        rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
        params, _ = self.opened()
        bs, es = [], []
        for s in range(0, len(rows), ENTRY_CHUNK):
            b, e = entries_of_records(self.records[rows[s:s + ENTRY_CHUNK]], rows[s:s + ENTRY_CHUNK],
                                      params, self.width, self.height, bits)
            bs.append(b)
            es.append(e)
        if not bs:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        return np.concatenate(bs), np.concatenate(es)

    def rebuild(self) -> None:
        """Drop removed rows, recompute every index entry, and write a fresh base index."""
        with self._writing():
            self._rebuild_locked()

    def _rebuild_locked(self) -> None:
        keep = np.nonzero(self.alive)[0]
        if len(keep) != len(self.ids):  # compact: rewrite the rows without the removed ones
            recs = np.array(self.records[keep])
            ids = [self.ids[r] for r in keep]
            for name, data in (("refs.bin", recs.tobytes()), ("alive.u8", b"\x01" * len(ids)),
                               ("items.txt", "".join(i + "\n" for i in ids).encode())):
                tmp = self.path / (name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, self.path / name)
            self._load()
        params, index = self.opened()
        bits = bits_for(len(self.ids) * params.index_codes)
        b, e = self._entries(range(len(self.ids)), bits)
        index.write_base(b, e, bits)
        log.info("rebuilt index of %s: %d items, %d entries", self.path, len(self.ids), len(e))

    def set_calibration(self, constants: dict) -> None:
        """Store a scanner calibration (glint.match.scanner: noise_c, noise_floor, far_offset,
        far_chance_scale, far_model) in the database's parameters: every later decision uses them."""
        import dataclasses

        bad = [k for k in constants if k not in CALIBRATED]
        if bad:
            raise UsageError(f"not a calibration constant: {bad[0]}", hint="one of: " + ", ".join(CALIBRATED))
        with self._writing():
            if self.params is None:
                raise MatchError(f"database {self.path} is empty", hint="enroll one item first, or use "
                                 "glint enroll --calibration FILE")
            m = json.loads((self.path / "meta.json").read_text())
            params = dataclasses.replace(self.params, **constants)
            m["params"] = params.to_dict()
            tmp = self.path / "meta.json.tmp"
            tmp.write_text(json.dumps(m, indent=1, sort_keys=True))
            os.replace(tmp, self.path / "meta.json")
            self._load()

    def write_bulk_index(self, buckets: np.ndarray, entries: np.ndarray, bits: int) -> None:
        """Install precomputed base entries (bulk loaders, e.g. the benchmark)."""
        with self._writing():
            self.opened()[1].write_base(buckets, entries, bits)
