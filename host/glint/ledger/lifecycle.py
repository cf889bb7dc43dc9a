"""The item state machine, written once: which events each lifecycle state accepts, and what follows.

Every append goes through it (``glint.ledger.twins.apply`` calls ``step`` before an event
changes a twin), so the library, ``glint ledger append``, the workflow commands, the HTTP
uploads (``POST /v1/events``, the workflow routes) and the replay inside a certificate's
offline check all refuse the same events with the same one-line reason:

    item acme:BAG-1 is retired (since 2026-12-01T12:00:00Z: destroyed): no lifecycle event is accepted

States (``STATES``)::

    new          not registered yet: only ``register`` is accepted
    enrolled     registered and in circulation (with its owner, custodian and coatings)
    in-service   received by a service centre (``service`` with stage "in") until stage "out"
    rented-out   out with a renter (``rental-out``) until ``rental-return``
    suspect      something is wrong (a failed rental return: a possible substitution); only
                 scans, passport updates, ``clear`` (back to the state before) or ``retire``
    retired      terminal: nothing is accepted

``TABLE`` maps an *event* to ``{state: next state}``; a state that is not listed refuses
the event. ``SAME`` stays in the state, ``PREVIOUS`` returns to the state the item was in
before it became suspect. An event is the event kind, or ``kind:variant`` where the kind's
data picks a variant (``VARIANTS``): ``service`` with ``stage`` "in" / "out" is
``service:in`` / ``service:out``; a ``service`` without a stage is work recorded in the
state the item is in.

Adding an event kind (e.g. ``bind``, ``derive``, an assembly kind):

1. its fields in ``glint.ledger.events.KIND_FIELDS`` (and ``Event.summary``);
2. one row here, ``TABLE[kind] = {state: next state, ...}`` naming every state that accepts it
   (use ``LIVE`` for "every state but new and retired", ``SAME`` for "no state change");
   if its data selects different moves, a function in ``VARIANTS`` returning the row's name;
3. its effect on the twin (owner, passport, ...) in ``glint.ledger.twins.apply``;
4. if clients may upload it: ``glint.server.schema.FIELDS`` and ``glint.server.auth.UPLOAD_KINDS``;
5. regenerate the table in docs/lifecycle.md (``lifecycle.table_markdown()``, between its markers:
   ``python -c "from glint.ledger.lifecycle import write_doc; write_doc('docs/lifecycle.md')"``)
   (tests/host/ledger/test_lifecycle.py fails while the doc is stale, and while a kind of
   KIND_FIELDS has no row here).
"""

from __future__ import annotations

import time as _time
from typing import Callable

from glint.errors import UsageError
from glint.ledger import events as ev

NEW = "new"
ENROLLED = "enrolled"
IN_SERVICE = "in-service"
RENTED_OUT = "rented-out"
SUSPECT = "suspect"
RETIRED = "retired"
STATES = (NEW, ENROLLED, IN_SERVICE, RENTED_OUT, SUSPECT, RETIRED)
LIVE = (ENROLLED, IN_SERVICE, RENTED_OUT, SUSPECT)  # registered and not retired

SAME = "="         # the event leaves the state as it is
PREVIOUS = "<"     # back to the state before the item became suspect

STATE_TEXT = {NEW: "not registered", ENROLLED: "enrolled", IN_SERVICE: "in service",
              RENTED_OUT: "rented out", SUSPECT: "suspect", RETIRED: "retired"}


def _all(states, to=SAME) -> dict[str, str]:
    return {s: to for s in states}


# event -> {state it is accepted in: the state that follows}
TABLE: dict[str, dict[str, str]] = {
    ev.REGISTER: {NEW: ENROLLED},
    ev.ENROLL: _all((ENROLLED, IN_SERVICE)),
    ev.VERIFY: _all(LIVE),
    ev.TRANSFER: _all((ENROLLED,)),
    ev.SERVICE: _all((ENROLLED, IN_SERVICE)),
    ev.SERVICE + ":in": {ENROLLED: IN_SERVICE},
    ev.SERVICE + ":out": {IN_SERVICE: ENROLLED},
    ev.RENTAL_OUT: {ENROLLED: RENTED_OUT},
    ev.RENTAL_RETURN: {RENTED_OUT: ENROLLED},
    ev.PASSPORT: _all(LIVE),
    ev.SUSPECT: _all((ENROLLED, IN_SERVICE, RENTED_OUT), SUSPECT),
    ev.CLEAR: {SUSPECT: PREVIOUS},
    ev.RETIRE: _all(LIVE, RETIRED),
    ev.ASSEMBLY: _all((ENROLLED, IN_SERVICE)),
    ev.DERIVE: _all((ENROLLED, IN_SERVICE)),
    ev.BIND: _all((ENROLLED, IN_SERVICE, RENTED_OUT)),
    ev.SHIP + ":offer": _all((ENROLLED, IN_SERVICE)),
    ev.SHIP + ":accept": _all(LIVE),
    ev.SHIP + ":reject": _all(LIVE),
    ev.SHIP + ":cancel": _all(LIVE),
    ev.SHARE + ":grant": _all(LIVE),
    ev.SHARE + ":revoke": _all(LIVE),
    ev.VOID: _all(LIVE),
}

# kind -> function of the event's data naming its row in TABLE (kinds without one: the kind)
VARIANTS: dict[str, Callable[[dict], str]] = {
    ev.SERVICE: lambda d: f"{ev.SERVICE}:{d['stage']}" if d.get("stage") in ("in", "out") else ev.SERVICE,
    ev.SHIP: lambda d: f"{ev.SHIP}:{d.get('act')}",
    ev.SHARE: lambda d: f"{ev.SHARE}:{d.get('act')}",
}

# What each event means, for the documentation table (docs/lifecycle.md).
DOC: dict[str, str] = {
    ev.REGISTER: "the twin is created (provenance `factory` or `later`)",
    ev.ENROLL: "a coating is enrolled (a re-coat replaces the active one, which stays in the history)",
    ev.VERIFY: "a scan is recorded (pass or fail)",
    ev.TRANSFER: "new owner and/or custodian (seller, buyer, channel, price)",
    ev.SERVICE: "work recorded where the item is",
    ev.SERVICE + ":in": "received for service, after a passing scan (or a brand's override)",
    ev.SERVICE + ":out": "the work done, back in circulation",
    ev.RENTAL_OUT: "out with a renter",
    ev.RENTAL_RETURN: "back from the renter, after a passing scan of the same item",
    ev.PASSPORT: "product passport fields set",
    ev.SUSPECT: "marked suspect (e.g. a failed rental return: substitution case)",
    ev.CLEAR: "a suspect item cleared: back to the state it was in",
    ev.RETIRE: "retired for good (destroyed, lost, recycled)",
    ev.ASSEMBLY: "an assembly's parts (on the assembly), or its assembly (on a part)",
    ev.DERIVE: "children made from it (cut, machined, split); each child's register names it",
    ev.BIND: "a secondary identifier (QR, NFC, serial) bound: it finds the twin, the coating authenticates",
    ev.SHIP + ":offer": "offered to another organization (pending: the sender keeps it)",
    ev.SHIP + ":accept": "the receiver accepted: the item, its history and identifiers are its organization's",
    ev.SHIP + ":reject": "the receiver refused the shipment: the sender keeps the item",
    ev.SHIP + ":cancel": "the sender withdrew the offer",
    ev.SHARE + ":grant": "another organization may read the item",
    ev.SHARE + ":revoke": "that organization's read access ends",
    ev.VOID: "an issuer voided the certificate of one of its verify events (shown wherever it is checked)",
}

# The command that appends each event (docs/lifecycle.md).
COMMANDS: dict[str, str] = {
    ev.REGISTER: "`glint intake`, `glint enroll`",
    ev.ENROLL: "`glint intake`, `glint enroll`, `glint service --recoat`",
    ev.VERIFY: "`glint scan`, and every workflow that scans",
    ev.TRANSFER: "`glint transfer ITEM --to OWNER`",
    ev.SERVICE: "`glint service ITEM --open` (later visits)",
    ev.SERVICE + ":in": "`glint service ITEM`",
    ev.SERVICE + ":out": "`glint service ITEM` (unless `--open`)",
    ev.RENTAL_OUT: "`glint rental out ITEM --to RENTER`",
    ev.RENTAL_RETURN: "`glint rental return ITEM`",
    ev.PASSPORT: "`glint passport set ITEM F=V --audience A`",
    ev.SUSPECT: "`glint rental return` (failed scan)",
    ev.CLEAR: "`glint ledger append clear`",
    ev.RETIRE: "`glint retire ITEM --reason TEXT`",
    ev.ASSEMBLY: "`glint assembly define ITEM --part NAME=ITEM`",
    ev.DERIVE: "`glint derive PARENT --child ITEM`",
    ev.BIND: "`glint bind ITEM --qr/--nfc/--serial VALUE`",
    ev.SHIP + ":offer": "`glint ship offer ITEM... --to ORG`",
    ev.SHIP + ":accept": "`glint ship accept ID`",
    ev.SHIP + ":reject": "`glint ship reject ID`",
    ev.SHIP + ":cancel": "`glint ship cancel ID`",
    ev.SHARE + ":grant": "`glint share grant ITEM... --with ORG`",
    ev.SHARE + ":revoke": "`glint share revoke ITEM... --with ORG`",
    ev.VOID: "`glint cert void CERT --reason TEXT`",
}


# Refusals that read better in words of their own: (event, state or None for any) -> phrase.
_PHRASES = {
    (ev.REGISTER, None): "it is already registered",
    (ev.RENTAL_OUT, RENTED_OUT): "it is already rented out",
    (ev.RENTAL_RETURN, ENROLLED): "it is not rented out",
    (ev.RENTAL_RETURN, IN_SERVICE): "it is not rented out",
    (ev.SERVICE + ":in", IN_SERVICE): "it is already in service",
    (ev.SERVICE + ":out", ENROLLED): "it is not in service",
    (ev.CLEAR, None): "it is not suspect",
}


class LifecycleRefused(UsageError):
    """An event the item's state does not accept; ``reason`` is the state (HTTP 422 ``reason``)."""

    def __init__(self, msg: str, hint: str | None = None, reason: str = ""):
        super().__init__(msg, hint)
        self.reason = reason


def event_name(kind: str, data: dict) -> str:
    """The TABLE row of an event of ``kind`` with ``data``."""
    v = VARIANTS.get(kind)
    return v(data) if v is not None else kind


def accepted(state: str) -> list[str]:
    """The events ``state`` accepts, in table order."""
    return [name for name, row in TABLE.items() if state in row]


def when(t: int | None) -> str:
    if t is None:
        return "?"
    try:
        return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(t))
    except (OverflowError, OSError, ValueError):
        return f"t={t}"


def step(item: str, state: str, since: int | None, why: str | None, kind: str, data: dict,
         previous: str | None = None) -> str:
    """The state after an event of ``kind`` with ``data``; LifecycleRefused when ``state`` refuses it.

    ``since``/``why``: when and why the item entered ``state`` (named in the refusal);
    ``previous``: the state before ``suspect`` (where ``clear`` returns to).
    """
    name = event_name(kind, data)
    row = TABLE.get(name)
    if row is None:
        raise LifecycleRefused(f"event kind {kind!r} has no rule in the item state machine",
                               "add its row to glint.ledger.lifecycle.TABLE", "no-rule")
    nxt = row.get(state)
    if nxt is None:
        if state == NEW:
            raise LifecycleRefused(f"item {item} is not registered", "register it first (glint intake)", NEW)
        text = STATE_TEXT.get(state, state)
        reason = f"since {when(since)}" + (f": {why}" if why else "")
        if state == RETIRED:
            raise LifecycleRefused(f"item {item} is {text} ({reason}): no lifecycle event is accepted",
                                   None, RETIRED)
        what = _PHRASES.get((name, state)) or _PHRASES.get((name, None)) or f"a {name} event is not accepted"
        ok = ", ".join(accepted(state)) or "nothing"
        raise LifecycleRefused(f"item {item} is {text} ({reason}): {what}", f"accepted when {text}: {ok}", state)
    if nxt == SAME:
        return state
    if nxt == PREVIOUS:
        return previous or ENROLLED
    return nxt


def table_markdown() -> str:
    """The state table of docs/lifecycle.md (generated; a test keeps the doc current)."""
    states = [s for s in STATES]
    head = "| event | " + " | ".join(f"{STATE_TEXT[s]}" for s in states) + " | what it records | command |"
    lines = [head, "|" + "---|" * (len(states) + 3)]
    for name, row in TABLE.items():
        cells = []
        for s in states:
            nxt = row.get(s)
            cells.append("refused" if nxt is None else "stays" if nxt == SAME
                         else "back to the state before" if nxt == PREVIOUS else f"**{STATE_TEXT[nxt]}**")
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {DOC.get(name, '')} | {COMMANDS.get(name, '')} |")
    return "\n".join(lines) + "\n"


BEGIN_MARK = "<!-- state table: generated by glint.ledger.lifecycle.table_markdown() -->\n"
END_MARK = "<!-- end of the state table -->\n"


def write_doc(path) -> None:
    """Rewrite the state table between the markers of docs/lifecycle.md."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text()
    a, b = text.index(BEGIN_MARK) + len(BEGIN_MARK), text.index(END_MARK)
    p.write_text(text[:a] + table_markdown() + text[b:])
