"""Full verification of a stored ledger: recompute the tree, check every chain and checkpoint.

Stops at the first problem and names the row. Checks, in log order:

- rows are contiguous from 0 (a gap is a deleted row);
- each row decodes, and the index inside its leaf is its own (else it was moved: reordered);
- the leaf hashes to the stored hash (else the leaf was edited);
- the item's chain: the event's sequence follows and its ``prev`` is the hash of the
  item's previous event (else that previous row was edited, or an event is missing);
- the stored scan bytes still hash to the digest in the leaf;
- every stored reveal of sealed values (glint.ledger.sealed) matches the commitments in its leaf
  (a dropped reveal, an erasure, is no problem: the leaf keeps its commitments);
- the tree-hash cache equals the recomputed subtrees (a cache edit would forge proofs);
- at each checkpoint size, the recomputed root equals the signed root;
- at the end: as many rows as acknowledged and as signed; chain heads match.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from glint.errors import VerificationError
from glint.ledger import events as ev
from glint.ledger import merkle, sealed
from glint.ledger.note import Checkpoint, Verifier, open_checkpoint
from glint.ledger.store import Store

_log = logging.getLogger(__name__)

CHUNK = 4096


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a full verification; ``row`` names the first bad row when known."""

    ok: bool
    size: int
    items: int
    checkpoints: int
    problem: str = ""
    row: int | None = None


class _Problem(Exception):
    def __init__(self, row, msg):
        super().__init__(msg)
        self.row = row
        self.msg = msg


def verify_store(store: Store, verifier: Verifier | None = None):
    """Return a VerifyReport; ``ok`` False names the first bad row."""
    acked = store.size()
    cps = store.checkpoints()
    heads: dict[str, tuple[int, bytes, int]] = {}
    try:
        if verifier is None:
            vkey = store.meta("log_vkey")
            verifier = Verifier(vkey) if vkey else None
        signed = _open_checkpoints(cps, verifier)
        n, made = _scan_rows(store, signed, heads)
        if n < acked:
            raise _Problem(n, f"row {n} is missing (deleted): {acked} events were acknowledged, {n} rows remain")
        if n > acked:
            raise _Problem(acked, f"row {acked} was inserted: only {acked} events were acknowledged")
        beyond = [cp for cp in signed if cp.size > n]
        if beyond:
            raise _Problem(n, f"row {n} is missing (deleted): a checkpoint was signed at size {beyond[0].size}"
                              f" but the log has {n} rows")
        for h in store.heads():
            got = heads.get(h.item)
            if got is None or got[0] != h.seq or got[1] != h.head:
                last = got[2] if got else None
                raise _Problem(h.idx, f"item {h.item}: its chain head (event {h.seq}, row {h.idx}) is not in the log;"
                                      f" last event found is row {last}: row {h.idx} was deleted or edited")
        if len(heads) != sum(1 for _ in store.heads()):
            missing = sorted(set(heads) - {h.item for h in store.heads()})
            raise _Problem(None, f"item {missing[0]} has events but no chain head")
        # Last: the rest of the cache (the chain heads above name an edited last event more precisely).
        _check_cache(store, made)
    except _Problem as p:
        return VerifyReport(False, acked, len(heads), len(cps), p.msg, p.row)
    return VerifyReport(True, n, len(heads), len(cps))


def _open_checkpoints(cps, verifier) -> list[Checkpoint]:
    out = []
    for row in cps:
        try:
            if verifier is not None:
                cp = open_checkpoint(row.note, verifier)
            else:
                cp = Checkpoint.parse(row.note[: row.note.rfind("\n\n") + 1])
        except VerificationError as e:
            raise _Problem(None, f"checkpoint at size {row.size} does not verify: {e}") from None
        if cp.size != row.size or cp.root != row.root:
            raise _Problem(None, f"checkpoint row at size {row.size} disagrees with its signed note")
        out.append(cp)
    return out


def _scan_rows(store: Store, signed: list[Checkpoint], heads: dict) -> tuple[int, list]:
    cr = merkle.CompactRange()
    made: list[tuple[int, int, bytes]] = []
    cp_at = {cp.size: cp for cp in signed}
    prev_cp = 0
    if 0 in cp_at and cp_at[0].root != merkle.EMPTY_ROOT:
        raise _Problem(None, "checkpoint at size 0 does not have the empty root")
    expect = 0
    pending: dict[int, tuple[str, dict]] = {}   # sealed events since ``lo``, whose reveals are checked per chunk
    lo = 0
    for row in store.leaves():
        i = row.idx
        if i != expect:
            raise _Problem(expect, f"row {expect} is missing (deleted): the next stored row is {i}")
        try:
            e = ev.decode_leaf(row.leaf, strict=False)
        except VerificationError as err:
            raise _Problem(i, f"row {i} was edited: {err}") from None
        if e.index != i:
            raise _Problem(i, f"row {i} holds the event logged at index {e.index}: rows were reordered")
        if e.hash != row.hash:
            raise _Problem(i, f"row {i} was edited: its leaf no longer matches its stored hash")
        if e.item != row.item or e.seq != row.seq:
            raise _Problem(i, f"row {i} was edited: its item or sequence columns disagree with its leaf")
        if row.kind is not None and row.kind != e.kind:  # PostgreSQL's append_verifies relies on it
            raise _Problem(i, f"row {i} was edited: its kind column says {row.kind!r}, its leaf {e.kind!r}")
        _check_chain(e, heads)
        digest = e.data.get("scan")
        scan = row.scan
        if scan is not None and (not isinstance(digest, bytes) or hashlib.sha256(scan).digest() != digest):
            raise _Problem(i, f"row {i}: its stored scan bytes were edited")
        if sealed.SEALED_KEY in e.data:
            pending[i] = (e.kind, e.data)
        if i + 1 - lo >= CHUNK:
            _check_reveals(store, lo, i + 1, pending)
            pending, lo = {}, i + 1
        heads[e.item] = (e.seq, e.hash, i)
        made.extend(cr.append(e.hash))
        if len(made) >= CHUNK:
            _check_cache(store, made)
            made = []
        expect = i + 1
        cp = cp_at.get(expect)
        if cp is not None:
            if cr.root() != cp.root:
                raise _Problem(prev_cp, f"the tree of rows 0..{expect - 1} does not match the checkpoint signed"
                                        f" at size {expect}: a row in {prev_cp}..{expect - 1} was edited")
            prev_cp = expect
    _check_reveals(store, lo, 1 << 62, pending)
    return expect, made


def _check_reveals(store: Store, lo: int, hi: int, pending: dict) -> None:
    for idx, blob in sorted(store.reveal_range(lo, hi).items()):
        kd = pending.get(idx)
        if kd is None:
            raise _Problem(idx, f"row {idx}: a reveal is stored for it, but there is no such row or its leaf "
                                "seals nothing: the reveals were edited")
        try:
            sealed.check_reveal(kd[0], kd[1], sealed.decode(blob, idx), idx)
        except VerificationError as err:
            raise _Problem(idx, f"row {idx}: its stored reveal was edited: {str(err).split(': ', 1)[-1]}") from None


def _check_chain(e: ev.Event, heads: dict) -> None:
    h = heads.get(e.item)
    i = e.index
    if h is None:
        if e.seq != 0:
            raise _Problem(i, f"row {i}: item {e.item} starts at event {e.seq}: its earlier events were deleted")
        return
    seq, hsh, at = h
    if e.seq != seq + 1:
        if e.seq <= seq:
            raise _Problem(i, f"row {i}: item {e.item} event {e.seq} comes after event {seq} (row {at}):"
                              " rows were reordered")
        raise _Problem(i, f"row {i}: item {e.item} jumps from event {seq} (row {at}) to {e.seq}:"
                          " an event was deleted")
    if e.prev != hsh:
        raise _Problem(at, f"row {at} was edited: the next event of item {e.item} (row {i}) links to a"
                           " different hash")


def _check_cache(store: Store, made) -> None:
    if not made:
        return
    got = store.get_nodes([(lv, ix) for lv, ix, _ in made])
    for lv, ix, h in made:
        if got.get((lv, ix)) != h:
            lo, hi = ix << lv, ((ix + 1) << lv) - 1
            raise _Problem(lo, f"tree-hash cache node ({lv}, {ix}) over rows {lo}..{hi} was edited or deleted")
