"""1:N identification: vote through the code index, then verify the best candidates.

Each probe quad looks up the index cells its code may be in; every hit votes for an
item and a rotation (probe backbone direction minus the reference's). The items with
the most votes are re-ranked by their largest pair of adjacent rotation bins (genuine
hits agree on the rotation, chance hits do not), and the best few are verified 1:1.

The false-accept probability of an identification is the verified candidate's bound
multiplied by the number of items in the database: any of them might have been the
one to match by chance.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from glint.errors import MatchError
from glint.match.database import Database
from glint.match.index import angle_code
from glint.match.spots import SpotSet
from glint.match.verify import Result, prepare, verify_prepared

log = logging.getLogger(__name__)

VOTE_CANDIDATES = 64      # items kept after the raw vote count
VERIFY_CANDIDATES = 8     # items verified 1:1 (best rotation-consistent votes first)
MIN_VOTES = 2             # a single chance hit is not worth a verification
ROT_BINS = 16             # rotation bins of 22.5 degrees


@dataclass
class IdentifyResult:
    """``item``: the identified id or None; ``log10_far``: bound on the false-accept probability over the
    whole database; ``candidates``: [{item, votes, log10_far?, match?}] best first; ``result``: the 1:1
    Result of the accepted (or best) candidate."""

    item: str | None
    log10_far: float
    candidates: list = field(default_factory=list)
    result: Result | None = None
    hits: int = 0

    def to_dict(self) -> dict:
        d = {"item": self.item, "log10_far": round(float(self.log10_far), 3), "candidates": self.candidates,
             "hits": int(self.hits)}
        if self.result is not None:
            r = self.result.to_dict()
            d.update({"matched": r["matched"], "residual": r["residual"], "transform": r["transform"],
                      "reason": r["reason"]})
        return d


def vote(db: Database, probe_quads) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Candidate rows by rotation-consistent votes: (rows, consistent votes, raw votes, total hits)."""
    entries, qi = db.index.hits(probe_quads)
    if len(entries) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    rows = (entries >> 8).astype(np.int64)
    alive = db.alive
    ok = rows < len(alive)
    ok[ok] = alive[rows[ok]] == 1
    rows, entries, qi = rows[ok], entries[ok], qi[ok]
    raw = np.bincount(rows, minlength=len(alive))
    k = min(VOTE_CANDIDATES, int(np.count_nonzero(raw)))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), len(entries)
    top = np.argpartition(-raw, k - 1)[:k]
    top = top[raw[top] >= MIN_VOTES]
    if len(top) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), len(entries)
    lut = np.full(len(alive), -1, np.int64)
    lut[top] = np.arange(len(top))
    local = lut[rows]
    sel = local >= 0
    dtheta = (angle_code(probe_quads.angle[qi[sel]]) - (entries[sel] & 255).astype(np.int64)) & 255
    rbin = dtheta // (256 // ROT_BINS)
    hist = np.bincount(local[sel] * ROT_BINS + rbin, minlength=len(top) * ROT_BINS).reshape(len(top), ROT_BINS)
    consistent = (hist + np.roll(hist, -1, axis=1)).max(1)
    order = np.lexsort((top, -raw[top], -consistent))
    return top[order], consistent[order], raw[top][order], len(entries)


def identify(db: Database, probe: SpotSet, verify_candidates: int = VERIFY_CANDIDATES) -> IdentifyResult:
    """Identify the enrolled item shown by ``probe`` (None when no candidate verifies)."""
    if len(db) == 0:
        raise MatchError(f"database {db.path} is empty", hint="enroll items first: glint enroll --db DIR --item ID FILE")
    params = db.params
    pr = prepare(probe, params)
    rows, consistent, raw, n_hits = vote(db, pr.quads)
    penalty = math.log10(max(1, len(db)))
    cands, best, best_row = [], None, None
    for i, row in enumerate(rows):
        c = {"item": db.ids[row], "votes": int(consistent[i]), "raw_votes": int(raw[i])}
        if i < verify_candidates:
            res = verify_prepared(db.reference_at(int(row)), pr)
            c["log10_far"] = round(min(0.0, res.log10_far + penalty), 3)
            c["match"] = bool(res.match and res.log10_far + penalty <= params.log10_far_max)
            if best is None or (c["match"], -res.log10_far) > (best_match, -best.log10_far):
                best, best_row, best_match = res, row, c["match"]
        cands.append(c)
        if i >= 9:  # report at most ten candidates
            break
    if best is None:
        return IdentifyResult(None, 0.0, cands, None, n_hits)
    far = min(0.0, best.log10_far + penalty)
    item = db.ids[best_row] if best_match else None
    return IdentifyResult(item, far, cands, best, n_hits)
