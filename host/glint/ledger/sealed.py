"""Sealed values: what of an event is not public goes into its leaf as a salted commitment only.

A leaf is served publicly (``GET /v1/history``, certificate bundles, the certificate page), and a
hash covers every byte of it, so a value that only some readers may see cannot be in it. Instead
the leaf's data carries, under the key ``sealed``, one **commitment** per such value:

    commitment = SHA-256( deterministic CBOR [salt, name, value] )

with ``salt`` 16 fresh random bytes (os.urandom) per value, ``name`` the field's key (``op``, or
the passport field's own name) and ``value`` the value as given (any value event data may hold).
The salt and the value (the **reveal**) are stored beside the log (table ``reveals``, one row per
leaf, deterministic CBOR of the same shape as ``sealed`` with ``[salt, value]`` in place of each
commitment) and handed only to readers whose audience may see the value; every reader checks a
revealed value against its commitment (``open_data``: a forged or edited reveal is refused with
VerificationError naming the event and field). Dropping a reveal (erasure) leaves the leaf, its
hash, every proof and certificate as they were: the value is gone, the log still verifies.

What is sealed (docs/formats.md, "Sealed values"):

    who, where, prices    ``op``, ``loc``, ``note``, ``by``, ``to``, ``owner``, ``custodian``,
                          ``seller``, ``channel``, ``price``, ``currency``, ``cond``, ``reason``
                          of every kind: audience ``owner`` (the owner and the brand read them)
    passport values       ``set`` of a passport event whose audience is not ``public`` (that
                          audience); ``passport`` of a register event (the brand's)

What stays public: the kind, item, time, sequence and chain link; results, probabilities,
coatings, devices, scan digests, provenance class and authenticator, identifiers, lineage; the
names of sealed fields and a passport event's audience; public passport values; the organizations
of glint.orgs (a shipment offer's ``to``, which the custody rules replay, and a void's ``reason``,
which every verifier of the voided certificate is told: ``PUBLIC_BY_KIND``).

    leaf_data, reveal = seal(kind, data)          # at append time (glint.ledger.log)
    open_data(kind, leaf_data, reveal, reader)    # values the reader may see, checked; Sealed() else

Leaves written before sealing existed hold their values in the clear; they read and verify as
they always did (nothing to open).
"""

from __future__ import annotations

import hashlib
import os

from glint.errors import VerificationError
from glint.ledger import events as ev
from glintcore import cbor

SALT_BYTES = 16
SEALED_KEY = "sealed"
# Who, where and what was paid: sealed in every event kind that carries them.
WHO_WHERE = frozenset({"op", "loc", "note", "by", "to", "owner", "custodian", "seller", "channel", "price",
                       "currency", "cond", "reason"})
WHO_WHERE_AUDIENCE = "owner"
# Fields of WHO_WHERE that are public in one kind (glint.orgs): the receiving organization of a shipment
# offer (the state machine needs it on every replay) and why a certificate was voided (said to every verifier).
PUBLIC_BY_KIND = {ev.SHIP: frozenset({"to"}), ev.VOID: frozenset({"reason"})}
PASSPORT_DEFAULT_AUDIENCE = "brand"   # a passport value set without an audience (glint.ledger.passport)
# kind -> the key of its passport map, sealed per field
NESTED = {ev.PASSPORT: "set", ev.REGISTER: "passport"}
# reader -> audiences it reads (the one table: glint.ledger.passport.READS is this)
READS: dict[str, frozenset] = {
    "public": frozenset({"public"}),
    "owner": frozenset({"public", "owner"}),
    "regulator": frozenset({"public", "regulator"}),
    "recycler": frozenset({"public", "recycler"}),
    "brand": frozenset(ev.AUDIENCES),
}
ALL = None   # reader of ``open_data``: every value a reveal holds (the local ledger, a bundle's check)


def commitment(salt: bytes, name: str, value) -> bytes:
    """SHA-256 of the deterministic CBOR of ``[salt, name, value]``."""
    return _sha256(b"\x83" + _dumps(salt) + _dumps(name) + _dumps(value)).digest()


_sha256 = hashlib.sha256


def _dumps(v) -> bytes:
    """Deterministic CBOR, byte-identical to glintcore.cbor.dumps (tested): the leaf encoder's fast
    paths (glint.ledger.events.dumps) for maps, text and bytes, arrays here; sealing is on every append."""
    t = type(v)
    if t is list:
        n = len(v)
        return (bytes((0x80 | n,)) if n < 24 else ev._head(4, n)) + b"".join(map(_dumps, v))
    if t is dict:
        order = ev._order(tuple(v))
        if order is None:
            return cbor.dumps(v)
        n = len(order)
        return b"".join([bytes((0xA0 | n,)) if n < 24 else ev._head(5, n)]
                        + [kb + _dumps(v[k]) for kb, k in order])
    return ev.dumps(v)


class Sealed(str):
    """A value the reader may not see, or whose reveal was erased: reads as ``[sealed]``."""

    commitment: bytes

    def __new__(cls, c: bytes):
        s = super().__new__(cls, "[sealed]")
        s.commitment = c
        return s


def may_read(reader: str | None, audience: str | None) -> bool:
    if reader is None:
        return True
    return (audience or PASSPORT_DEFAULT_AUDIENCE) in READS.get(reader, READS["public"])


def nested_audience(kind: str, data: dict) -> str:
    """The audience of the values in a kind's passport map (a passport event's ``aud``; the brand's)."""
    return (data.get("aud") or PASSPORT_DEFAULT_AUDIENCE) if kind == ev.PASSPORT else PASSPORT_DEFAULT_AUDIENCE


def seal(kind: str, data: dict, urandom=os.urandom) -> tuple[dict, dict | None]:
    """(the data as the leaf holds it, the reveal) of an event's checked data; reveal None: all public."""
    out, reveal, _ = seal_encoded(kind, data, urandom)
    return out, reveal


def seal_encoded(kind: str, data: dict, urandom=os.urandom) -> tuple[dict, dict | None, bytes | None]:
    """``seal`` and the reveal's deterministic CBOR (what the store keeps), each value encoded once
    for its commitment and its reveal: this runs on every append."""
    public = PUBLIC_BY_KIND.get(kind, frozenset())
    top = [k for k in data if k in WHO_WHERE and k not in public]
    nk = NESTED.get(kind)
    sub = data.get(nk) if nk is not None else None
    private_sub = isinstance(sub, dict) and bool(sub) and nested_audience(kind, data) != "public"
    if not top and not private_sub:
        return data, None, None
    out = dict(data)
    sealed: dict = {}
    reveal: dict = {}
    enc: dict = {}   # key -> encoded reveal entry
    n = len(top) + (len(sub) if private_sub else 0)   # type: ignore[arg-type]
    pool = urandom(SALT_BYTES * n)
    at = 0
    for k in top:
        v = out.pop(k)
        salt = pool[at:at + SALT_BYTES]
        at += SALT_BYTES
        ev_ = _dumps(v)
        sealed[k] = _sha256(b"\x83\x50" + salt + ev._str(k) + ev_).digest()
        reveal[k] = [salt, v]
        enc[k] = b"\x82\x50" + salt + ev_
    if private_sub:
        assert isinstance(sub, dict) and nk is not None
        if kind == ev.PASSPORT:
            out[nk] = {}     # required: a passport event always sets something
        else:
            del out[nk]
        cs, rs, es = {}, {}, {}
        for f, v in sub.items():
            salt = pool[at:at + SALT_BYTES]
            at += SALT_BYTES
            ev_ = _dumps(v)
            cs[f] = _sha256(b"\x83\x50" + salt + _dumps(f) + ev_).digest()
            rs[f] = [salt, v]
            es[f] = b"\x82\x50" + salt + ev_
        sealed[nk], reveal[nk] = cs, rs
        enc[nk] = _map_of_encoded(es)
    out[SEALED_KEY] = sealed
    return out, reveal, _map_of_encoded(enc)


def _map_of_encoded(entries: dict) -> bytes:
    """A text-keyed map whose values are already encoded, in deterministic order."""
    order = ev._order(tuple(entries))
    if order is None:  # a key that is not text: passport field names are, but never encode it wrong
        return cbor.dumps({k: cbor.loads(v) for k, v in entries.items()})
    n = len(order)
    return b"".join([bytes((0xA0 | n,)) if n < 24 else ev._head(5, n)] + [kb + entries[k] for kb, k in order])


def _bad(index, what: str) -> VerificationError:
    return VerificationError(f"event {index}: {what}")


def _check_commitment(index, name, c) -> bytes:
    if not isinstance(c, bytes) or len(c) != 32:
        raise _bad(index, f"sealed {name!r} is not a 32-byte commitment")
    return c


def _opened(index, name: str, c: bytes, r):
    """The revealed value of ``name`` checked against ``c``, or Sealed(c) when there is no reveal."""
    if r is None:
        return Sealed(c)
    if not isinstance(r, list) or len(r) != 2 or not isinstance(r[0], bytes) or len(r[0]) != SALT_BYTES:
        raise _bad(index, f"the reveal of {name!r} is not [16-byte salt, value]")
    if commitment(r[0], name, r[1]) != c:
        raise _bad(index, f"the revealed {name!r} does not match its commitment (a forged or edited reveal)")
    return r[1]


def open_data(kind: str, data: dict, reveal: dict | None, reader: str | None = ALL, index=None) -> dict:
    """The event's data with each sealed value the reader may see revealed (and checked against its
    commitment), the others as ``Sealed``. ``reader`` None: every value ``reveal`` holds.

    Raises VerificationError for a malformed ``sealed`` map, a value both sealed and in the clear,
    or a reveal that does not match (``index`` names the event)."""
    s = data.get(SEALED_KEY)
    if s is None:
        return data
    if not isinstance(s, dict):
        raise _bad(index, "its sealed values are not a map")
    rv = reveal if isinstance(reveal, dict) else {}
    out = {k: v for k, v in data.items() if k != SEALED_KEY}
    nk = NESTED.get(kind)
    for k, c in s.items():
        if k == nk and isinstance(c, dict):
            target = dict(out.get(k) or {})
            r = rv.get(k) if may_read(reader, nested_audience(kind, data)) else None
            r = r if isinstance(r, dict) else {}
            for f, cf in c.items():
                if f in target:
                    raise _bad(index, f"passport field {f!r} is both sealed and in the clear")
                target[f] = _opened(index, f, _check_commitment(index, f, cf), r.get(f))
            out[k] = target
        elif k in WHO_WHERE:
            if k in out:
                raise _bad(index, f"{k!r} is both sealed and in the clear")
            out[k] = _opened(index, k, _check_commitment(index, k, c),
                             rv.get(k) if may_read(reader, WHO_WHERE_AUDIENCE) else None)
        else:
            raise _bad(index, f"{k!r} is not a field that is sealed")
    return out


def for_reader(kind: str, data: dict, reveal: dict | None, reader: str | None) -> dict | None:
    """The part of a reveal ``reader`` may see (None when nothing), to hand out beside the leaf."""
    if not isinstance(reveal, dict) or reader is None:
        return reveal or None
    nk = NESTED.get(kind)
    out = {}
    for k, r in reveal.items():
        if k == nk and isinstance(r, dict):
            if may_read(reader, nested_audience(kind, data)):
                out[k] = r
        elif may_read(reader, WHO_WHERE_AUDIENCE):
            out[k] = r
    return out or None


def without(kind: str, reveal: dict, fields) -> dict | None:
    """A reveal with ``fields`` dropped (names of who/where fields or passport fields): erasure."""
    nk = NESTED.get(kind)
    drop = set(fields)
    out = {}
    for k, r in reveal.items():
        if k == nk and isinstance(r, dict):
            kept = {f: x for f, x in r.items() if f not in drop}
            if kept:
                out[k] = kept
        elif k not in drop:
            out[k] = r
    return out or None


def check_reveal(kind: str, data: dict, reveal, index) -> None:
    """Every value of a stored reveal matches its commitment, and it reveals only sealed fields."""
    if not isinstance(reveal, dict):
        raise _bad(index, "its stored reveal is not a map")
    s = data.get(SEALED_KEY)
    if not isinstance(s, dict):
        raise _bad(index, "a reveal is stored for it but its leaf seals nothing")
    for k, r in reveal.items():
        c = s.get(k)
        if isinstance(r, dict) and isinstance(c, dict):
            for f, rf in r.items():
                if f not in c:
                    raise _bad(index, f"its stored reveal holds {f!r}, which its leaf does not seal")
                _opened(index, f, _check_commitment(index, f, c[f]), rf)
        elif c is None or isinstance(c, dict):
            raise _bad(index, f"its stored reveal holds {k!r}, which its leaf does not seal")
        else:
            _opened(index, k, _check_commitment(index, k, c), r)
    open_data(kind, data, reveal, ALL, index)


def encode(reveal: dict) -> bytes:
    return _dumps(reveal)


def decode(blob: bytes, index=None) -> dict:
    try:
        r = cbor.loads(bytes(blob))
    except Exception as e:  # DecodeError, or bytes that are not bytes
        raise _bad(index, f"its stored reveal is not valid CBOR: {e}") from None
    if not isinstance(r, dict):
        raise _bad(index, "its stored reveal is not a map")
    return r
