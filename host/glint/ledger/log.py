"""The ledger: custody events appended to a Merkle transparency log, signed checkpoints, proofs.

Typical use (the host companion calls this as a library)::

    keys = Keys.load(create=True)                  # issuer (P-256) and log (Ed25519) keys
    with Ledger.open(path, keys=keys) as led:
        led.register_item(item, brand="ACME", provenance={"class": "factory"})
        led.add_coating(item, "c1", ref=digest)
        a = led.record_verify(item, "pass", fap=1e-9, device="a1b2..", operator="ana",
                              location="Paris", scan=signed_scan_bytes)
        cert = led.issue_certificate(a.index)

Every append returns once the commit is durable (inside ``Ledger.sync_later()``: once
committed, durable at ``wait_durable()``). On SQLite one process writes a ledger at
a time (an exclusive lock file beside the database); any number may read. On PostgreSQL
(``Ledger.open("postgresql://...")``) any number of hosts append to the one log: one
sequence row orders them (glint.ledger.pgstore).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import time as _time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from cbor2 import loads as _cbor2_loads

from glint.db import is_url
from glint.errors import LedgerError, UsageError, VerificationError
from glint.ledger import events as ev
from glint.ledger import merkle, sealed
from glint.ledger.keys import Keys, glint_home
from glint.ledger.note import Checkpoint, open_checkpoint, sign_checkpoint
from glint.ledger.store import Batch, CheckpointRow, LeafRow, SQLiteStore, Store
from glint.ledger.twins import ItemState, apply, replay
from glint.ledger.verify import VerifyReport, verify_store

_log = logging.getLogger(__name__)
_sha256 = hashlib.sha256

LEDGER_FILE = "ledger.db"
_UNREAD = object()  # a checkpoint row the caller did not read
STATE_CACHE_ITEMS = 4096


@dataclass(frozen=True)
class Appended:
    """An acknowledged (durable) event: its log index and leaf hash."""

    index: int
    leaf_hash: bytes
    item: str
    seq: int


@dataclass(frozen=True)
class EventSpec:
    """One event to append: kind, item, data; time defaults to now; scan bytes optional."""

    kind: str
    item: str
    data: dict
    time: int | None = None
    scan: bytes | None = None


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]
    root: bytes

    def verify(self) -> None:
        merkle.verify_inclusion(self.leaf_hash, self.index, self.tree_size, self.hashes, self.root)


def default_path(home=None) -> Path:
    return glint_home(home) / LEDGER_FILE


def default_target(home=None) -> str | Path:
    """Where the home's ledger lives: its PostgreSQL URL (config.toml ``database`` or
    ``$GLINT_DATABASE``), else ``<home>/ledger.db``."""
    from glint.home import Home

    return Home(glint_home(home)).ledger_target


def _with_scan(spec) -> tuple[dict, bytes | None, bytes | None]:
    """An event spec's data (a copy) with its scan's SHA-256 under "scan", the scan bytes, the digest."""
    data = dict(spec.data)
    scan = spec.scan
    if scan is None:
        return data, None, None
    scan = bytes(scan)
    digest = _sha256(scan).digest()
    data["scan"] = digest
    return data, scan, digest

class Ledger:
    """A transparency log of custody events over a ``Store``."""

    def __init__(self, store: Store, keys: Keys | None = None, readonly: bool = False):
        self.store = store
        self.keys = keys
        self.readonly = readonly
        self._states: OrderedDict[str, ItemState] = OrderedDict()
        self._lock_fd: int | None = None
        self._cr_edge: merkle.CompactRange | None = None  # the tree's right edge; writers only
        # Items whose cached state misses other hosts' verify events (a verify appended by the
        # server, _append_verifies): good for a verify's custody check, re-read before any other event.
        self._gappy: set[str] = set()
        self._edge_behind = False  # the right edge lags this host's own server-side appends
        self._recent: list[tuple] = []  # the last committed batch's leaves (Batch.leaves rows)
        # (note, log verifier key, checkpoint) of the last checkpoint note checked or signed here
        self._opened_note: tuple[str, str, Checkpoint] | None = None
        self._origin_known: str | None = None  # the origin the store was last seen to belong to
        if not readonly:
            self._load_edge()

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, keys: Keys | None = None,
             readonly: bool = False, durable: bool = True) -> "Ledger":
        """Open (creating if needed) the ledger at ``path``: a SQLite file, or a PostgreSQL
        URL (``postgresql://...``: glint.ledger.pgstore). Default: the home's (``$GLINT_HOME``),
        which is its ``database`` URL when configured, else ``<home>/ledger.db``.

        SQLite: a writer takes an exclusive lock; a second writer gets a LedgerError.
        PostgreSQL: any number of writers, on any number of hosts (one sequence row orders them).
        ``durable=False`` trades power-cut durability for speed (tests, bulk imports).
        """
        target = path if path is not None else default_target()
        if is_url(target):
            from glint.ledger.pgstore import PgStore

            return cls(PgStore(str(target), readonly=readonly, durable=durable), keys, readonly)
        path = Path(target)
        lock_fd = None
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(lock_fd)
                raise LedgerError(f"ledger {path} is open by another writer", "one writer at a time") from None
        try:
            led = cls(SQLiteStore(path, readonly=readonly, durable=durable), keys, readonly)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        led._lock_fd = lock_fd
        return led

    def close(self) -> None:
        self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def sync_later(self) -> Iterator[None]:
        """Appends inside return once committed, before they are durable: on SQLite the WAL is
        fsynced on a helper thread meanwhile (Store.deferred); on PostgreSQL they stay durable on
        return. Call ``wait_durable()`` before anyone learns of them (a certificate handed out, a
        scan reported): ``glint scan`` builds the certificate while its verify event is fsynced."""
        with self.store.deferred():
            yield

    def wait_durable(self) -> None:
        """Return once every append made in ``sync_later()`` is durable (LedgerError if it cannot be)."""
        self.store.wait_deferred()

    def _load_edge(self) -> None:
        """Rebuild the right edge of the tree from the stored cache; refuse a shrunken log."""
        size = self.store.size()
        keys = merkle.CompactRange.keys_for(size)
        got = self.store.get_nodes(keys)
        if len(got) != len(keys):
            raise LedgerError(f"tree-hash cache is incomplete at size {size}", "run 'glint ledger verify'")
        self._cr_edge = merkle.CompactRange(size, [got[k] for k in keys])
        last = self.store.latest_checkpoint()
        if last and last.size > size:
            raise LedgerError(f"the log has {size} events but a checkpoint was signed at {last.size}",
                              "rows were deleted: run 'glint ledger verify'")

    # ------------------------------------------------------------ tree facts

    @property
    def size(self) -> int:
        if self._cr_edge is None:
            return self.store.size()
        if self.store.shared:  # other hosts append too: follow them
            self._catch_up(self.store.size())
        return self._cr_edge.size

    def _catch_up(self, acked: int | None, fresh: list | None = None) -> None:
        """Extend this writer's right edge and cached item states with the events other
        hosts appended since (a shared store; ``acked`` read under the sequencer or committed;
        ``fresh``: those rows when the sequencer already fetched them)."""
        cr = self._cr_edge
        if acked is None or cr is None or acked == cr.size:
            return
        if acked < cr.size:
            raise LedgerError(f"the log has {acked} events, fewer than the {cr.size} this host saw",
                              "rows were deleted: run 'glint ledger verify'")
        states = self._states
        rows = fresh if fresh is not None and len(fresh) == acked - cr.size else self.store.leaves(cr.size, acked)
        for row in rows:
            if row.idx != cr.size:
                raise LedgerError(f"the log has no event at index {cr.size}", "run 'glint ledger verify'")
            cr.append(row.hash)
            st = states.get(row.item)
            # A state read outside the sequencer (_prefetch) may already hold this row: apply once.
            if st is not None and row.seq > st.events[-1].seq:
                try:
                    e = _stored_event(row)
                    if sealed.SEALED_KEY in e.data:  # the custody rules need none of the sealed values:
                        # opened as "[sealed]" (no reveal read under the sequencer); reads replay in full
                        e = dataclasses.replace(e, data=sealed.open_data(e.kind, e.data, None, sealed.ALL, e.index))
                    st = apply(st, e)
                    del st.events[:-1]
                except (UsageError, LedgerError, VerificationError):
                    states.pop(row.item, None)  # replayed from storage when next needed
        if cr.size != acked:
            raise LedgerError(f"the log has {cr.size} events stored but {acked} acknowledged",
                              "run 'glint ledger verify'")
        self._edge_behind = False  # ``acked`` was read after this host's last append

    def root(self, size: int | None = None) -> bytes:
        if size is None and self._cr_edge is not None:
            return self._cr_edge.root()
        size = self.size if size is None else size
        return merkle.tree_root(size, self.store.get_nodes)

    # ------------------------------------------------------------ appends

    def append_event(self, kind: str, item: str, data: dict, time: int | None = None,
                     scan: bytes | None = None) -> Appended:
        """Append one event in its own durable commit; return its index and leaf hash."""
        return self.append_batch([EventSpec(kind, item, data, time, scan)])[0]

    def append_batch(self, specs: Iterable[EventSpec]) -> list[Appended]:
        """Append events in one durable commit (all or none); return them in order.

        Each event is checked against its item's state first (registered, not retired,
        known coating, ...); one refused event refuses the whole batch.
        """
        return self._append(specs, isolate=False)

    def append_group(self, specs: Iterable[EventSpec],
                     keys: list[tuple[str, bytes] | None] | None = None) -> list[Appended | Exception]:
        """Append independent events in one durable commit; a refused event refuses only itself.

        Returns, in order, the ``Appended`` of each stored event or the exception that
        refused it (UsageError for a custody rule or bad field; nothing of it is stored).
        A failing commit (LedgerError) raises for all. This is what group commit uses
        (``glint.ledger.group.LedgerWorker``): events of unrelated callers share one
        fsync without one caller's mistake refusing another's event.

        ``keys`` (a store with ``upload_keys`` only): one (idempotency key, body hash) or None per
        spec; each stored event's key is written in the same commit (``Store.get_upload_keys``).
        """
        if keys is not None and not self.store.upload_keys:
            raise LedgerError("this ledger store does not keep upload keys")
        return self._append(specs, isolate=True, keys=keys)

    @property
    def _cr(self) -> merkle.CompactRange:
        if self._cr_edge is None:
            raise LedgerError("ledger is open read-only")
        return self._cr_edge

    def _append(self, specs: Iterable[EventSpec], isolate: bool, fast: bool = True,
                keys: list[tuple[str, bytes] | None] | None = None) -> list:
        if self.readonly:
            raise LedgerError("ledger is open read-only")
        cr = self._cr
        saved = None
        batch = Batch()
        out: list[Appended | Exception] = []
        touched: dict[str, ItemState | None] = {}
        stage = self._stage
        if self.store.shared:
            specs = list(specs)
            if (fast and specs and (isolate or len(specs) == 1) and all(s.kind == ev.VERIFY for s in specs)
                    and hasattr(self.store, "append_verifies")):
                return self._append_verifies(specs, isolate)
            self._prefetch(specs)
            if self._edge_behind:  # the server appended for this host: follow before the sequencer
                self._catch_up(self.store.size())
        try:
            # One transaction holding the sequencer on a shared store (nothing to hold for SQLite,
            # whose writer is alone): catch up, stage at the next indexes, commit, then durable.
            with self.store.sequenced(cr.size) as (acked, fresh):
                self._catch_up(acked, fresh)
                saved = (cr.size, list(cr.stack))
                if keys is not None:
                    for spec, key in zip(specs, keys, strict=True):
                        try:
                            a = stage(spec, batch, touched)
                        except Exception as e:  # this caller's outcome: nothing of the event was staged
                            out.append(e)
                            continue
                        out.append(a)
                        if key is not None:
                            batch.keys.append((key[0], key[1], a.index, a.leaf_hash))
                elif isolate:
                    for spec in specs:
                        try:
                            out.append(stage(spec, batch, touched))
                        except Exception as e:  # this caller's outcome: nothing of the event was staged
                            out.append(e)
                else:
                    for spec in specs:
                        out.append(stage(spec, batch, touched))
                batch.new_size = cr.size
                if batch.leaves:
                    self.store.commit(batch)
        except BaseException:
            if saved is not None:
                cr.size, cr.stack = saved
            for item in touched:
                self._states.pop(item, None)
            raise
        self._recent = batch.leaves  # committed: what issue_certificate reads without a round trip
        return out

    def _stage(self, spec: EventSpec, batch: Batch, touched: dict) -> Appended:
        """Check one event against its item's state and stage it into ``batch``.

        Raises before changing anything (cache, tree edge, batch) when the event is refused.
        """
        kind = spec.kind
        item = spec.item
        states = self._states
        # Cached states are of already validated item ids.
        state = states.get(item) if type(item) is str else None
        if state is None:
            item = ev.check_item_id(item)
            state = self._state(item)
        else:
            states.move_to_end(item)
        data, scan, digest = _with_scan(spec)
        ev.check_data(kind, data)
        leaf_data, _, rblob = sealed.seal_encoded(kind, data)
        touched[item] = state
        if state is None:
            seq, prev = 0, None
        else:
            last = state.events[-1]
            seq, prev = last.seq + 1, last.hash
        cr = self._cr
        index = cr.size
        t = int(_time.time()) if spec.time is None else ev.check_time(spec.time)
        raw = ev.encode_leaf(index, kind, item, seq, prev, t, leaf_data)
        if len(raw) > ev.MAX_LEAF_BYTES:  # the readers refuse larger leaves: never store one
            raise UsageError(f"{kind} event of {len(raw)} bytes is larger than a leaf may be "
                             f"({ev.MAX_LEAF_BYTES})")
        if rblob is not None and len(rblob) > ev.MAX_LEAF_BYTES:
            raise UsageError(f"the sealed values of this {kind} event ({len(rblob)} bytes) are larger than a leaf "
                             f"may be ({ev.MAX_LEAF_BYTES})")
        lh = _sha256(b"\x00" + raw).digest()
        state = apply(state, ev.Event(index, kind, item, seq, prev, t, data, raw, lh))
        # The writer's cache needs only the custody state and the chain head, not every event.
        if len(state.events) > 1:
            del state.events[:-1]
        self._remember(item, state)
        made = cr.append(lh)
        if made:
            batch.nodes.extend(made)
        batch.leaves.append((index, item, seq, raw, scan, digest, kind))
        batch.heads[item] = (seq, lh, index)
        if rblob is not None:
            batch.reveals.append((index, rblob))
        return Appended(index, lh, item, seq)

    def _append_verifies(self, specs: list[EventSpec], isolate: bool) -> list:
        """Verify events on a shared store, appended by the server under the sequencer
        (``PgStore.append_verifies``: one round trip, the sequencer held for the server's work
        only, nothing caught up or staged by this host meanwhile).

        Each event is checked here first (its fields, sealed values, and the custody rules,
        ``twins.apply``, against this host's cached state of its item); the server takes it
        only if every event of the item after that state is a verify (which changes no custody
        state: the check stands) and builds its leaf at the next index with the item's chain
        head; this host rebuilds the same bytes and checks the server's leaf hash. An event the
        server did not take (its item moved on, or this host has not its state) goes through
        the sequenced path (caught up, checked again, and refused with its reason if it is)."""
        out: list = [None] * len(specs)
        states = self._states
        self._prefetch([s for s in specs if s.item not in states])
        sent: list[tuple] = []
        slow: list[int] = []
        for k, spec in enumerate(specs):
            item = spec.item
            state = states.get(item) if type(item) is str else None
            if state is None:
                slow.append(k)
                continue
            try:
                data, scan, digest = _with_scan(spec)
                ev.check_data(ev.VERIFY, data)
                leaf_data, _, rblob = sealed.seal_encoded(ev.VERIFY, data)
                t = int(_time.time()) if spec.time is None else ev.check_time(spec.time)
                last = state.events[-1]
                # the custody rules, on a copy (a verify changes only these two of the state's fields)
                probe = ev.Event(last.index + 1, ev.VERIFY, item, last.seq + 1, last.hash, t, data, b"", b"")
                apply(dataclasses.replace(state, scans=[], events=[]), probe)
                pre = b"\xa8\x61d" + ev.dumps(leaf_data) + b"\x61i"
                if len(pre) + len(item.encode()) + _VERIFY_LEAF_OVERHEAD > ev.MAX_LEAF_BYTES or (
                        rblob is not None and len(rblob) > ev.MAX_LEAF_BYTES):
                    slow.append(k)  # refused there, with the size
                    continue
            except Exception as e:
                if not isolate:
                    raise
                out[k] = e
                continue
            sent.append((k, item, last.seq, pre, t, scan, digest, rblob, data))
        if sent:
            got = self.store.append_verifies(  # type: ignore[attr-defined]
                [r[1] for r in sent], [r[2] for r in sent], [r[3] for r in sent], [r[4] for r in sent],
                [r[5] for r in sent], [r[6] for r in sent], [r[7] for r in sent])
            self._edge_behind = True
            taken = set()
            for pos, index, seq, prev, lh in got:
                k, item, _, pre, t, _, _, _, data = sent[pos]
                taken.add(pos)
                raw = b"".join((pre, ev.dumps(index), _VERIFY_MID, ev.dumps(seq), b"\x61t", ev.dumps(t),
                                _VERIFY_ITEM, ev.dumps(item), b"\x64prev", ev.dumps(prev)))
                if _sha256(b"\x00" + raw).digest() != lh:
                    raise LedgerError(f"ledger: the server stored event {index} with other bytes than this "
                                      "host made", "run 'glint ledger verify'")
                out[k] = Appended(index, lh, item, seq)
                state = states.get(item)
                if state is None:
                    continue
                try:
                    if state.events[-1].hash != prev:
                        self._gappy.add(item)  # other hosts' verifies came between
                    state = apply(state, ev.Event(index, ev.VERIFY, item, seq, prev, t, data, raw, lh))
                    del state.events[:-1]
                    self._remember(item, state)
                except (UsageError, LedgerError, VerificationError):
                    states.pop(item, None)
            for pos, r in enumerate(sent):
                if pos not in taken:
                    states.pop(r[1], None)  # stale: read again for the sequenced path
                    slow.append(r[0])
        if slow:
            slow.sort()
            more = self._append([specs[k] for k in slow], isolate, fast=False)
            for k, r in zip(slow, more):
                out[k] = r
        return out

    def _prefetch(self, specs: list[EventSpec]) -> None:
        """Read the states of the items ``specs`` name that are not cached yet, before taking the
        sequencer (a shared store): the other hosts wait for none of these reads. What is
        appended between this read and the sequencer is caught up under it (once: by seq)."""
        states = self._states
        for spec in specs:
            item = spec.item
            if item in self._gappy:
                states.pop(item, None)
            if type(item) is str and item not in states:
                try:
                    self._state(ev.check_item_id(item))
                except (UsageError, LedgerError):
                    pass  # refused with its reason when staged, under the sequencer

    def _state(self, item: str) -> ItemState | None:
        st = self._states.get(item)
        if st is not None:
            self._states.move_to_end(item)
            return st
        self._gappy.discard(item)
        if self.store.head(item) is None:
            return None
        st = replay(self._events_of(item))
        if st is None:
            return None
        del st.events[:-1]
        self._remember(item, st)
        return st

    def _remember(self, item: str, st: ItemState) -> None:
        states = self._states
        states[item] = st
        states.move_to_end(item)
        if len(states) > STATE_CACHE_ITEMS:
            states.popitem(last=False)

    def _events_of(self, item: str, reader: str | None = sealed.ALL) -> list[ev.Event]:
        return self._opened([ev.decode_leaf(r.leaf, LedgerError, strict=False) for r in self.store.item_leaves(item)],
                            reader)

    def _opened(self, events: list[ev.Event], reader: str | None = sealed.ALL) -> list[ev.Event]:
        """Events with their sealed values revealed (checked against the commitments) as ``reader``
        may see them (glint.ledger.sealed; ALL: every stored value, the local view)."""
        revs = self._reveals([e for e in events if sealed.SEALED_KEY in e.data])
        if not revs and not any(sealed.SEALED_KEY in e.data for e in events):
            return events
        out = []
        for e in events:
            if sealed.SEALED_KEY in e.data:
                try:
                    e = dataclasses.replace(e, data=sealed.open_data(e.kind, e.data, revs.get(e.index), reader,
                                                                     e.index))
                except VerificationError as err:
                    raise LedgerError(f"ledger: {err}", "run 'glint ledger verify'") from None
            out.append(e)
        return out

    def _reveals(self, events: list[ev.Event]) -> dict[int, dict]:
        if not events:
            return {}
        got = self.store.reveals([e.index for e in events])
        try:
            return {i: sealed.decode(b, i) for i, b in got.items()}
        except VerificationError as err:
            raise LedgerError(f"ledger: {err}", "run 'glint ledger verify'") from None

    def reveals_for(self, events: list[ev.Event], reader: str | None) -> dict[int, dict]:
        """What of the stored reveals of ``events`` (decoded leaves) ``reader`` may see: log index ->
        reveal (glint.ledger.sealed), each checked against its leaf's commitments first."""
        sealed_events = [e for e in events if sealed.SEALED_KEY in e.data]
        revs = self._reveals(sealed_events)
        out = {}
        for e in sealed_events:
            r = sealed.for_reader(e.kind, e.data, revs.get(e.index), reader)
            if r is not None:
                try:
                    sealed.open_data(e.kind, e.data, r, sealed.ALL, e.index)
                except VerificationError as err:
                    raise LedgerError(f"ledger: {err}", "run 'glint ledger verify'") from None
                out[e.index] = r
        return out

    def erase(self, item: str, fields=None) -> int:
        """Drop the stored reveals (salt and value) of an item's sealed values: all of them, or
        only the named fields (who/where fields such as ``op``, or passport field names).

        The leaves keep their commitments, so the log, its proofs and certificates verify as
        before; the values are gone (readers see ``[sealed]``). Returns the values dropped."""
        if self.readonly:
            raise LedgerError("ledger is open read-only")
        raw = [ev.decode_leaf(r.leaf, LedgerError, strict=False) for r in self.store.item_leaves(item)]
        if not raw:
            raise UsageError(f"unknown item {item}", "list items with 'glint ledger log'")
        dropped = 0
        for idx, rv in self._reveals([e for e in raw if sealed.SEALED_KEY in e.data]).items():
            kind = next(e.kind for e in raw if e.index == idx)
            kept = None if fields is None else sealed.without(kind, rv, fields)
            n = _count(rv) - (_count(kept) if kept else 0)
            if n:
                self.store.set_reveal(idx, None if kept is None else sealed.encode(kept))
                dropped += n
        self._states.pop(item, None)
        return dropped

    # ------------------------------------------------------------ twins API

    def register_item(self, item: str, brand: str, provenance: dict | None = None,
                      passport: dict | None = None, parts: dict | None = None,
                      part_of: tuple[str, str] | None = None, time: int | None = None,
                      operator: str | None = None, location: str | None = None) -> Appended:
        """Register an item's digital twin.

        ``provenance``: {"class": "factory"} or {"class": "later", "by": authenticator,
        "at": time, "reason": "vintage"/"pre-owned"}; ``passport``: Digital Product
        Passport data; ``parts``: part name -> item id (an assembly);
        ``part_of``: (assembly item id, part name) for a marked part.
        """
        data = {"brand": brand, "prov": provenance or {"class": "factory"}}
        if passport:
            data["passport"] = passport
        if parts:
            data["parts"] = dict(parts)
        if part_of:
            data["of"], data["part"] = part_of
        data.update(_clean({"op": operator, "loc": location}))
        return self.append_event(ev.REGISTER, item, data, time)

    def register_twin(self, item: str, operator: str | None = None) -> Appended:
        """A twin for an item enrolled in the matcher only (before the ledger, or by the bare matcher CLI).

        Nobody here saw it made: its provenance is ``later`` by this host's operator, never a
        factory claim (that is the brand's, issue 16).
        """
        prov = {"class": "later", "by": operator or "glint", "at": int(_time.time()),
                "reason": "enrolled in the matcher only"}
        return self.register_item(item, brand=item.split(":", 1)[0] if ":" in item else "glint", provenance=prov)

    def add_coating(self, item: str, coating: str, ref: bytes | None = None, scan: bytes | None = None,
                    replaces: str | None = None, time: int | None = None, **extra) -> Appended:
        """Enroll a coating (reference) on an item; ``replaces`` re-enrolls after a repair."""
        data = {"coat": coating, **_clean(extra)}
        if ref is not None:
            data["ref"] = ref
        if replaces is not None:
            data["replaces"] = replaces
        return self.append_event(ev.ENROLL, item, data, time, scan)

    def record_verify(self, item: str, result: str, fap: float | None = None, device: str | None = None,
                      operator: str | None = None, location: str | None = None, scan: bytes | None = None,
                      coating: str | None = None, parts: dict | None = None, time: int | None = None,
                      via: dict | None = None) -> Appended:
        """Record a verification (pass or fail) with its false-accept probability and context.

        ``via``: the secondary identifier the item was looked up by ({"scheme", "value"}); the
        coating (``coating``) is what authenticated it."""
        data = _clean({"res": result, "fap": None if fap is None else float(fap), "dev": device,
                       "op": operator, "loc": location, "coat": coating, "parts": parts, "via": via})
        return self.append_event(ev.VERIFY, item, data, time, scan)

    def transfer(self, item: str, owner: str | None = None, custodian: str | None = None,
                 operator: str | None = None, note: str | None = None, time: int | None = None) -> Appended:
        """Transfer ownership and/or custody."""
        data = _clean({"owner": owner, "custodian": custodian, "op": operator, "note": note})
        return self.append_event(ev.TRANSFER, item, data, time)

    def service(self, item: str, action: str, by: str | None = None, note: str | None = None,
                time: int | None = None) -> Appended:
        return self.append_event(ev.SERVICE, item, _clean({"action": action, "by": by, "note": note}), time)

    def rental_out(self, item: str, to: str, due: int | None = None, time: int | None = None) -> Appended:
        return self.append_event(ev.RENTAL_OUT, item, _clean({"to": to, "due": due}), time)

    def rental_return(self, item: str, condition: str | None = None, time: int | None = None) -> Appended:
        return self.append_event(ev.RENTAL_RETURN, item, _clean({"cond": condition}), time)

    def update_passport(self, item: str, fields: dict, time: int | None = None) -> Appended:
        return self.append_event(ev.PASSPORT, item, {"set": dict(fields)}, time)

    def retire(self, item: str, reason: str | None = None, time: int | None = None) -> Appended:
        return self.append_event(ev.RETIRE, item, _clean({"reason": reason}), time)

    # ------------------------------------------------------------ reads

    def item(self, item: str, reader: str | None = sealed.ALL) -> ItemState:
        """The item's current state, replayed from its events; sealed values as ``reader`` may see
        them (default: all, the local view; others are ``[sealed]``)."""
        events = self._events_of(item, reader)
        if not events:
            raise UsageError(f"unknown item {item}", "list items with 'glint ledger log'")
        state = replay(events)
        assert state is not None  # events is not empty
        return state

    def current(self, item: str) -> ItemState | None:
        """The item's current state as this writer holds it for its custody checks (cached and kept
        up to date by its appends: no replay of the history; ``events`` holds the last one only),
        or None if the item is not registered. UsageError for a malformed item id. On a shared
        store it is the state as of this host's last append to the item: other hosts' later
        events are not in it, nor their verifies before a verify this host appended (``scans``,
        ``last_verify``); the custody state is theirs (``item`` replays the whole history)."""
        return self._state(ev.check_item_id(item))

    def items(self, prefix: str = "") -> list[str]:
        return self.store.items(prefix)

    def event(self, index: int) -> ev.Event:
        row = self.store.leaf(index)
        if row is None:
            raise UsageError(f"no event at index {index} (log size {self.size})")
        return self._opened([ev.decode_leaf(row.leaf, LedgerError, strict=False)])[0]

    def events(self, start: int = 0, stop: int | None = None, reader: str | None = sealed.ALL) -> Iterator[ev.Event]:
        """Events in log order, sealed values revealed as ``reader`` may see them (default: all)."""
        chunk: list[ev.Event] = []
        for row in self.store.leaves(start, stop):
            chunk.append(ev.decode_leaf(row.leaf, LedgerError, strict=False))
            if len(chunk) >= 1024:
                yield from self._opened(chunk, reader)
                chunk = []
        yield from self._opened(chunk, reader)

    def scan_bytes(self, digest: bytes) -> bytes | None:
        return self.store.blob(digest)

    # ------------------------------------------------------------ checkpoints and proofs

    def checkpoint(self, get_nodes: merkle.NodeSource | None = None, _last=_UNREAD) -> str:
        """Sign a checkpoint of the current tree; return the signed note.

        Refuses (LedgerError) when the tree is not consistent with the last checkpoint,
        or when the cache and the appended leaves disagree. Returns the last note
        unchanged when nothing was appended since. ``get_nodes``: see ``_checkpoint``.
        """
        if self.keys is None:
            raise UsageError("signing a checkpoint needs the log key", "create keys with 'glint cert keys'")
        if self.readonly:
            raise LedgerError("ledger is open read-only")
        if self._edge_behind:  # the server appended for this host: follow before the sequencer
            self._catch_up(self.store.size())
        with self.store.sequenced(self._cr.size) as (acked, fresh):  # the latest size, one signer at a time
            self._catch_up(acked, fresh)
            return self._checkpoint(get_nodes, _last)

    def _checkpoint(self, get_nodes: merkle.NodeSource | None = None, last=_UNREAD) -> str:
        """``get_nodes``: the node source to read the stored tree through (issue_certificate's,
        which reads each node once per certificate); default the store. ``last``: the latest
        stored checkpoint row as the caller just read it (this store's only writer; a shared
        store's is read again here, under the sequencer)."""
        assert self.keys is not None and self._cr_edge is not None
        get_nodes = get_nodes or self.store.get_nodes
        size = self._cr_edge.size
        root = self.root()
        if merkle.tree_root(size, get_nodes) != root:
            raise LedgerError("refusing to sign: the tree-hash cache disagrees with the log",
                              "run 'glint ledger verify'")
        origin = None
        known = self._origin_known == self.keys.origin  # the store's origin is set once, never changed
        if not known:
            origin = self.store.meta("origin")
            if origin is not None and origin != self.keys.origin:
                raise LedgerError(f"refusing to sign: this ledger belongs to log {origin}, not {self.keys.origin}")
        if last is _UNREAD or self.store.shared:
            last = self.store.latest_checkpoint()
        if last is not None:
            try:
                cp = self._open_note(last.note)
                if cp.size == size:
                    if cp.root != root:
                        raise VerificationError(f"root at size {size} differs from the signed one")
                    return last.note
                if cp.size > size:
                    raise VerificationError(f"log has {size} events, fewer than the signed {cp.size}")
                proof = merkle.consistency_proof(cp.size, size, get_nodes) if cp.size else []
                if cp.size:
                    merkle.verify_consistency(cp.size, size, proof, cp.root, root)
            except VerificationError as e:
                raise LedgerError(f"refusing to sign a checkpoint inconsistent with the last one: {e}",
                                  "run 'glint ledger verify'") from None
        signed = Checkpoint(self.keys.origin, size, root)
        note = sign_checkpoint(signed, self.keys.log_signer, vouch_to=self.keys.log_verifier())
        if not known and origin is None:
            self.store.set_meta("origin", self.keys.origin)
            self.store.set_meta("log_vkey", self.keys.log_vkey)
        self.store.add_checkpoint(CheckpointRow(size, root, note, int(_time.time())))
        self._origin_known = self.keys.origin
        self._opened_note = (note, self.keys.log_vkey, signed)
        _log.info("signed checkpoint at size %d", size)
        return note

    def _open_note(self, note: str) -> Checkpoint:
        """open_checkpoint with the log key and origin; the last note checked or signed here is not
        parsed and checked again (the same text gives the same checkpoint)."""
        assert self.keys is not None
        memo = self._opened_note
        vkey = self.keys.log_vkey
        if memo is not None and memo[0] == note and memo[1] == vkey:
            return memo[2]
        cp = open_checkpoint(note, self.keys.log_verifier(), self.keys.origin)
        self._opened_note = (note, vkey, cp)
        return cp

    def latest_checkpoint(self) -> tuple[Checkpoint, str] | None:
        row = self.store.latest_checkpoint()
        if row is None:
            return None
        return Checkpoint.parse(row.note[: row.note.rfind("\n\n") + 1]), row.note

    def prove(self, index: int, size: int | None = None) -> InclusionProof:
        """Inclusion proof of event ``index`` in the tree of ``size`` (default: current size)."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise UsageError(f"no inclusion proof for index {index} in size {size} (log size {self.size})")
        row = self.store.get_nodes([(0, index)])
        hashes = merkle.inclusion_proof(index, size, self.store.get_nodes)
        return InclusionProof(index, size, row[(0, index)], hashes, self.root(size))

    def prove_consistency(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self.size if size2 is None else size2
        if not 0 < size1 <= size2 <= self.size:
            raise UsageError(f"no consistency proof from {size1} to {size2} (log size {self.size})")
        return merkle.consistency_proof(size1, size2, self.store.get_nodes)

    # ------------------------------------------------------------ certificates

    def issue_certificate(self, index: int | None = None, item: str | None = None) -> bytes:
        """Issue the compact scan certificate of a verify event (by index, or the item's latest).

        Signs a checkpoint first if none covers the event. Self-checks the result with the
        offline verifier and refuses to issue one that would not verify. Costs the same
        whatever the item's history (the history is not in the certificate: ``history``).
        """
        from glint.ledger import cert

        if self.keys is None:
            raise UsageError("issuing a certificate needs the issuer key", "create keys with 'glint cert keys'")
        if index is None:
            if item is None:
                raise UsageError("name the verify event (index) or the item")
            index = self.latest_verify(item)
        row = self._recent_leaf(index)  # just appended (glint scan): no read back
        e = _stored_event(row) if row is not None else self.event(index)
        # The stored event as it is in the leaf (not opened: a sealed value's commitment, never its
        # value, is what a certificate carries): ``build`` then needs no strict decode of its own;
        # the self-check below decodes, strictly, the leaf the certificate spells, which must hash
        # into the signed root. An event read back (``event``: opened) goes in as its bytes.
        leaf: bytes | ev.Event = e if row is not None else e.raw
        if e.kind != ev.VERIFY:
            raise UsageError(f"event {index} is a {e.kind} event; certificates are for verify events")
        get_nodes = _read_once(self.store.get_nodes)  # the checkpoint's checks and the proof share node reads
        note = self._certificate_checkpoint(index + 1, get_nodes)
        proof = merkle.inclusion_proof(index, index + 1, get_nodes)
        blob = cert.build(self.keys, leaf, proof, note)
        try:
            cert.verify(blob, self.keys.issuer_public, self.keys.log_verifier())
        except VerificationError as err:
            raise LedgerError(f"refusing to issue a certificate that does not verify: {err}",
                              "run 'glint ledger verify'") from None
        return blob

    def _recent_leaf(self, index: int) -> LeafRow | None:
        """Event ``index`` as this writer committed it in its last batch, or None. Its bytes are
        checked against the store all the same: the checkpoint's root is recomputed from the stored
        tree, whose last leaf it is, and the certificate's proof comes from the store."""
        for r in self._recent:
            if r[0] == index:
                return LeafRow(index, r[1], r[2], _sha256(b"\x00" + r[3]).digest(), r[3])
        return None

    def _certificate_checkpoint(self, size: int, get_nodes: merkle.NodeSource | None = None) -> str:
        """The signed checkpoint of the tree of ``size`` leaves (a certificate's: the tree right after
        its event, whose inclusion proof has one hash per 1 bit of the index). Signs the log's
        latest checkpoint first if none covers ``size``; signs ``size``'s only after checking its
        root against the latest signed one (a consistency proof): the log never signs a past
        tree that is not a prefix of what it signed."""
        assert self.keys is not None
        get_nodes = get_nodes or self.store.get_nodes
        verifier = self.keys.log_verifier()
        last = self.store.latest_checkpoint()
        note = last.note if last and last.size >= size else self.checkpoint(get_nodes, last)
        cp = self._open_note(note)
        if cp.size == size:
            return note
        root = merkle.tree_root(size, get_nodes)
        try:
            merkle.verify_consistency(size, cp.size, merkle.consistency_proof(size, cp.size, get_nodes),
                                      root, cp.root)
        except VerificationError as err:
            raise LedgerError(f"refusing to sign the tree of size {size}: not a prefix of the signed "
                              f"checkpoint at {cp.size} ({err})", "run 'glint ledger verify'") from None
        return sign_checkpoint(Checkpoint(self.keys.origin, size, root), self.keys.log_signer, vouch_to=verifier)

    def latest_verify(self, item: str) -> int:
        """Log index of the item's latest verify event (walks back from the chain head)."""
        head = self.store.head(item)
        if head is None:
            raise UsageError(f"unknown item {item}", "list items with 'glint ledger log'")
        seq, chunk = head.seq, 1  # usually the last event or nearly: read 1, 8, 64, ... rows back
        while seq >= 0:
            lo = max(0, seq - chunk + 1)
            for r in reversed(self.store.item_leaf_range(item, lo, seq + 1)):
                if ev.decode_leaf(r.leaf, LedgerError, strict=False).kind == ev.VERIFY:
                    return r.idx
            seq, chunk = lo - 1, min(chunk * 8, 4096)
        raise UsageError(f"item {item} has no verify event to certify")

    def history(self, item: str, before_seq: int | None = None) -> list[bytes]:
        """The item's events (leaf bytes, in order) before sequence ``before_seq`` (default: all)."""
        if before_seq is None:
            return [r.leaf for r in self.store.item_leaves(item)]
        return [r.leaf for r in self.store.item_leaf_range(item, 0, before_seq)]

    def history_reveals(self, leaves: list[bytes], reader: str | None) -> dict[int, dict]:
        """The reveals ``reader`` may see of these leaves (an item's history, a certified leaf)."""
        return self.reveals_for([ev.decode_leaf(b, LedgerError, strict=False) for b in leaves], reader)

    def bundle(self, blob: bytes, reader: str = "public") -> bytes:
        """A certificate with the history it stands on (``cert.make_bundle``), for offline checks,
        revealing the sealed values ``reader`` may see (the buyer's: ``owner``; default none).

        Raises VerificationError when the stored history no longer chains into the certificate."""
        from glint.ledger import cert

        if self.keys is None:
            raise UsageError("bundling a certificate needs this home's keys")
        info = cert.verify(blob, self.keys.issuer_public, self.keys.log_verifier())
        history = self.history(info.item, info.event.seq)
        reveals = self.history_reveals(history + [info.event.raw], reader)
        # never bundle a broken chain or a reveal that does not match
        cert.verify(blob, self.keys.issuer_public, self.keys.log_verifier(), history, reveals)
        return cert.make_bundle(blob, history, reveals)

    # ------------------------------------------------------------ verification

    def verify(self, verifier=None) -> VerifyReport:
        """Recompute the tree from storage and check every row, chain and checkpoint.

        Stops at the first problem and names the row: edited (leaf differs from its
        hash, or the item's next event links elsewhere), deleted (a gap, or fewer rows
        than acknowledged or signed), reordered (a row holds another index's event).
        ``verifier``: the log's note verifier (default: the keys', else the stored one).
        """

        with self.store.snapshot():
            return verify_store(self.store, verifier or (self.keys.log_verifier() if self.keys else None))


# The leaf bytes of a verify event around its data (glint.ledger.events.encode_leaf):
# what PgStore's append_verifies writes between the parts this host sends.
_VERIFY_MID = b"\x61k" + ev.dumps(ev.VERIFY) + b"\x61n"
_VERIFY_ITEM = b"\x61v" + ev.dumps(ev.LEAF_VERSION) + b"\x64item"
# The most a verify leaf adds to its data map and item: the index, seq and time (9 bytes each
# at most), the item's head (5), the chain head (34) and the keys.
_VERIFY_LEAF_OVERHEAD = len(_VERIFY_MID) + len(_VERIFY_ITEM) + 3 * 9 + 5 + 34 + 2 + 5


def _stored_event(row) -> ev.Event:
    """The event of a row this log stored (a writer catching up on other hosts' appends): decoded
    by cbor2's C decoder, a sixth of the pure-Python decoder's cost. Rows were checked when
    appended and ``glint ledger verify`` decodes every row strictly; anything but a plain
    version-1 event map goes through ``decode_leaf``, which names what is wrong."""
    raw = row.leaf
    try:
        m = _cbor2_loads(raw)
    except Exception:  # any decoding failure: the strict decoder says what it is
        m = None
    if type(m) is not dict or len(m) != 8 or m.get("v") != ev.LEAF_VERSION:
        return ev.decode_leaf(raw, LedgerError, strict=False)
    try:
        e = ev.Event(m["i"], m["k"], m["item"], m["n"], m["prev"], m["t"], m["d"], raw, row.hash)
    except KeyError:
        return ev.decode_leaf(raw, LedgerError, strict=False)
    if type(e.data) is not dict or type(e.kind) is not str or e.seq != row.seq or e.index != row.idx:
        return ev.decode_leaf(raw, LedgerError, strict=False)
    return e


def _read_once(get_nodes: merkle.NodeSource) -> merkle.NodeSource:
    """A node source that reads each stored node once (a certificate's checks and proof read the
    same subtrees; a stored subtree hash never changes). Missing nodes are asked again."""
    seen: dict = {}

    def get(keys):
        want = [k for k in keys if k not in seen]
        if want:
            seen.update(get_nodes(want))
        return {k: seen[k] for k in keys if k in seen}

    return get


def _count(reveal: dict) -> int:
    return sum(len(v) if isinstance(v, dict) else 1 for v in reveal.values())


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}
