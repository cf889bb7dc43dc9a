"""Organizations in one deployment: who owns an item, shipments between owners, sharing grants.

One deployment (one ledger, one registry: glint serve over SQLite or PostgreSQL) serves several
organizations (a brand, its workshops, a reseller):

- every API key belongs to one organization (``glint api-key create --org ORG``; a key created
  without one belongs to ``default``, the deployment's own organization);
- every item is owned by one organization: the one whose key registered it (the register event's
  ``org``; absent: ``default``, so items registered before organizations existed are the
  deployment's own);
- a caller reads and writes non-public data only of its own organization's items and reads those
  shared with it (``access``); the public pages and certificates stay public;
- a **shipment** hands items (their history and identifiers go with them: they are the same
  twins) to another organization: ``offer`` appends one ``ship`` event (act ``offer``) per item,
  the sender keeps the items until the receiver ``accept``\\s (one ``ship`` accept event per item:
  now the receiver owns them, and the sender's grants end); the receiver may ``reject``, the
  sender ``cancel``. A retired item cannot ship (glint.ledger.lifecycle), nor one already in a
  pending shipment;
- a **sharing grant** (``share`` events, act ``grant`` / ``revoke``) gives another organization
  read access to chosen items, until revoked.

Everything that changes who may do what is an event in the ledger (so the item's history shows
it and a certificate's replay checks it); the ``orgs`` and ``shipments`` tables of glint.db are
only the list of organizations and a lookup of a shipment's items (written before its events;
a shipment's state is always read from the ledger).
"""

from __future__ import annotations

import json
import secrets
import time as _time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from glint.errors import UsageError
from glint.ledger import events as ev
from glint.ledger import lifecycle as lc
from glint.ledger.log import EventSpec

if TYPE_CHECKING:
    from glint.ledger import Ledger
    from glint.ledger.twins import ItemState

DEFAULT_ORG = ev.DEFAULT_ORG
MAX_SHIPMENT_ITEMS = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs(
    name TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shipments(
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    items TEXT NOT NULL,            -- JSON list of item ids
    created REAL NOT NULL);
"""


class OrgRefused(UsageError):
    """A caller of one organization asked for another's item (HTTP 403); ``reason`` names why."""

    def __init__(self, msg: str, hint: str | None = None, reason: str = "other-organization"):
        super().__init__(msg, hint)
        self.reason = reason


@dataclass(frozen=True)
class Org:
    name: str
    label: str
    created: float

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "created": self.created}


class Orgs:
    """The organizations of a deployment and its shipments' item lists (tables in glint.db)."""

    def __init__(self, conn):
        self.conn = conn
        conn.executescript(SCHEMA)

    def create(self, name: str, label: str | None = None) -> Org:
        ev.check_org(name)
        label = label or name
        if len(label) > 64 or not label.isprintable():
            raise UsageError("an organization's label is 1..64 printable characters")
        if name == DEFAULT_ORG or self.get(name) is not None:
            raise UsageError(f"organization {name} exists already", "see 'glint org list'")
        self.conn.execute("INSERT INTO orgs(name, label, created) VALUES (?,?,?)", (name, label, _time.time()))
        org = self.get(name)
        assert org is not None
        return org

    def get(self, name: str) -> Org | None:
        if name == DEFAULT_ORG:
            return Org(DEFAULT_ORG, "the deployment's own organization", 0.0)
        row = self.conn.execute("SELECT name, label, created FROM orgs WHERE name=?", (name,)).fetchone()
        return Org(*row) if row else None

    def require(self, name: str) -> Org:
        org = self.get(ev.check_org(name))
        if org is None:
            raise UsageError(f"no organization {name} in this deployment", "glint org create NAME")
        return org

    def all(self) -> list[Org]:
        rows = self.conn.execute("SELECT name, label, created FROM orgs ORDER BY name").fetchall()
        out = [self.get(DEFAULT_ORG)]
        return [o for o in out if o is not None] + [Org(*r) for r in rows]

    # --- shipments' item lists
    def _note_shipment(self, sid: str, sender: str, receiver: str, items: list[str]) -> None:
        self.conn.execute("INSERT INTO shipments(id, sender, receiver, items, created) VALUES (?,?,?,?,?)",
                          (sid, sender, receiver, json.dumps(items), _time.time()))

    def note_offered(self, sid: str, sender: str, receiver: str, item: str) -> None:
        """One more item of shipment ``sid`` (an offer uploaded by a host that made it locally,
        glint.server.uploads); the shipment's row is made by its first item."""
        row = self.shipment_row(sid)
        if row is None:
            self._note_shipment(sid, sender, receiver, [item])
        elif item not in row[2]:
            self.conn.execute("UPDATE shipments SET items=? WHERE id=?", (json.dumps(row[2] + [item]), sid))

    def _forget_shipment(self, sid: str) -> None:
        self.conn.execute("DELETE FROM shipments WHERE id=?", (sid,))

    def shipment_row(self, sid: str) -> tuple[str, str, list[str], float] | None:
        row = self.conn.execute("SELECT sender, receiver, items, created FROM shipments WHERE id=?",
                                (ev.check_shipment_id(sid),)).fetchone()
        return None if row is None else (row[0], row[1], json.loads(row[2]), row[3])

    def shipment_ids(self, org: str | None = None) -> list[str]:
        if org is None:
            rows = self.conn.execute("SELECT id FROM shipments ORDER BY created").fetchall()
        else:
            rows = self.conn.execute("SELECT id FROM shipments WHERE sender=? OR receiver=? ORDER BY created",
                                     (org, org)).fetchall()
        return [r[0] for r in rows]


# --- access ------------------------------------------------------------------------------------

def org_of_key(key) -> str:
    """The organization of an API key (glint.server.auth.ApiKey; None: the public)."""
    return getattr(key, "org", None) or DEFAULT_ORG


def may_read(st: "ItemState", org: str) -> bool:
    return st.org == org or org in st.shared_with


def check_read(st: "ItemState", org: str) -> None:
    """OrgRefused unless ``org`` owns the item or it is shared with ``org``."""
    if not may_read(st, org):
        raise OrgRefused(f"item {st.item} belongs to another organization and is not shared with {org}",
                         "its owner may share it: glint share grant ITEM --with ORG", "not-shared")


def check_write(st: "ItemState", org: str) -> None:
    """OrgRefused unless ``org`` owns the item (a sharing grant is read access only)."""
    if st.org != org:
        why = "is only shared with" if org in st.shared_with else "belongs to another organization than"
        raise OrgRefused(f"item {st.item} {why} {org}: only its owner organization may change it",
                         "the owner may ship it to you (glint ship offer ITEM --to ORG)", "other-organization")


# --- shipments ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shipment:
    id: str
    sender: str
    receiver: str
    items: list[str]
    state: str          # pending, accepted, rejected, cancelled, ended (an item retired while pending),
                        # failed (its offer was never appended)
    created: float

    def to_dict(self) -> dict:
        return {"id": self.id, "from": self.sender, "to": self.receiver, "items": list(self.items),
                "state": self.state, "created": self.created}


_OUTCOME = {"accept": "accepted", "reject": "rejected", "cancel": "cancelled", "offer": "pending"}


def shipment(led: "Ledger", orgs: Orgs, sid: str) -> Shipment:
    """A shipment and its state, read from its items' events in the ledger."""
    row = orgs.shipment_row(sid)
    if row is None:
        raise UsageError(f"no shipment {sid} in this deployment", "see 'glint ship list'")
    sender, receiver, items, created = row
    last: list[str] = []     # each item's last act in this shipment (they move together, one commit per act)
    retired = False
    for item in items:
        try:
            st = led.item(item)
        except UsageError:
            continue
        retired = retired or st.state == lc.RETIRED
        acts = [e.data["act"] for e in st.events if e.kind == ev.SHIP and e.data.get("ship") == sid]
        if acts:
            last.append(acts[-1])
    decided = [a for a in last if a != "offer"]
    state = _OUTCOME[decided[0]] if decided else "failed" if not last else "ended" if retired else "pending"
    return Shipment(sid, sender, receiver, items, state, created)


def shipments(led: "Ledger", orgs: Orgs, org: str | None = None) -> list[Shipment]:
    """The shipments from or to ``org`` (None: all), oldest first."""
    return [shipment(led, orgs, sid) for sid in orgs.shipment_ids(org)]


def offer(led: "Ledger", orgs: Orgs, items: Iterable[str], to: str, sender: str | None = None,
          operator: str | None = None, note: str | None = None, time: int | None = None) -> Shipment:
    """Offer ``items`` to organization ``to``: pending until it accepts (the sender keeps them).

    ``sender``: the caller's organization (None: the deployment's operator, acting for the items'
    owner); every item must be owned by it, live and not in another pending shipment.
    """
    items = list(dict.fromkeys(items))
    if not items or len(items) > MAX_SHIPMENT_ITEMS:
        raise UsageError(f"a shipment holds 1..{MAX_SHIPMENT_ITEMS} items")
    orgs.require(to)
    owners = set()
    for item in items:
        st = led.item(item)
        if sender is not None:
            check_write(st, sender)
        owners.add(st.org)
    if len(owners) != 1:
        raise UsageError("the items of one shipment belong to one organization, these to "
                         + ", ".join(sorted(owners)), "ship each organization's items separately")
    frm = owners.pop()
    if to == frm:
        raise UsageError(f"the items already belong to {to}")
    sid = secrets.token_hex(ev.SHIPMENT_ID_LEN // 2)
    data = {"act": "offer", "ship": sid, "to": to, **_clean(op=operator, note=note)}
    orgs._note_shipment(sid, frm, to, items)   # the lookup first: the ledger then says what happened
    try:
        led.append_batch([EventSpec(ev.SHIP, item, dict(data), time) for item in items])
    except BaseException:
        orgs._forget_shipment(sid)   # refused (or failed): nothing of it is in the ledger
        raise
    return shipment(led, orgs, sid)


def decide(led: "Ledger", orgs: Orgs, sid: str, act: str, org: str | None = None, operator: str | None = None,
           reason: str | None = None, time: int | None = None) -> Shipment:
    """``accept`` / ``reject`` (the receiver) or ``cancel`` (the sender) a pending shipment.

    ``org``: the caller's organization (None: the deployment's operator, for either side).
    """
    if act not in ("accept", "reject", "cancel"):
        raise UsageError(f"a shipment is accepted, rejected or cancelled, not {act!r}")
    s = shipment(led, orgs, sid)
    side = s.sender if act == "cancel" else s.receiver
    if org is not None and org != side:
        who = "its sender" if act == "cancel" else "its receiver"
        raise OrgRefused(f"shipment {sid} is from {s.sender} to {s.receiver}: only {who} ({side}) may {act} it",
                         None, "other-organization")
    items = s.items
    if s.state == "ended" and act == "cancel":   # the sender frees the items that are still live
        items = [i for i in s.items if (led.item(i).shipment or {}).get("id") == sid]
    elif s.state != "pending":
        raise lc.LifecycleRefused(f"shipment {sid} is {s.state}, not pending: it cannot be {_OUTCOME[act]}",
                                  "see 'glint ship list'" + ("; its sender may cancel it" if s.state == "ended"
                                                             else ""), s.state)
    data = {"act": act, "ship": sid, **_clean(op=operator, reason=reason)}
    led.append_batch([EventSpec(ev.SHIP, item, dict(data), time) for item in items])
    return shipment(led, orgs, sid)


# --- sharing grants ----------------------------------------------------------------------------

def share(led: "Ledger", orgs: Orgs, items: Iterable[str], with_org: str, act: str = "grant",
          org: str | None = None, operator: str | None = None, time: int | None = None) -> list:
    """Grant (or ``act="revoke"``) ``with_org`` read access to ``items``; ``org``: the caller's (owner)."""
    if act not in ev.SHARE_ACTS:
        raise UsageError(f"a sharing grant is granted or revoked, not {act!r}")
    items = list(dict.fromkeys(items))
    if not items or len(items) > MAX_SHIPMENT_ITEMS:
        raise UsageError(f"a grant names 1..{MAX_SHIPMENT_ITEMS} items")
    if act == "grant":
        orgs.require(with_org)
    else:
        ev.check_org(with_org)
    if org is not None:
        for item in items:
            check_write(led.item(item), org)
    data = {"act": act, "org": with_org, **_clean(op=operator)}
    return led.append_batch([EventSpec(ev.SHARE, item, dict(data), time) for item in items])


def items_of(led: "Ledger", org: str) -> set[str]:
    """The items ``org`` owns now (one pass over the log: registers and accepted shipments)."""
    owner: dict[str, str] = {}
    pending: dict[str, str] = {}
    for e in led.events():
        if e.kind == ev.REGISTER:
            owner[e.item] = e.data.get("org") or DEFAULT_ORG
        elif e.kind == ev.SHIP:
            if e.data["act"] == "offer":
                pending[e.item] = e.data["to"]
            elif e.data["act"] == "accept" and e.item in pending:
                owner[e.item] = pending.pop(e.item)
            else:
                pending.pop(e.item, None)
    return {item for item, o in owner.items() if o == org}


def shared_with(led: "Ledger", item: str) -> list[str]:
    return list(led.item(item).shared_with)


# --- certificates: void, and the item's current status -----------------------------------------

def void_certificate(led: "Ledger", index: int, reason: str, operator: str | None = None,
                     time: int | None = None, org: str | None = None):
    """Void the certificate of verify event ``index`` (an issuer's decision, in the ledger)."""
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError("voiding a certificate needs a reason (--reason TEXT)")
    e = led.event(index)
    if e.kind != ev.VERIFY:
        raise UsageError(f"event {index} is a {e.kind} event, not a verification: it has no certificate")
    if org is not None:
        check_write(led.item(e.item), org)
    return led.append_event(ev.VOID, e.item, {"event": index, "reason": reason, **_clean(op=operator)}, time)


def current_status(led: "Ledger", index: int) -> dict:
    """What is true now of the certificate of verify event ``index`` and its item (public facts).

    ``status``: ``voided`` (an issuer voided this certificate), ``retired`` (the item was retired
    later), ``suspect`` (an open case: e.g. a substitution after a failed rental return), or
    ``current`` (none of these); ``newer``: a later verification of the item exists.
    """
    from glint.ledger.sealed import Sealed

    e = led.event(index)
    if e.kind != ev.VERIFY:
        raise UsageError(f"event {index} is a {e.kind} event, not a verification")
    st = led.item(e.item, reader="public")   # public facts only: a sealed reason stays sealed

    def shown(v):
        return None if isinstance(v, Sealed) else v

    void = st.voided.get(index)
    case = None
    if st.state == lc.SUSPECT:
        sus = next((x for x in reversed(st.events) if x.kind == ev.SUSPECT), None)
        case = None if sus is None else {"index": sus.index, "time": sus.time,
                                         "reason": shown(sus.data.get("reason")), "case": sus.data.get("case")}
    status = ("voided" if void else "retired" if st.state == lc.RETIRED else "suspect" if case else "current")
    return {"index": index, "item": e.item, "status": status, "state": st.state, "since": st.since,
            "why": shown(st.why), "voided": void, "case": case,
            "newer": st.last_verify is not None and st.last_verify["index"] != index}


def status_line(s: dict) -> str:
    """One line saying a certificate's current status (the CLI and the pages say the same)."""
    if s["status"] == "voided":
        v = s["voided"]
        return f"certificate voided by its issuer at {lc.when(v['time'])}: {v['reason']}"
    if s["status"] == "retired":
        return f"item retired since {lc.when(s['since'])}" + (f": {s['why']}" if s["why"] else "")
    if s["status"] == "suspect":
        c = s["case"] or {}
        return (f"item suspect since {lc.when(s['since'])}: open case" + (f" {c['case']}" if c.get("case") is not None
                                                                          else "")
                + (f" ({c['reason']})" if c.get("reason") else ""))
    return "current: not voided, the item is not retired and has no open case"


def _clean(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}
