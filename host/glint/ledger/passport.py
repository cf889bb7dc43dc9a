"""Product passports with audiences: who may read each field (EU Digital Product Passport style).

Every passport field has one audience, set with the value (``passport`` event, ``aud``):

    public     anyone (the public item page, a marketplace check)
    owner      the owner: public fields too
    regulator  market surveillance, customs: public fields too
    recycler   dismantling and material recovery: public fields too
    brand      the brand: every field

A field set without an audience (at registration, or an old event) is read by the brand only:
nothing becomes public by accident. Reads return only what the reader's audience may see:

    set_fields(led, item, {"materials": "calf 92%"}, audience="public", operator="ana")
    visible(state, "recycler")                 # {field: value} a recycler may read
    reader_of_role("auditor")                  # the audience an HTTP API key role reads as
    reader_of_key("owner", state, "ana")       # an owner key reads as owner only of what ana owns

The CLI shows every field locally (``glint passport show``); the HTTP API filters by the
API key's role (``ROLE_READER``, docs/lifecycle.md).
"""

from __future__ import annotations

from glint.errors import UsageError
from glint.ledger import events as ev
from glint.ledger import sealed
from glint.ledger.twins import ItemState

AUDIENCES = ev.AUDIENCES
DEFAULT_AUDIENCE = "brand"   # a field recorded without an audience
# reader -> the audiences whose fields it reads (one table, glint.ledger.sealed: the same decides which
# sealed values of a leaf a reader is revealed)
READS: dict[str, frozenset] = sealed.READS
# HTTP API key role (glint.server.auth) -> reader. No key reads as public; bench and field hosts
# scan, they do not read private passport data; an auditor reads everything (as for item pages).
# An owner key reads as owner only the items its owner identity currently owns (reader_of_key).
ROLE_READER = {"public": "public", "bench": "public", "field": "public", "brand": "brand", "auditor": "brand",
               "owner": "owner", "regulator": "regulator", "recycler": "recycler"}
MAX_FIELD_NAME = 64


def reader_of_role(role: str | None) -> str:
    """The passport reader an API key role reads as (None or unknown: public)."""
    return ROLE_READER.get(role or "public", "public")


def reader_of_key(role: str | None, state: ItemState, owner: str | None = None) -> str:
    """The reader an API key (its role, an owner key's owner identity) reads ``state`` as.

    An owner key reads as ``owner`` only while the item's custody state names its identity as
    the owner; any other item it reads as public.
    """
    reader = reader_of_role(role)
    if reader == "owner" and (owner is None or state.owner != owner):
        return "public"
    return reader


def audience_of(state: ItemState, name: str) -> str:
    return state.passport_aud.get(name) or DEFAULT_AUDIENCE


def may_read(reader: str, audience: str | None) -> bool:
    return (audience or DEFAULT_AUDIENCE) in READS.get(reader, READS["public"])


def visible(state: ItemState, reader: str) -> dict:
    """The passport fields ``reader`` (an audience) may read."""
    if reader not in READS:
        raise UsageError(f"unknown passport reader {reader!r}", "one of " + ", ".join(AUDIENCES))
    return {k: v for k, v in state.passport.items() if may_read(reader, audience_of(state, k))}


# Fields of event data a public (unauthenticated) reader never sees: people and places
# (the item page of the HTTP API and the public pages).
# The same fields are sealed in the log's leaves (glint.ledger.sealed.WHO_WHERE: audience owner).
PRIVATE_FIELDS = sealed.WHO_WHERE


def redact_event_data(kind: str, data: dict, reader: str) -> dict:
    """Event data as ``reader`` may see it: passport values of other audiences left out."""
    if kind == ev.PASSPORT and not may_read(reader, data.get("aud")):
        return {**data, "set": {}, "hidden": len(data.get("set", {}))}
    if kind == ev.REGISTER and "passport" in data and not may_read(reader, None):
        return {k: v for k, v in data.items() if k != "passport"} | {"hidden": len(data["passport"])}
    return data


def parse_assignments(pairs: list[str]) -> dict:
    """``["FIELD=VALUE", ...]`` -> {field: value}; one-line errors for a malformed pair."""
    out: dict = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"passport field {p!r} is not FIELD=VALUE")
        if len(name) > MAX_FIELD_NAME or not name.isprintable():
            raise UsageError(f"passport field name {name[:20]!r}... is not 1..{MAX_FIELD_NAME} printable characters")
        out[name] = value
    if not out:
        raise UsageError("no passport fields given", "give FIELD=VALUE ...")
    return out


def set_fields(led, item: str, fields: dict, audience: str, operator: str | None = None,
               time: int | None = None):
    """Append a passport event setting ``fields`` for ``audience``; returns the Appended."""
    if audience not in AUDIENCES:
        raise UsageError(f"unknown passport audience {audience!r}", "one of " + ", ".join(AUDIENCES))
    data = {"set": dict(fields), "aud": audience}
    if operator:
        data["op"] = operator
    return led.append_event(ev.PASSPORT, item, data, time)


__all__ = ["AUDIENCES", "READS", "ROLE_READER", "reader_of_role", "reader_of_key", "visible", "may_read", "audience_of",
           "redact_event_data", "parse_assignments", "set_fields"]
