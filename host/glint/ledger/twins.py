"""Digital twins: an item's state, rebuilt by replaying its events from the log.

Nothing here is stored separately: the log is the only source of truth, so the
state a buyer sees is exactly what the events (and the proofs over them) say.

- item: identifier, brand, product-passport data (EU Digital Product Passport fields
  such as material composition, origin, repair log), provenance class;
- coatings: every enrolled reference; re-enrollment after a repair adds a new coating
  that replaces the old one, which stays in the history (``active`` False);
- components: an assembly lists its parts (part name -> item id of the marked part);
  each part is an item of its own with ``of`` naming its assembly;
- custody: owner, custodian, rental state, retirement;
- lifecycle state (enrolled, in service, rented out, suspect, retired): which events the
  item accepts next is decided in one place, glint.ledger.lifecycle.
- passport audiences: who may read each passport field (``passport_aud``; None: the brand only);
- lineage: the parent an item was derived from (``lineage``) and the children derived from it;
- identifiers: secondary identifiers bound to the item (QR label, NFC chip, serial), which find
  the twin but do not authenticate (only the coating does);
- organizations (glint.orgs): the owner organization (``org``), a pending shipment to another one
  (``shipment``), the organizations it is shared with (``shared_with``), and the voided
  certificates (``voided``: verify event index -> why).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glint.errors import UsageError
from glint.ledger import events as ev
from glint.ledger import lifecycle as lc


@dataclass
class Coating:
    id: str
    ref: bytes | None
    enrolled_index: int
    enrolled_time: int
    part: str | None = None
    active: bool = True
    replaced_by: str | None = None
    replaces: str | None = None


@dataclass
class ItemState:
    item: str
    brand: str = ""
    provenance: dict = field(default_factory=dict)
    passport: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)
    assembly: str | None = None
    part_name: str | None = None
    coatings: list[Coating] = field(default_factory=list)
    owner: str | None = None
    custodian: str | None = None
    rented_to: str | None = None
    retired: bool = False
    repairs: list[dict] = field(default_factory=list)
    last_verify: dict | None = None
    state: str = lc.NEW             # lifecycle state (glint.ledger.lifecycle.STATES)
    since: int | None = None        # time the item entered ``state``
    since_index: int | None = None  # log index of the event that put it there
    why: str | None = None          # why (a retirement's or a suspicion's reason, the renter, ...)
    before_suspect: str | None = None
    passport_aud: dict = field(default_factory=dict)     # passport field -> audience (None: brand only)
    lineage: dict | None = None                          # {"item": parent, "how": ..., "origin": ...}
    derivations: list[dict] = field(default_factory=list)  # {"how", "children", "index", "time"}
    identifiers: dict = field(default_factory=dict)      # scheme -> [values]
    org: str = ev.DEFAULT_ORG                            # the owner organization
    shipment: dict | None = None                         # pending: {"id", "to", "from", "index", "time"}
    shared_with: list[str] = field(default_factory=list)  # organizations with read access
    voided: dict = field(default_factory=dict)           # verify event index -> {"reason", "index", "time"}
    scans: list[int] = field(default_factory=list)       # log indexes of the item's verify events
    events: list[ev.Event] = field(default_factory=list)

    def coating(self, cid: str) -> Coating | None:
        return next((c for c in self.coatings if c.id == cid), None)

    def active_coatings(self) -> list[Coating]:
        return [c for c in self.coatings if c.active]

    def provenance_line(self) -> str:
        p = self.provenance
        if p.get("class") == "factory":
            return "factory-enrolled" + (f" by {p['by']}" if p.get("by") else "")
        return (f"enrolled later ({p.get('reason') or 'no reason given'})" + (f" by {p['by']}" if p.get("by") else "")
                + (f" at {p['at']}" if p.get("at") is not None else ""))

    def as_dict(self) -> dict:
        return {
            "item": self.item, "brand": self.brand, "provenance": self.provenance,
            "passport": self.passport, "parts": self.parts, "assembly": self.assembly,
            "part": self.part_name, "owner": self.owner, "custodian": self.custodian,
            "rented_to": self.rented_to, "retired": self.retired, "repairs": self.repairs,
            "state": self.state, "since": self.since, "since_index": self.since_index, "why": self.why,
            "passport_audience": {k: self.passport_aud.get(k) or "brand" for k in self.passport},
            "lineage": self.lineage, "derivations": self.derivations, "identifiers": self.identifiers,
            "org": self.org, "shipment": self.shipment, "shared_with": list(self.shared_with),
            "voided": {str(k): v for k, v in self.voided.items()},
            "coatings": [
                {"id": c.id, "ref": c.ref.hex() if c.ref else None, "index": c.enrolled_index,
                 "time": c.enrolled_time, "part": c.part, "active": c.active,
                 "replaced_by": c.replaced_by, "replaces": c.replaces}
                for c in self.coatings
            ],
            "events": len(self.events),
        }


def apply(state: ItemState | None, e: ev.Event) -> ItemState:
    """Apply one event to an item's state, enforcing the lifecycle and custody rules.

    Raises UsageError (lifecycle.LifecycleRefused for a state that refuses the event) if the
    event is not allowed: what the ledger refuses to append and a certificate check refuses
    to replay.
    """
    d = e.data
    cur = lc.NEW if state is None else state.state
    nxt = lc.step(e.item, cur, None if state is None else state.since, None if state is None else state.why,
                  e.kind, d, None if state is None else state.before_suspect)
    if state is None:
        state = ItemState(e.item)
    k = e.kind
    if "verified" in d:
        _check_verified(state, e)
    if k == ev.REGISTER:
        state.brand = d["brand"]
        state.provenance = dict(d["prov"])
        state.passport = dict(d.get("passport", {}))
        state.parts = dict(d.get("parts", {}))
        state.assembly = d.get("of")
        state.part_name = d.get("part")
        state.lineage = dict(d["from"]) if "from" in d else None
        state.org = d.get("org") or ev.DEFAULT_ORG
    elif k == ev.ENROLL:
        if state.coating(d["coat"]):
            raise UsageError(f"coating {d['coat']} is already enrolled on {e.item}")
        old_id = d.get("replaces")
        if old_id is not None:
            old = state.coating(old_id)
            if old is None or not old.active:
                raise UsageError(f"coating {old_id} is not an active coating of {e.item}")
            old.active = False
            old.replaced_by = d["coat"]
        state.coatings.append(Coating(d["coat"], d.get("ref"), e.index, e.time, d.get("part"),
                                      replaces=old_id))
    elif k == ev.VERIFY:
        state.last_verify = {"index": e.index, "time": e.time, **d}
        state.scans.append(e.index)
    elif k == ev.SHIP:
        _ship(state, e)
    elif k == ev.SHARE:
        org = d["org"]
        if d["act"] == "grant":
            if org == state.org:
                raise UsageError(f"item {e.item} belongs to {org}: nothing to share with it")
            if org in state.shared_with:
                raise UsageError(f"item {e.item} is already shared with {org}")
            state.shared_with.append(org)
        else:
            if org not in state.shared_with:
                raise UsageError(f"item {e.item} is not shared with {org}")
            state.shared_with.remove(org)
    elif k == ev.VOID:
        idx = d["event"]
        if idx not in state.scans:
            raise UsageError(f"event {idx} is not a verify event of {e.item}: no certificate of it to void")
        if idx in state.voided:
            raise UsageError(f"the certificate of event {idx} of {e.item} is already voided")
        state.voided[idx] = {"reason": d.get("reason"), "index": e.index, "time": e.time}
    elif k == ev.TRANSFER:
        if "owner" not in d and "custodian" not in d:
            raise UsageError("a transfer names a new owner or custodian")
        state.owner = d.get("owner", state.owner)
        state.custodian = d.get("custodian", state.custodian)
    elif k == ev.SERVICE:
        state.repairs.append({"index": e.index, "time": e.time, **d})
    elif k == ev.RENTAL_OUT:
        if state.rented_to is not None:
            raise UsageError(f"item {e.item} is already rented out to {state.rented_to}")
        state.rented_to = d["to"]
    elif k == ev.RENTAL_RETURN:
        if state.rented_to is None:
            raise UsageError(f"item {e.item} is not rented out")
        state.rented_to = None
    elif k == ev.PASSPORT:
        state.passport.update(d["set"])
        for name in d["set"]:
            state.passport_aud[name] = d.get("aud")
    elif k == ev.ASSEMBLY:
        if "parts" in d:
            state.parts.update(d["parts"])
        else:
            if state.assembly is not None and (state.assembly, state.part_name) != (d["of"], d["part"]):
                raise UsageError(f"item {e.item} is already part {state.part_name!r} of {state.assembly}")
            state.assembly, state.part_name = d["of"], d["part"]
    elif k == ev.DERIVE:
        state.derivations.append({"how": d["how"], "children": list(d["children"]), "index": e.index,
                                  "time": e.time})
    elif k == ev.BIND:
        if d["value"] in state.identifiers.get(d["scheme"], ()):
            raise UsageError(f"{d['scheme']} {d['value']} is already bound to {e.item}")
        state.identifiers.setdefault(d["scheme"], []).append(d["value"])
    elif k == ev.RETIRE:
        state.retired = True
        state.shipment = None  # a pending shipment ends with the item (glint.orgs: state "ended")
    if nxt != cur:
        if nxt == lc.SUSPECT:
            state.before_suspect = cur
        state.state, state.since, state.since_index = nxt, e.time, e.index
        state.why = _why(k, d, state)
    state.events.append(e)
    return state


def _ship(state: ItemState, e: ev.Event) -> None:
    """A shipment's offer, acceptance, refusal or withdrawal (one pending shipment per item)."""
    d = e.data
    act, sid, pending = d["act"], d["ship"], state.shipment
    if act == "offer":
        if pending is not None:
            raise UsageError(f"item {e.item} is already in shipment {pending['id']} to {pending['to']} (pending)",
                             "the receiver accepts or rejects it, or the sender cancels it")
        if d["to"] == state.org:
            raise UsageError(f"item {e.item} already belongs to {d['to']}")
        state.shipment = {"id": sid, "to": d["to"], "from": state.org, "index": e.index, "time": e.time}
        return
    if pending is None or pending["id"] != sid:
        raise UsageError(f"item {e.item} has no pending shipment {sid}",
                         f"its pending shipment is {pending['id']}" if pending else "it is not being shipped")
    state.shipment = None
    if act == "accept":
        state.org = pending["to"]
        state.shared_with = []  # the sender's grants were the sender's to give


def _why(kind: str, d: dict, state: ItemState) -> str | None:
    if kind == ev.RENTAL_OUT:
        return f"to {d['to']}"
    if kind == ev.SERVICE:
        return f"{d.get('action')}" + (f" by {d['by']}" if d.get("by") else "")
    return d.get("reason")


def _check_verified(state: ItemState, e: ev.Event) -> None:
    """``verified`` names the item's latest verify event; it must have passed (but for ``suspect``)."""
    idx = e.data["verified"]
    lv = state.last_verify
    if type(idx) is not int or lv is None or lv["index"] != idx:
        raise UsageError(f"{e.kind} event of {e.item} relies on scan event {idx!r}, which is not the item's "
                         "latest scan", "scan the item again")
    if e.kind != ev.SUSPECT and lv.get("res") != "pass":
        raise UsageError(f"{e.kind} event of {e.item} relies on scan event {idx}, which did not pass")


def replay(events) -> ItemState | None:
    state = None
    for e in events:
        state = apply(state, e)
    return state


@dataclass(frozen=True)
class PartVerdict:
    """Outcome of checking one part of an assembly."""

    part: str
    item: str | None
    result: str
    belongs: bool
    reason: str


def assess_parts(assembly: ItemState, results: dict[str, dict], part_states: dict[str, ItemState | None]):
    """Say which part does not belong to ``assembly``.

    ``results`` maps part name -> {"res": "pass"/"fail", "item": matched item id or None};
    ``part_states`` maps matched item ids to their states. A part belongs if it verified
    and the item it matched is registered as that part of this assembly.
    """
    verdicts = []
    for name, r in sorted(results.items()):
        expected = assembly.parts.get(name)
        matched = r.get("item")
        if name not in assembly.parts:
            verdicts.append(PartVerdict(name, matched, r["res"], False, f"{assembly.item} has no part {name!r}"))
        elif r["res"] != "pass":
            verdicts.append(PartVerdict(name, matched, "fail", False, f"part {name!r} did not verify"))
        elif matched != expected:
            owner = part_states.get(matched) if matched is not None else None
            where = f"part of {owner.assembly}" if owner and owner.assembly else "a different item"
            verdicts.append(PartVerdict(name, matched, "pass", False,
                                        f"part {name!r} is genuine but is {matched} ({where}), not {expected}"))
        else:
            verdicts.append(PartVerdict(name, matched, "pass", True, "belongs"))
    return verdicts
