"""Lineage and secondary identifiers: items derived from a parent, labels that find a twin.

    derive(host, "acme:BILLET-7", ["acme:BLADE-1", "acme:BLADE-2"], how="machined")
    bind(host, "acme:BLADE-1", "qr", "https://acme.example/q/B1")
    find_by_identifier(host, "qr", "https://acme.example/q/B1")     # -> "acme:BLADE-1" or None

``derive`` appends, in one durable commit, a ``derive`` event on the parent (how, children)
and a ``register`` event for each child whose ``from`` names the parent, how it was made and
where the parent came from ("enrolled at the foundry"): the lineage is in both twins, and a
child's certificate carries it in the child's history (its register event). Each child then
gets its own coating (``glint enroll -p URL --item CHILD``).

``bind`` attaches a QR label, an NFC chip id or a serial to an item (a ``bind`` event). A
look-up by it finds the twin; it authenticates nothing: a scan found by an identifier still
verifies the coating, and its verify event records both (``via`` and ``coat``), so the
certificate says which was checked. An identifier names one item: binding it to a second is
refused. Look-ups use an index in glint.db (``identifiers``) brought up to date from the log
on each call (only the events appended since), so the ledger stays the one source of truth.
"""

from __future__ import annotations

import sqlite3

from glint.errors import UsageError
from glint.ledger import events as ev
from glint.ledger.cert import lineage_line  # noqa: F401  (re-exported: the one wording)

HOW = ("cut", "machined", "split", "cast", "assembled", "other")
MAX_CHILDREN = 256
MAX_ID_VALUE = 512

SCHEMA = """
CREATE TABLE IF NOT EXISTS identifiers(
    scheme TEXT NOT NULL, value TEXT NOT NULL, item TEXT NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY(scheme, value));
CREATE TABLE IF NOT EXISTS identifiers_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""


def origin_line(state) -> str:
    """Where an item came from, in words: "enrolled at the foundry" (its first located enrollment)."""
    for e in state.events:
        if e.kind == ev.ENROLL and e.data.get("loc"):
            return f"enrolled at {e.data['loc']}"
    return state.provenance_line()


def derive(host, parent: str, children: list[str], how: str, operator: str | None = None,
           location: str | None = None, note: str | None = None):
    """Create ``children`` derived from ``parent`` (one commit); returns the Appended events."""
    from glint.ledger import EventSpec

    if how not in HOW:
        raise UsageError(f"unknown derivation {how!r}", "one of " + ", ".join(HOW))
    if not children or len(children) > MAX_CHILDREN:
        raise UsageError(f"derive makes 1..{MAX_CHILDREN} children", "give --child ITEM (repeatable)")
    children = [ev.check_item_id(c) for c in children]
    if len(set(children)) != len(children) or parent in children:
        raise UsageError("each child is a new item, different from the parent and from each other")
    from glint.workflows.assembly import ensure_registered

    led = host.ledger
    ensure_registered(host, parent)
    st = led.item(parent)
    if st.retired:
        raise UsageError(f"item {parent} is retired; nothing can be derived from it")
    for c in children:
        if led.store.item_leaves(c):
            raise UsageError(f"item {c} already exists", "a derived item is new: give another id")
    extra = {k: v for k, v in (("op", operator), ("loc", location), ("note", note)) if v}
    lineage = {"item": parent, "how": how, "origin": origin_line(st)}
    specs = [EventSpec(ev.DERIVE, parent, {"children": list(children), "how": how, **extra})]
    # The children are the parent's organization's (glint.orgs; none named: the default one).
    org = {"org": st.org} if st.org != ev.DEFAULT_ORG else {}
    specs += [EventSpec(ev.REGISTER, c, {"brand": st.brand, "prov": {"class": "factory"}, "from": dict(lineage),
                                         **org}) for c in children]
    return led.append_batch(specs)


# --- identifiers ------------------------------------------------------------------------

def _db(host) -> sqlite3.Connection:
    conn = host.registry.conn
    conn.executescript(SCHEMA)
    return conn


def _catch_up(host) -> None:
    """Index the bind events appended since the last call (the log is the source of truth)."""
    conn = _db(host)
    row = conn.execute("SELECT v FROM identifiers_meta WHERE k='size'").fetchone()
    start = row[0] if row else 0
    led = host.ledger
    if start > led.size:  # another ledger file: start over
        conn.execute("DELETE FROM identifiers")
        start = 0
    if start == led.size:
        return
    with conn:
        for e in led.events(start):
            if e.kind == ev.BIND:
                conn.execute("INSERT OR IGNORE INTO identifiers(scheme, value, item, idx) VALUES(?,?,?,?)",
                             (e.data["scheme"], e.data["value"], e.item, e.index))
        conn.execute("INSERT OR REPLACE INTO identifiers_meta(k, v) VALUES('size', ?)", (led.size,))


def find_by_identifier(host, scheme: str, value: str) -> str | None:
    """The item a secondary identifier is bound to, or None."""
    if scheme not in ev.ID_SCHEMES:
        raise UsageError(f"unknown identifier scheme {scheme!r}", "one of " + ", ".join(ev.ID_SCHEMES))
    _catch_up(host)
    row = _db(host).execute("SELECT item FROM identifiers WHERE scheme=? AND value=?", (scheme, value)).fetchone()
    return row[0] if row else None


def bind(host, item: str, scheme: str, value: str, operator: str | None = None):
    """Bind ``scheme``:``value`` to ``item``; refused when it already names an item."""
    if scheme not in ev.ID_SCHEMES:
        raise UsageError(f"unknown identifier scheme {scheme!r}", "one of " + ", ".join(ev.ID_SCHEMES))
    if not value or len(value) > MAX_ID_VALUE or not value.isprintable():
        raise UsageError(f"a {scheme} identifier is 1..{MAX_ID_VALUE} printable characters")
    from glint.workflows.assembly import ensure_registered

    item = ev.check_item_id(item)
    ensure_registered(host, item)
    other = find_by_identifier(host, scheme, value)
    if other is not None:
        raise UsageError(f"{scheme} {value} is already bound to {other}",
                         "an identifier names one item; unbinding is not supported")
    data = {"scheme": scheme, "value": value}
    if operator:
        data["op"] = operator
    a = host.ledger.append_event(ev.BIND, item, data)
    _catch_up(host)
    return a


def resolve(host, scheme: str, value: str) -> str:
    """The item of an identifier, or a one-line UsageError."""
    item = find_by_identifier(host, scheme, value)
    if item is None:
        raise UsageError(f"no item has {scheme} {value}", f"bind it first: glint bind ITEM --{scheme} VALUE")
    return item


__all__ = ["derive", "bind", "find_by_identifier", "resolve", "lineage_line", "origin_line", "HOW"]
