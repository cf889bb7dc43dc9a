"""1:N identification: geometric votes through the code index, then verify the best candidates.

Each probe quad in the index region looks up the cells its code may be in; every hit
pairs it with a reference quad and so gives a whole similarity transform: rotation,
scale, and where the reference frame's centre lands in the probe. A hit votes for
(item, rotation bin, landing-point bin); the hits of the genuine item agree and pile up
in one bin, chance hits of other items scatter (generalised Hough transform). Two grids
offset by half a bin catch a cluster that straddles a bin edge. Items are ranked by
their best bin, and the best few are verified 1:1 until one matches.

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
from glint.match.codes import Quads
from glint.match.database import Database
from glint.match.index import GEOM_MASK, entry_rows, fill_region, lookup_quads, unpack_geometry
from glint.match.params import MatchParams
from glint.match.spots import SpotSet
from glint.match.verify import Probe, Result, Score, prepare, score_prepared, verify_prepared

log = logging.getLogger(__name__)

VOTE_CANDIDATES = 16      # items ranked by their best geometric bin
VERIFY_CANDIDATES = 8     # items verified 1:1 at most (until one matches)
MIN_VOTES = 4             # distinct spots - 3: two quads sharing at most two spots
ROT_BINS = 32             # rotation bins of 11.25 degrees
SHIFT_BIN = 32.0          # px: landing-point bins (seed errors are a few px at the frame edge)
SHIFT_SPAN = 4096         # px range of landing points kept (probe frame +- margin)
SPOT_IDS = 1 << 8         # probe spot ids fit in this many
REPORT = 10               # candidates listed in the result
SECOND_PASS = True        # nothing matched: look up the fill band too (sparse references' extra index quads)
SECOND_MIN_VOTES = 1      # ... its candidates: bins of this many votes (two quads agreeing: 2 or more)
SECOND_MIN_HITS = 3       # ... then rows hit at least this often, whatever their geometry
SECOND_CANDIDATES = 8     # ... scored at most


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


def _best_bins(rows: np.ndarray, theta: np.ndarray, land: np.ndarray, spots: np.ndarray, offset: float,
               min_votes: int = MIN_VOTES):
    """(row, votes) of every bin holding hits of two or more quads and at least ``min_votes`` votes,
    grid shifted by ``offset`` bins.

    The votes of a bin are the distinct probe spots of its quads, less three: one quad scores 1,
    two unrelated quads 5. Quads sharing spots share their chance code matches (and a backbone
    shares its whole transform), so counting spots rather than quads keeps such clusters low."""
    tb = np.floor(theta * (ROT_BINS / (2 * math.pi)) + offset).astype(np.int64) % ROT_BINS
    half = SHIFT_SPAN // 2
    xb = np.floor((np.clip(land.real, -half, half - 1) + half) / SHIFT_BIN + offset).astype(np.int64)
    yb = np.floor((np.clip(land.imag, -half, half - 1) + half) / SHIFT_BIN + offset).astype(np.int64)
    nbin = int(SHIFT_SPAN / SHIFT_BIN) + 2
    key = ((rows * ROT_BINS + tb) * nbin + xb) * nbin + yb
    uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    multi = cnt[inv] >= 2
    if not multi.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    combo = np.unique((key[multi][:, None] * SPOT_IDS + spots[multi]).ravel()) // SPOT_IDS
    start = np.r_[0, np.nonzero(combo[1:] != combo[:-1])[0] + 1]
    votes = np.diff(np.r_[start, len(combo)]) - 3
    good = votes >= min_votes
    return combo[start[good]] // (ROT_BINS * nbin * nbin), votes[good]


def _hits(db: Database, probe: Probe, look: np.ndarray, widen: int = 1):
    """(rows, entries, probe quad of each hit) of the index entries the probe quads ``look`` hit at
    ``widen`` x the index tolerance."""
    q = probe.quads
    _, index = db.opened()
    entries, qi = index.hits(q.code[look], widen)
    return entry_rows(entries), entries, look[qi]


def _consistent(db: Database, probe: Probe, rows: np.ndarray, entries: np.ndarray, qi: np.ndarray,
                min_votes: int = MIN_VOTES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows by their best geometric bin of at least ``min_votes``: (rows, votes, raw hits of the row),
    best first (votes, then the row), at most VOTE_CANDIDATES."""
    none = np.zeros(0, np.int64)
    if len(rows) == 0:
        return none, none, none
    alive = db.alive
    # Only items hit at least twice can hold a two-quad bin: a linear-time filter that leaves the
    # sorting of the Hough step a small fraction of the hits in a large database.
    per_row = np.bincount(rows, minlength=len(alive))
    ok = per_row[rows] >= 2
    ok[ok] = alive[rows[ok]] == 1
    rows, entries, qi = rows[ok], entries[ok], qi[ok]
    if len(rows) == 0:
        return none, none, none
    params, _ = db.opened()
    q = probe.quads
    ang_r, len_r, mid_r = unpack_geometry(entries & GEOM_MASK, params, db.width, db.height)
    pxy = probe.spots.xy
    za, zb = pxy[q.idx[qi, 0], 0] + 1j * pxy[q.idx[qi, 0], 1], pxy[q.idx[qi, 1], 0] + 1j * pxy[q.idx[qi, 1], 1]
    theta = q.angle[qi] - ang_r
    # The similarity of this quad pair maps the reference frame's centre to ``land``.
    rot = (q.length[qi] / len_r) * np.exp(1j * theta)
    land = (za + zb) / 2 + rot * (complex(db.width / 2, db.height / 2) - mid_r)
    spots = q.idx[qi].astype(np.int64)
    r0, c0 = _best_bins(rows, theta, land, spots, 0.0, min_votes)
    r1, c1 = _best_bins(rows, theta, land, spots, 0.5, min_votes)
    r, c = np.concatenate([r0, r1]), np.concatenate([c0, c1])
    if len(r) == 0:
        return none, none, none
    order = np.lexsort((-c, r))
    r, c = r[order], c[order]
    first = np.r_[True, r[1:] != r[:-1]]
    r, c = r[first], c[first]
    best = np.lexsort((r, -c))[:VOTE_CANDIDATES]
    r, c = r[best], c[best]
    return r, c, per_row[r]


def _beyond_chance(hits: int, n: int) -> int:
    """The fewest hits (at least SECOND_MIN_HITS) that fewer than one of ``n`` references would get by
    chance when ``hits`` hits fall at random (Poisson), so that the rows hit most stand out at any size."""
    lam = hits / max(1, n)
    pmf = math.exp(-lam)
    tail = 1.0 - pmf
    c = 1
    while c < SECOND_MIN_HITS or n * tail >= 1.0:
        pmf *= lam / c
        tail -= pmf
        c += 1
        if tail <= 0.0 or c > 1000:
            break
    return c


def vote(db: Database, probe: Probe, widen: int = 1, fill: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Candidate rows by geometrically consistent votes: (rows, consistent votes, raw votes, total hits).
    The probe's quads in the core index region (with ``fill``: the fill band too) are looked up at
    ``widen`` x the index tolerance."""
    params, _ = db.opened()
    rows, entries, qi = _hits(db, probe, lookup_quads(probe.quads, params, widen, fill), widen)
    r, c, raw = _consistent(db, probe, rows, entries, qi)
    return r, c, raw, len(rows)


def second_lookup(q: Quads, params: MatchParams) -> np.ndarray:
    """Positions of the probe quads the second pass looks up: the fill band's (up to its top plus the
    index tolerance) that the first pass (``lookup_quads``: the core region plus the tolerance) did not."""
    x = q.code[:, 0]
    return np.nonzero((x >= params.index_region + params.index_eps) & (x < fill_region(params) + params.index_eps))[0]


def second_candidates(db: Database, probe: Probe, first: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The second pass's candidates (rows, votes, raw hits, hits it looked up): the probe's quads of the
    fill band not looked up by the first pass (sparse references' extra index quads), voted together
    with the first pass's hits ``first`` (rows, entries, quads; looked up again when None), ranked by
    their best bin down to SECOND_MIN_VOTES (weaker evidence than a first-pass candidate's), then the
    rows hit more often than chance would hit any of the database's references. Its cost does not grow with the tolerance:
    no cell is looked up twice and every candidate is bounded (SECOND_CANDIDATES scored)."""
    params, _ = db.opened()
    q = probe.quads
    if first is None:
        first = _hits(db, probe, lookup_quads(q, params))
    rows2, entries2, qi2 = _hits(db, probe, second_lookup(q, params))
    rows = np.concatenate([first[0], rows2])
    entries = np.concatenate([first[1], entries2])
    qi = np.concatenate([first[2], qi2])
    r, c, raw = _consistent(db, probe, rows, entries, qi, SECOND_MIN_VOTES)
    if len(rows):
        # Rows hit most often, whatever their geometry (codes moved by more than the index tolerance
        # leave a genuine item a few scattered hits): bounded by SECOND_CANDIDATES in the vote order.
        per_row = np.bincount(rows, minlength=len(db.alive))
        per_row[r] = 0
        top = np.flatnonzero(per_row >= _beyond_chance(len(rows), int(db.alive.sum())))
        top = top[db.alive[top] == 1]
        top = top[np.lexsort((top, -per_row[top]))][:SECOND_CANDIDATES]
        r = np.concatenate([r, top])
        c = np.concatenate([c, np.zeros(len(top), np.int64)])
        raw = np.concatenate([raw, per_row[top]])
    return r, c, raw, len(rows2)


def identify(db: Database, probe: SpotSet, verify_candidates: int = VERIFY_CANDIDATES,
             searched: int | None = None) -> IdentifyResult:
    """Identify the enrolled item shown by ``probe`` (None when no candidate verifies). ``searched``:
    the number of references the search covers, when more than this database's (several databases
    searched for one probe); the 1:N penalty is log10 of it."""
    if len(db) == 0:
        raise MatchError(f"database {db.path} is empty", hint="enroll items first: glint enroll --db DIR --item ID FILE")
    params, _ = db.opened()
    pr = prepare(probe, params)
    first = _hits(db, pr, lookup_quads(pr.quads, params))
    n_hits = len(first[0])
    rows, consistent, raw = _consistent(db, pr, *first)
    penalty = math.log10(max(1, len(db), searched or 0))
    cands: list[dict] = []
    state: dict = {"best": None, "row": -1, "match": False}
    _verify_candidates(db, pr, rows, consistent, raw, verify_candidates, penalty, cands, state)
    if not state["match"] and SECOND_PASS:
        # Second pass (nothing matched: a sparse reference, or a probe whose codes moved more than
        # the index tolerance): the fill band, weaker geometric evidence and the most-hit rows;
        # candidates already verified are skipped.
        rows2, consistent2, raw2, hits2 = second_candidates(db, pr, first)
        n_hits += hits2
        seen = {c["item"] for c in cands}
        new = np.array([db.ids[r] not in seen for r in rows2], bool)
        _verify_candidates(db, pr, rows2[new], consistent2[new], raw2[new], min(verify_candidates, SECOND_CANDIDATES),
                           penalty, cands, state)
    best, best_row, best_match = state["best"], state["row"], state["match"]
    if best is None:
        return IdentifyResult(None, 0.0, cands[:REPORT], None, n_hits)
    if isinstance(best, Score):
        best = verify_prepared(db.reference_at(int(best_row)), pr, best)
    far = min(0.0, best.log10_far + penalty)
    item = db.ids[best_row] if best_match else None
    return IdentifyResult(item, far, cands[:REPORT], best, n_hits)


def _verify_candidates(db: Database, pr: Probe, rows: np.ndarray, consistent: np.ndarray, raw: np.ndarray,
                       verify_candidates: int, penalty: float, cands: list, state: dict) -> None:
    """Score (and where beyond chance with the 1:N penalty, verify) up to ``verify_candidates`` of
    ``rows`` in vote order, stopping at the first match; list them in ``cands``; keep the best in ``state``."""
    params = db.params
    assert params is not None
    for i, row in enumerate(rows):
        c = {"item": db.ids[row], "votes": int(consistent[i]), "raw_votes": int(raw[i])}
        if i < verify_candidates:
            ref = db.reference_at(int(row))
            sc = score_prepared(ref, pr)
            # A candidate not beyond chance with the 1:N penalty cannot match whatever its refit
            # finds: its score decides its place, and only the one reported is refitted (below).
            res: Result | Score = verify_prepared(ref, pr, sc) if sc.log10_far + penalty <= params.log10_far_max else sc
            c["log10_far"] = round(min(0.0, res.log10_far + penalty), 3)
            c["match"] = bool(isinstance(res, Result) and res.match and res.log10_far + penalty <= params.log10_far_max)
            best = state["best"]
            if best is None or (c["match"], -res.log10_far) > (state["match"], -best.log10_far):
                state.update(best=res, row=row, match=c["match"])
        cands.append(c)
        if i + 1 >= REPORT:
            break
        if state["match"]:
            verify_candidates = 0  # identified: the rest are only listed


def identify_across(dbs: list[Database], probe: SpotSet) -> IdentifyResult:
    """Identify ``probe`` among several databases (e.g. one per scanner model or frame size): each
    is searched with the 1:N penalty of all their references together; the best match wins (or,
    with none, the best candidate's result)."""
    total = sum(len(db) for db in dbs)
    best = None
    for db in dbs:
        res = identify(db, probe, searched=total)
        if best is None or (res.item is not None, -res.log10_far) > (best.item is not None, -best.log10_far):
            best = res
    if best is None:
        raise MatchError("no database to search")
    return best
