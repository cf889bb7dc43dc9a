"""POST /v1/events on the ledger thread: uploads admitted and appended in groups (group commit).

Request threads queue their uploads (``Uploads.append``) on the server's LedgerWorker
(glint.ledger.group: ``worker.group(handle_group, upload)``); the ledger thread takes every
upload queued while it was busy and handles them together, so concurrent clients share
the durable commits instead of paying three fsyncs each.

A SQLite ledger (the default) keeps the idempotency keys in its own commits
(glint.server.store.LedgerKeys):

1. per upload, without writing: parse (on the request thread: ``_precheck``), idempotency
   key (one look-up in ledger.db for the group; a known key answers at once), a scan the
   ledger already holds is a replay;
2. one glint.db transaction around everything else: per upload glint.server.admit (schema,
   scan check, match; a SAVEPOINT for an upload with a scan, the only kind that writes
   there) and the key's disk quota; then one ledger commit for all admitted events with
   their keys (``Ledger.append_group(specs, keys=...)``, durable: a key exists exactly when
   its event does, so no crash can append an upload twice; a custody refusal refuses only
   its own event, whose scan acceptance is then undone); quotas charged; one commit.

Otherwise (a PostgreSQL ledger) the keys live in glint.db and a group takes two steps: one
glint.db commit writes every new key ``pending`` (a ``pending`` key left by a crash is bound
to the identical event already in the log), then step 2 as above with the keys made
``done`` (the refused ones forgotten) before its commit.

Each caller gets its own result or its own exception once what it relies on is durable. A
failing ledger commit fails every upload of the group, and nothing of the group is stored.

fsyncs (a SQLite glint.db: ``Registry.sync_behind``, glint.walsync.WalSync): glint.db's
commits are written without waiting for the disk. With the keys in the ledger, an upload
with a signed scan (whose acceptance, the device counter and nonce, glint.db must keep) and
an answered duplicate wait (``_wait_durable``) for an fsync asked right after the group's
commit, on glint.db's fsync thread; a scan-less upload's answer does not: its only glint.db
write, the quota charge, is committed before the answer (a killed process loses nothing:
the OS holds the write) and fsynced behind it (the next fsync asked, the ledger thread's
idle hook ``flush``, or SQLite's checkpoint); a power cut may forget the last charges
(docs/api.md, "Durability"). Once a glint.db fsync has failed, every later group is
refused (503). With the keys in glint.db, the pending keys' fsync is asked at once and
awaited just before the ledger commit, the closing commit's is left to the next group's
(one fsync for both) or to the idle hook, and every request waits for it. On PostgreSQL
every commit is synchronous.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from glint import orgs
from glint.checks import ScanRefused
from glint.errors import GlintError, UsageError
from glint.ledger import events as ev
from glint.ledger.log import EventSpec
from glint.server import admit as adm
from glint.server import auth, limits, wire

_log = logging.getLogger(__name__)

MAX_GROUP = 500          # uploads handled in one group (bounds a group's latency and memory)
CALL_TIMEOUT_S = 120.0


class ConflictError(UsageError):
    """An idempotency key reused for a different event (HTTP 409)."""


class _Upload:
    __slots__ = ("api_key", "key", "body", "out", "slot", "parsed", "digest", "admitted", "cost", "durable", "ship_note")

    def __init__(self, api_key, key, body):
        self.api_key, self.key, self.body = api_key, key, body
        self.out: object = None  # its outcome once settled: (result, duplicate) or the exception refusing it
        self.slot = f"{api_key.key_id}:{key}"  # idempotency keys are per API key
        self.parsed = None
        self.digest = None
        self.admitted = None
        self.cost = 0
        self.durable: tuple | None = None  # (WalSync, ticket): glint.db's fsync its answer waits for
        self.ship_note: tuple | None = None  # (shipment id, sender, receiver) of an offer, noted once stored


class Uploads:
    """Uploads through the server's LedgerWorker (group commit, ``handle_group`` on its thread)."""

    def __init__(self, worker):
        self.worker = worker

    def append(self, api_key, key: str, body: dict) -> tuple[dict, bool]:
        """Admit and append one upload; return (result, duplicate) once durable, or raise its refusal."""
        up = _Upload(api_key, key, body)
        _precheck(up)  # here, not on the ledger thread: its work overlaps the ledger's fsyncs
        fut = self.worker.group(handle_group, up)
        try:
            return fut.result(timeout=CALL_TIMEOUT_S)
        finally:
            _wait_durable(up)

    def append_many(self, api_key, uploads: list[tuple[str, dict]]) -> list:
        """Admit and append several uploads ((key, body) each) in one round of the group commit; once
        every one is settled, one outcome each, in order: (result, duplicate), durable, or the
        exception refusing it (a refusal refuses only its own upload)."""
        ups = [_Upload(api_key, k, b) for k, b in uploads]
        out: list = [None] * len(ups)
        queued = []
        for i, up in enumerate(ups):
            try:
                _precheck(up)
                queued.append(i)
            except GlintError as e:
                out[i] = e
        futs = self.worker.group_many(handle_group, [ups[i] for i in queued])
        for i, f in zip(queued, futs):
            try:
                r = f.result(timeout=CALL_TIMEOUT_S)
            except Exception as e:
                r = e
            try:
                _wait_durable(ups[i])
            except Exception as e:  # glint.db's fsync failed: not durable, whatever it was
                r = e
            out[i] = r
        return out


def _precheck(up: _Upload) -> None:
    """What step 1 checks without the ledger thread's state (the request thread does it): the
    body's shape, a factory claim's role, the body's digest (raises the refusal)."""
    body = up.body
    kind, item, t, data, scan = wire.parse_event(body)
    up.parsed = (kind, item, t, data, scan, body.get("reference"))
    if kind == ev.REGISTER:
        auth.may_claim_factory(up.api_key, data)
    up.digest = wire.body_digest(body)


def _wait_durable(up: _Upload) -> None:
    """Return once glint.db's commits for ``up`` are on disk (its group left their fsync to the
    next group's commit, or to the ledger thread's idle hook); LedgerError if that fsync failed."""
    if up.durable is not None:
        sync, ticket = up.durable
        sync.wait(ticket)


def flush(ctx) -> None:
    """The ledger thread's idle hook (LedgerWorker ``idle``): ask the fsync a group left for later."""
    sync = ctx.registry.walsync
    if sync is not None:
        sync.flush()


def _result(key, idx, leaf_hash, size) -> dict:
    return {"key": key, "index": idx, "leaf_hash": leaf_hash.hex(), "tree_size": size}


def find_same(led, kind, item, t, data, scan):
    """The item's event an interrupted upload already became (same kind and time; same scan, else same data)."""
    want_scan = None if scan is None else hashlib.sha256(scan).digest()
    try:
        events = led.item(item).events
    except UsageError:
        return None
    for e in reversed(events):
        if e.kind != kind or (t is not None and e.time != t):
            continue
        if want_scan is not None:
            if e.data.get("scan") == want_scan:  # the server set dev and fap itself
                return e
        elif e.data == data:
            return e
    return None


def _undo_scan(conn, checked) -> None:
    """Forget a scan acceptance whose event the ledger refused (inside the open transaction)."""
    did = checked.device_id
    conn.execute("DELETE FROM scans WHERE id=?", (checked.scan_id,))
    conn.execute("UPDATE devices SET last_counter=COALESCE((SELECT MAX(counter) FROM scans WHERE device_id=?), -1), "
                 "last_spooled=COALESCE((SELECT MAX(counter) FROM scans WHERE device_id=? AND mode='spooled'), -1) "
                 "WHERE device_id=?", (did, did, did))
    if checked.nonce is not None:  # a relayed nonce was inserted (issued == expires); a live one consumed
        conn.execute("DELETE FROM nonces WHERE nonce=? AND issued_at=expires_at", (checked.nonce,))
        conn.execute("UPDATE nonces SET used_at=NULL WHERE nonce=?", (checked.nonce,))


def _prepare(ctx, up: _Upload, slots: set, rec) -> bool:
    """Step 1 for one upload (``rec``: its key's record, read for the whole group); True if it goes
    on to admission (else its outcome is settled)."""
    if up.parsed is None:
        _precheck(up)
    kind, item, t, data, scan, _reference = up.parsed
    if up.slot in slots:
        raise ConflictError(f"idempotency key {up.key} is already being used by a request in flight",
                            "retry once that request has an answer")
    if rec is not None and rec.body_hash != up.digest:
        raise ConflictError(f"idempotency key {up.key} was used for a different event")
    if rec is not None and rec.state == "done":
        up.out = (_result(up.key, rec.idx, rec.leaf_hash, ctx.ledger.size), True)
        return False
    if rec is not None:  # pending: a crash between the append and finishing the key
        found = find_same(ctx.ledger, kind, item, t, data, scan)
        if found is not None:
            ctx.keystore.finish(up.slot, found.index, found.hash)
            _log.info("idempotency key %s reconciled with event %d", up.key, found.index)
            up.out = (_result(up.key, found.index, found.hash, ctx.ledger.size), True)
            return False
    if scan is not None and ctx.ledger.scan_bytes(hashlib.sha256(scan).digest()) is not None:
        raise ScanRefused("duplicate", "replayed scan: the ledger already records these exact scan bytes",
                          "an old signed scan was sent again")
    slots.add(up.slot)
    return True


def handle_group(ctx, batch: list[_Upload]) -> list:
    """Handle a group of uploads (on the ledger thread); one outcome per upload, in order."""
    for start in range(0, len(batch), MAX_GROUP):
        chunk = batch[start:start + MAX_GROUP]
        try:
            _handle(ctx, chunk)
        except Exception as e:  # a storage failure (or a bug): every caller not yet answered hears it
            for up in chunk:
                if up.out is None:
                    up.out = e
    return [up.out for up in batch]


def _handle(ctx, batch: list[_Upload]) -> None:
    todo: list[_Upload] = []
    slots: set = set()
    sync = ctx.registry.walsync  # None: PostgreSQL, where every commit is synchronous
    in_ledger = ctx.ledger_keys is not None
    if in_ledger and sync is not None:
        sync.check()  # glint.db's fsync failed: its disk is failing, nothing more is taken (503)
    recs = (ctx.ledger_keys if in_ledger else ctx.keystore).get_many(list({up.slot for up in batch}))
    for up in batch:
        try:
            if _prepare(ctx, up, slots, recs.get(up.slot)):
                todo.append(up)
        except GlintError as e:
            up.out = e
    if todo and in_ledger:
        return _handle_in_ledger(ctx, batch, todo, sync)
    if not todo:
        if sync is not None:  # what was answered reads earlier groups' commits: on disk first
            sync.flush()
            for up in batch:
                up.durable = (sync, sync.asked)
        return
    conn = ctx.registry.conn
    with _commit(conn, sync):  # step 2: the keys, pending, durable before any append
        ctx.keystore.begin_many([(up.slot, up.digest) for up in todo])
    pending = sync.ask() if sync is not None else 0  # its fsync covers the last group's step 3 too
    try:
        with _commit(conn, sync):  # step 3
            outcomes = _admit_and_append(ctx, conn, todo, lambda: sync.wait(pending) if sync is not None else None)
    except BaseException:
        for up in todo:
            ctx.keystore.forget(up.slot)
        raise
    if sync is not None:  # left to the next group's step 2 (one fsync for both) or the idle hook
        done = (sync, sync.owe())
        for up in batch:
            up.durable = done
    _settle(ctx, outcomes)


def _handle_in_ledger(ctx, batch: list[_Upload], todo: list[_Upload], sync) -> None:
    """``_handle`` with the idempotency keys in the ledger's own commit (a SQLite ledger): one
    glint.db transaction around admission, the ledger commit (events and keys, durable) and the
    quota charges; no pending keys. Only an upload whose acceptance glint.db must keep (a signed
    scan: its counter and nonce; a shipment's note) and a duplicate's answer wait for glint.db's
    fsync; a scan-less upload's quota charge is committed before its answer and fsynced behind it
    (the next fsync asked, the idle hook, SQLite's checkpoint): docs/api.md, "Durability"."""
    conn = ctx.registry.conn
    wait = [up for up in batch if type(up.out) is tuple]  # duplicates answered: they read earlier groups' commits
    with _commit(conn, sync):
        outcomes = _admit_and_append(ctx, conn, todo, in_ledger=True)
    _settle(ctx, outcomes)
    if sync is None:
        return
    for up, out in outcomes:
        if not isinstance(out, BaseException) and (up.admitted.checked is not None or up.ship_note is not None):
            wait.append(up)
    if wait:
        done = (sync, sync.ask())
        for up in wait:
            up.durable = done
    else:
        sync.owe()


def _settle(ctx, outcomes) -> None:
    for up, out in outcomes:  # answered (by the worker) only once glint.db is committed too
        up.out = out
        if isinstance(out, BaseException):
            continue
        ok = up.admitted
        if ok.reference is not None:  # the enroll's reference becomes the server's for later verifications
            try:
                ctx.match_db.add(up.parsed[1], ok.reference, replace=up.parsed[1] in ctx.match_db)
            except GlintError as e:
                _log.error("event %d stored, but its reference was not: %s", out[0]["index"], e)


@contextlib.contextmanager
def _commit(conn, sync):
    """One write transaction on glint.db; with ``sync`` (a WalSync) its COMMIT does not fsync:
    the caller asks (or owes) the fsync and waits for it before relying on the commit."""
    if sync is not None:
        conn.execute("PRAGMA synchronous=NORMAL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if sync is not None:
            conn.execute("PRAGMA synchronous=FULL")


class _Group:
    """What the uploads admitted earlier in a group mean for the organization checks of the later ones
    (a field host's batch may offer an item and cancel the offer; the ledger replays the group in
    order and has the last word on the state machine, these checks say who may)."""

    def __init__(self):
        self.registering: dict[str, str] = {}   # item -> org of a register admitted in this group
        self.owner: dict[str, str] = {}         # item -> its org after a ship accept admitted in this group
        self.shipment: dict[str, dict | None] = {}   # item -> its pending shipment after this group's ship events
        self.rows: dict[str, tuple[str, str]] = {}   # shipment id -> (sender, receiver) of this group's offers


def _org_check(ctx, api_key, kind: str, item: str, data: dict, grp: _Group):
    """An upload changes only its key's organization's items (glint.orgs; OrgRefused, HTTP 403), as
    the server's own routes decide: a shipment's offer and cancel by its sender, its accept and
    reject by its receiver; a grant to, or an offer to, an organization of this deployment.
    Returns what the upload, once admitted, changes for the later uploads of the group (or None)."""
    from glint.server.auth import org_scope

    scope = org_scope(api_key)
    if scope is None or kind == ev.REGISTER:
        return None
    owner = grp.registering.get(item)
    st = None
    if owner is None:
        try:  # the writer's cached state: replaying the item's whole history per upload made every
            st = ctx.ledger.current(item)  # upload of a long-lived item cost O(its events) (5 ms at 250)
        except UsageError:
            st = None
        if st is None:
            return None  # not registered (or a malformed id): the ledger refuses it with that reason
        owner = grp.owner.get(item, st.org)
    elif owner != scope:
        raise orgs.OrgRefused(f"item {item} is being registered by another organization than {scope}",
                              None, "other-organization")
    if kind == ev.SHIP and data.get("act") in ("accept", "reject", "cancel"):
        return _ship_decision(item, data, scope, grp.shipment[item] if item in grp.shipment
                              else (st.shipment if st is not None else None), grp)
    if owner != scope:
        if st is not None and item not in grp.owner:
            orgs.check_write(st, scope)
        raise orgs.OrgRefused(f"item {item} belongs to another organization than {scope}: only its owner "
                              "organization may change it", None, "other-organization")
    if kind == ev.SHARE and data.get("act") == "grant":
        ctx.orgdb.require(data.get("org", ""))
    if kind == ev.SHIP and data.get("act") == "offer" and type(data.get("to")) is str and type(data.get("ship")) is str:
        return _ship_offer(ctx, item, data, owner, grp)
    return None


def _ship_offer(ctx, item: str, data: dict, owner: str, grp: _Group):
    sid, to = data.get("ship", ""), data.get("to", "")
    ctx.orgdb.require(to)
    row = grp.rows.get(sid)
    if row is None:
        known = ctx.orgdb.shipment_row(sid)
        row = None if known is None else (known[0], known[1])
        if known is not None and row == (owner, to):
            state = orgs.shipment(ctx.ledger, ctx.orgdb, sid).state
            if state != "pending":  # its receiver could not accept the item any more
                raise UsageError(f"shipment {sid} is {state}: an offer of {item} cannot join it",
                                 "a new shipment takes a new id")
    if row is not None and row != (owner, to):
        raise UsageError(f"shipment {sid} is from {row[0]} to {row[1]}: an offer of {item} from {owner} to {to} "
                         "cannot join it", "a new shipment takes a new id")

    def admitted(up):
        grp.rows[sid] = (owner, to)
        grp.shipment[item] = {"id": sid, "to": to, "from": owner}
        up.ship_note = (sid, owner, to)
    return admitted


def _ship_decision(item: str, data: dict, scope: str, pending: dict | None, grp: _Group):
    act, sid = data.get("act"), data.get("ship")
    if pending is None or pending.get("id") != sid:
        return None  # no such pending shipment: the ledger refuses it, naming the one pending if any
    side, who = (pending["from"], "its sender") if act == "cancel" else (pending["to"], "its receiver")
    if side != scope:
        raise orgs.OrgRefused(f"shipment {sid} is from {pending['from']} to {pending['to']}: only {who} ({side}) "
                              f"may {act} it", None, "other-organization")

    def admitted(up):
        grp.shipment[item] = None
        if act == "accept":
            grp.owner[item] = pending["to"]
    return admitted


def _owned_by(ctx, ok, api_key, item: str, grp: _Group):
    """A register upload names its key's organization as the item's owner (server-set, ``org``)."""
    from dataclasses import replace

    org = orgs.org_of_key(api_key)
    if ctx.ledger.store.head(item) is None:  # else the ledger refuses it (already registered)
        grp.registering.setdefault(item, org)
    if org == orgs.DEFAULT_ORG:
        return ok  # the default organization's items carry no org field (as before organizations)
    return replace(ok, data={**ok.data, "org": org})


def _admit_and_append(ctx, conn, todo: list[_Upload], before_append=None, in_ledger: bool = False) -> list:
    """(upload, (result, duplicate) or the exception refusing it) for every upload of ``todo``.

    ``before_append()``: called before the ledger commit (the pending keys' fsync is awaited
    there, so it overlaps the admission's work). ``in_ledger``: the keys are written by the
    ledger commit itself (none pending in glint.db). Only an upload with a scan writes during its
    admission (the scan's acceptance), so only such an upload gets a SAVEPOINT of its own."""
    admitted: list[_Upload] = []
    refused: list[tuple[_Upload, BaseException]] = []
    outcomes: list = []
    kids = list({up.api_key.key_id for up in todo})  # every key's usage and quota in one look-up
    used: dict[str, list[int]] = {k: [u, q] for k, u, q in conn.execute(
        f"SELECT key_id, bytes_used, quota_bytes FROM api_keys WHERE key_id IN ({','.join('?' * len(kids))})", kids)}
    grp = _Group()
    for up in todo:
        kind, item, t, data, scan, reference = up.parsed
        writes = scan is not None
        if writes:
            conn.execute("SAVEPOINT upload")
        try:
            effect = _org_check(ctx, up.api_key, kind, item, data, grp)
            t, ok = adm.admit(ctx.registry, ctx.match_db, ctx.policy, kind, item, t, data, scan, reference,
                              ledger=ctx.ledger)
            if kind == ev.REGISTER:
                ok = _owned_by(ctx, ok, up.api_key, item, grp)
            kid = up.api_key.key_id
            q = used.get(kid)
            if q is None:  # no row (a key deleted since it was read)
                q = used[kid] = [0, 1 << 62]
            up.cost = len(scan or b"") + len(repr(ok.data)) + 200  # the leaf and the scan blob, roughly
            if q[0] + up.cost > q[1]:
                raise limits.QuotaExceeded(f"API key {kid} has used {q[0]} of its {q[1]} bytes; this upload "
                                           f"needs {up.cost} more", "ask the server's operator to raise the quota")
            q[0] += up.cost
            if effect is not None:
                effect(up)
            up.admitted = ok
            up.parsed = (kind, item, t, ok.data, scan, reference)
            if writes:
                conn.execute("RELEASE upload")
            admitted.append(up)
        except ScanRefused as e:
            if writes:
                conn.execute("RELEASE upload")  # the refusal's alerts stay; nothing was accepted
            refused.append((up, e))
        except GlintError as e:
            if writes:
                conn.execute("ROLLBACK TO upload")
                conn.execute("RELEASE upload")
            refused.append((up, e))
    if before_append is not None:
        before_append()
    specs = [EventSpec(u.parsed[0], u.parsed[1], u.parsed[3], u.parsed[2], u.parsed[4]) for u in admitted]
    if not admitted:
        outs: list = []
    elif in_ledger:
        ctx.ledger_keys.will_store([u.slot for u in admitted])
        outs = ctx.ledger.append_group(specs, keys=[(u.slot, u.digest) for u in admitted])
    else:
        outs = ctx.ledger.append_group(specs)
    size = ctx.ledger.size
    charged: dict[str, int] = {}
    finished: list[tuple[str, int, bytes]] = []
    for up, out in zip(admitted, outs):
        if isinstance(out, Exception):
            if up.admitted.checked is not None:
                _undo_scan(conn, up.admitted.checked)
            refused.append((up, out))
            continue
        charged[up.api_key.key_id] = charged.get(up.api_key.key_id, 0) + up.cost
        finished.append((up.slot, out.index, out.leaf_hash))
        if up.ship_note is not None:  # the shipment's item list (GET /v1/shipments, its accept route)
            ctx.orgdb.note_offered(*up.ship_note, up.parsed[1])
        ok = up.admitted
        if ok.checked is not None:
            ctx.registry.record_outcome(ok.checked.scan_id, up.parsed[1], ok.data.get("res", "enrolled"),
                                        ledger_index=out.index)
        outcomes.append((up, (_result(up.key, out.index, out.leaf_hash, size), False)))
    if charged:  # one statement for the group's keys, not one per key or per upload
        ctx.apikeys.charge_many(conn, list(charged.items()))
    if finished and not in_ledger:
        ctx.keystore.finish_many(finished)
    for up, err in refused:
        if not in_ledger:
            ctx.keystore.forget(up.slot)
        outcomes.append((up, err))
    return outcomes
