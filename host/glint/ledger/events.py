"""Custody events: the leaf format of the ledger and item identifiers.

Every leaf is one event, encoded as deterministic CBOR (glintcore.cbor, RFC 8949
section 4.2.1) so that its hash is reproducible by any verifier:

    {"v": 1,              leaf format version
     "i": uint,           log index of this leaf (binds the row to its position)
     "k": tstr,           kind: register, enroll, verify, transfer, service,
                          rental-out, rental-return, passport, suspect, clear, retire,
                          assembly, derive, bind, ship, share, void
                          (which state accepts which: glint.ledger.lifecycle)
     "item": tstr,        item identifier (GS1 Digital Link URI or brand serial)
     "n": uint,           per-item sequence number, 0 for the register event
     "prev": bstr / null, leaf hash of the item's previous event (per-item hash chain)
     "t": uint,           time, seconds since the Unix epoch (UTC)
     "d": map}            kind-specific data (see KIND_FIELDS and docs/ledger.md)

Device-signed scan bytes are stored beside the log (content-addressed) and referenced
from ``d["scan"]`` by their SHA-256 digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from glint.errors import DecodeError, UsageError, VerificationError
from glint.items import MAX_ITEM_ID, check_item_id, gs1_check_digit_ok  # noqa: F401  (the one item-id rule)
from glint.ledger.merkle import HASH_SIZE, leaf_hash
from glintcore import cbor

LEAF_VERSION = 1
MAX_LEAF_BYTES = 64 * 1024
# Event times are Unix seconds a calendar can show: 0 .. 9999-12-31T23:59:59Z. A larger
# value was stored once and then broke every reader that formats times (OverflowError).
MAX_TIME = 253402300799
MAX_TEXT = 1024          # one text field of event data (names, notes, locations)
MAX_DATA_ITEMS = 256     # entries of one map or list inside event data

REGISTER = "register"
ENROLL = "enroll"
VERIFY = "verify"
TRANSFER = "transfer"
SERVICE = "service"
RENTAL_OUT = "rental-out"
RENTAL_RETURN = "rental-return"
PASSPORT = "passport"
SUSPECT = "suspect"
CLEAR = "clear"
RETIRE = "retire"
ASSEMBLY = "assembly"    # an assembly's parts (on the assembly) or a part's assembly (on the part)
DERIVE = "derive"        # a parent item cut, machined or split into children (on the parent)
BIND = "bind"            # a secondary identifier (QR label, NFC chip, serial) bound to the item
SHIP = "ship"            # a shipment to another organization: offer, then accept / reject / cancel
SHARE = "share"          # a sharing grant: another organization may read the item (grant / revoke)
VOID = "void"            # an issuer voids the certificate of one of the item's verify events

# Required and optional data fields per kind; anything else is refused so that a typo
# cannot silently go into a permanent log.
KIND_FIELDS: dict[str, tuple[frozenset, frozenset]] = {
    REGISTER: (frozenset({"brand", "prov"}), frozenset({"passport", "parts", "of", "part", "op", "loc", "from",
                                                        "org"})),
    ENROLL: (frozenset({"coat"}), frozenset({"ref", "scan", "dev", "op", "loc", "replaces", "part"})),
    VERIFY: (frozenset({"res"}), frozenset({"fap", "scan", "dev", "op", "loc", "coat", "parts", "note",
                                                "via"})),
    TRANSFER: (frozenset(), frozenset({"owner", "custodian", "op", "note", "seller", "channel", "price",
                                       "currency", "loc", "verified"})),
    SERVICE: (frozenset({"action"}), frozenset({"by", "note", "loc", "op", "stage", "verified", "override"})),
    RENTAL_OUT: (frozenset({"to"}), frozenset({"due", "op", "loc", "note", "verified"})),
    RENTAL_RETURN: (frozenset(), frozenset({"cond", "op", "loc", "note", "verified"})),
    PASSPORT: (frozenset({"set"}), frozenset({"op", "loc", "aud"})),
    SUSPECT: (frozenset({"reason"}), frozenset({"case", "op", "loc", "verified"})),
    CLEAR: (frozenset(), frozenset({"reason", "op", "loc", "verified"})),
    RETIRE: (frozenset(), frozenset({"reason", "op", "loc"})),
    ASSEMBLY: (frozenset(), frozenset({"parts", "of", "part", "op"})),
    DERIVE: (frozenset({"children", "how"}), frozenset({"op", "loc", "note"})),
    BIND: (frozenset({"scheme", "value"}), frozenset({"op"})),
    SHIP: (frozenset({"act", "ship"}), frozenset({"to", "op", "note", "reason"})),
    SHARE: (frozenset({"act", "org"}), frozenset({"op", "note"})),
    VOID: (frozenset({"event", "reason"}), frozenset({"op"})),
}
# ``verified`` (transfer, service, rentals, suspect, clear): the log index of the item's scan that
# the event relies on; the ledger checks that it is the item's latest verify (and, but for
# ``suspect``, that it passed). ``stage`` of a service: "in" (received) or "out" (done).
# Passport audiences (docs/lifecycle.md): who may read a passport field. A field set without one
# is readable by the brand only (never public by accident).
AUDIENCES = ("public", "owner", "regulator", "recycler", "brand")
# Secondary identifiers a `bind` event attaches (they find the twin; only the coating authenticates).
ID_SCHEMES = ("qr", "nfc", "serial")
# Organizations (glint.orgs): ``org`` of a register event names the item's owner organization (absent:
# the deployment's default organization); a shipment (``ship``) hands the item to another one when the
# receiver accepts it; a sharing grant (``share``) lets another one read it.
SHIP_ACTS = ("offer", "accept", "reject", "cancel")
SHARE_ACTS = ("grant", "revoke")
DEFAULT_ORG = "default"
ORG_NAME_MAX = 32
SHIPMENT_ID_LEN = 12     # hex digits of a shipment id
KINDS = tuple(KIND_FIELDS)
RESULTS = ("pass", "fail")
PROVENANCE = ("factory", "later")



@dataclass(frozen=True)
class Event:
    """A decoded leaf; ``hash`` is its RFC 9162 leaf hash, ``raw`` the exact leaf bytes."""

    index: int
    kind: str
    item: str
    seq: int
    prev: bytes | None
    time: int
    data: dict
    raw: bytes
    hash: bytes

    def summary(self) -> str:
        """One line: what happened, then who (operator, or the service centre) and where."""
        d = self.data
        bits = {
            REGISTER: lambda: f"{d.get('brand')} ({d.get('prov', {}).get('class')}"
                              + (f", {d['prov']['reason']}" if d.get("prov", {}).get("reason") else "")
                              + (f", by {d['prov']['by']}" if d.get("prov", {}).get("by") else "") + ")",
            ENROLL: lambda: f"coating {d.get('coat')}" + (f" replaces {d['replaces']}" if d.get("replaces") else ""),
            VERIFY: lambda: f"{str(d.get('res', '')).upper()} fap={d.get('fap')}",
            TRANSFER: lambda: " ".join(f"{k}={d[k]}" for k in ("owner", "custodian", "seller", "channel", "price",
                                                               "currency") if k in d),
            SERVICE: lambda: (f"[{d['stage']}] " if d.get("stage") else "") + f"{d.get('action')} by {d.get('by', '?')}"
                             + (f" (override: {d['override']})" if d.get("override") else ""),
            RENTAL_OUT: lambda: f"to {d.get('to')}",
            RENTAL_RETURN: lambda: d.get("cond", ""),
            PASSPORT: lambda: ", ".join(sorted(d.get("set", {}))) + (f" ({d['aud']})" if d.get("aud") else ""),
            SUSPECT: lambda: d.get("reason", "") + (f" (case {d['case']})" if d.get("case") is not None else ""),
            CLEAR: lambda: d.get("reason", ""),
            RETIRE: lambda: d.get("reason", ""),
            ASSEMBLY: lambda: (", ".join(f"{k}={v}" for k, v in sorted(d["parts"].items())) if "parts" in d
                               else f"part {d.get('part')} of {d.get('of')}"),
            DERIVE: lambda: f"{d.get('how')} into {', '.join(map(str, d.get('children', [])))}",
            BIND: lambda: f"{d.get('scheme')} {d.get('value')}",
            SHIP: lambda: f"shipment {d.get('ship')} {d.get('act')}" + (f" to {d['to']}" if d.get("to") else "")
                          + (f": {d['reason']}" if d.get("reason") else ""),
            SHARE: lambda: f"{d.get('act')} read access to {d.get('org')}",
            VOID: lambda: f"certificate of event {d.get('event')} voided: {d.get('reason')}",
        }
        from glint.textsafe import clean

        text = bits.get(self.kind, lambda: "")()
        if d.get("verified") is not None:
            text += f" (scan: event {d['verified']})"
        if d.get("op"):
            text += f"; op {d['op']}"
        if d.get("loc"):
            text += f"; at {d['loc']}"
        return clean(text)


def check_data(kind: str, data: dict) -> dict:
    """Check an event's data fields against its kind; return the data."""
    if kind not in KIND_FIELDS:
        raise UsageError(f"unknown event kind {kind!r}", "one of " + ", ".join(KINDS))
    if not isinstance(data, dict):
        raise UsageError(f"{kind} data must be a map")
    shape = (kind, tuple(data))
    if shape not in _SHAPES_OK:
        required, optional = KIND_FIELDS[kind]
        missing = required - data.keys()
        if missing:
            raise UsageError(f"{kind} event lacks {', '.join(sorted(missing))}")
        extra = data.keys() - required - optional
        if extra:
            raise UsageError(f"{kind} event has unknown fields {', '.join(sorted(extra))}")
        if len(_SHAPES_OK) >= _CACHE_MAX:
            _SHAPES_OK.clear()
        _SHAPES_OK.add(shape)
    if kind == VERIFY and data["res"] not in RESULTS:
        raise UsageError(f"verify result must be pass or fail, not {data['res']!r}")
    if kind == REGISTER:
        prov = data["prov"]
        if not isinstance(prov, dict) or prov.get("class") not in PROVENANCE:
            raise UsageError("provenance class must be 'factory' or 'later'")
        if prov["class"] == "later" and not (prov.get("by") and prov.get("at") is not None):
            raise UsageError("a later enrollment names its authenticator ('by') and time ('at')")
    if kind == PASSPORT and "aud" in data and data["aud"] not in AUDIENCES:
        raise UsageError(f"passport audience must be one of {', '.join(AUDIENCES)}, not {data['aud']!r}")
    if kind == BIND and data["scheme"] not in ID_SCHEMES:
        raise UsageError(f"identifier scheme must be one of {', '.join(ID_SCHEMES)}, not {data['scheme']!r}")
    if kind == ASSEMBLY and (("parts" in data) == ("of" in data) or ("of" in data) != ("part" in data)
                             or ("parts" in data and (not isinstance(data["parts"], dict) or not data["parts"]))):
        raise UsageError("an assembly event names its parts, or (on a part) its assembly and part name")
    if kind == DERIVE and (not isinstance(data["children"], list) or not data["children"]
                           or not all(type(c) is str for c in data["children"])):
        raise UsageError("a derive event lists the children it made (item ids)")
    if kind == REGISTER and "from" in data and (not isinstance(data["from"], dict) or "item" not in data["from"]):
        raise UsageError("a derived item's 'from' names its parent item")
    if kind == REGISTER and "org" in data:
        check_org(data["org"])
    if kind == SHIP:
        if data["act"] not in SHIP_ACTS:
            raise UsageError(f"shipment act must be one of {', '.join(SHIP_ACTS)}, not {data['act']!r}")
        check_shipment_id(data["ship"])
        if (data["act"] == "offer") != ("to" in data):
            raise UsageError("a shipment offer names the receiving organization ('to'), and only an offer does")
        if "to" in data:
            check_org(data["to"])
    if kind == SHARE:
        if data["act"] not in SHARE_ACTS:
            raise UsageError(f"sharing act must be grant or revoke, not {data['act']!r}")
        check_org(data["org"])
    if kind == VOID and (type(data["event"]) is not int or data["event"] < 0):
        raise UsageError("a void event names the log index of the verify event whose certificate it voids")
    for key in _DIGEST_FIELDS:
        if key in data and (not isinstance(data[key], bytes) or len(data[key]) != HASH_SIZE):
            raise UsageError(f"{kind} {key} must be a {HASH_SIZE}-byte SHA-256 digest")
    if "fap" in data:
        fap = data["fap"]
        if type(fap) not in (int, float) or not 0.0 <= fap <= 1.0:  # NaN fails the range too
            raise UsageError(f"{kind} fap must be a number in [0, 1], not {fap!r}")
    _check_values(kind, data, 0)
    return data


def check_org(name) -> str:
    """An organization name: 1..32 of a-z, 0-9 and '-', starting with a letter or digit."""
    if (type(name) is not str or not 0 < len(name) <= ORG_NAME_MAX or not name.isascii()
            or not (name[0].isalnum() and all(c.isalnum() or c == "-" for c in name)) or name.lower() != name):
        raise UsageError(f"organization name {str(name)[:40]!r} is not 1..{ORG_NAME_MAX} of a-z, 0-9 and '-'",
                         "e.g. acme or acme-paris")
    return name


def check_shipment_id(sid) -> str:
    """A shipment id: SHIPMENT_ID_LEN lower-case hex digits."""
    if type(sid) is not str or len(sid) != SHIPMENT_ID_LEN or any(c not in "0123456789abcdef" for c in sid):
        raise UsageError(f"shipment id {str(sid)[:40]!r} is not {SHIPMENT_ID_LEN} lower-case hex digits",
                         "see 'glint ship list'")
    return sid


def check_time(t) -> int:
    """An event time: an integer number of Unix seconds in 0..MAX_TIME (year 9999)."""
    if type(t) is not int or not 0 <= t <= MAX_TIME:
        raise UsageError(f"event time must be integer Unix seconds in 0..{MAX_TIME}, not {t!r}")
    return t


_SCALARS = (str, bytes, int, float, bool, type(None))


def _check_values(kind: str, v, depth: int) -> None:
    """Bounded, encodable values only: what a reader decodes and shows must be what was stored."""
    t = type(v)
    if t is dict or t is list:
        if depth > 4 or len(v) > MAX_DATA_ITEMS:
            raise UsageError(f"{kind} data is nested too deeply or has too many entries")
        for k in v if t is list else v.values():
            _check_values(kind, k, depth + 1)
        if t is dict:
            for k in v:
                if type(k) is not str or len(k) > MAX_TEXT:
                    raise UsageError(f"{kind} data keys must be short text")
        return
    if t not in _SCALARS:
        raise UsageError(f"{kind} data holds a {t.__name__}, which the ledger does not store")
    if (t is str or t is bytes) and len(v) > MAX_TEXT:
        raise UsageError(f"{kind} data has a field of {len(v)} characters (at most {MAX_TEXT})")
    if t is int and not -(1 << 63) <= v < (1 << 63):
        raise UsageError(f"{kind} data has an integer out of range")
    if t is float and v != v:
        raise UsageError(f"{kind} data has a NaN")


_DIGEST_FIELDS = ("scan", "ref")
# (kind, data keys in order) already found to have the required and allowed fields.
_SHAPES_OK: set[tuple] = set()


def _head(major: int, n: int) -> bytes:
    mt = major << 5
    if n < 24:
        return _SMALL_HEADS[mt | n]
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


# One-byte heads (major type | n < 24), indexed by the head byte itself.
_SMALL_HEADS = tuple(bytes((b,)) for b in range(256))
_BYTES32_HEAD = b"\x58\x20"  # digests and hashes: byte string of 32
_UINT_LIMIT = 1 << 64
# Encodings of recurring values (map keys, kinds, results, device and operator ids,
# probabilities). Bounded: a full cache is emptied rather than grown, since the values
# that recur keep coming back and a one-off value costs only its own encoding.
_CACHE_MAX = 4096
_CACHED_STR_LEN = 64
_KEY_CACHE: dict[str, bytes] = {}
_STR_CACHE: dict[str, bytes] = {}
_FLOAT_CACHE: dict[float, bytes] = {}
# Key tuple of a map (insertion order) -> ((encoded key, key), ...) in deterministic order.
_ORDER_CACHE: dict[tuple, tuple] = {}


def _key(k: str) -> bytes:
    b = _KEY_CACHE.get(k)
    if b is None:
        raw = k.encode("utf-8")
        b = _head(3, len(raw)) + raw
        if len(_KEY_CACHE) >= _CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[k] = b
    return b


def _str(s: str) -> bytes:
    b = _STR_CACHE.get(s)
    if b is None:
        raw = s.encode("utf-8")
        n = len(raw)
        b = (_SMALL_HEADS[0x60 | n] if n < 24 else _head(3, n)) + raw
        if len(s) <= _CACHED_STR_LEN:
            if len(_STR_CACHE) >= _CACHE_MAX:
                _STR_CACHE.clear()
            _STR_CACHE[s] = b
    return b


def _float(x: float) -> bytes:
    # 0.0 and -0.0 are equal as dict keys but encode differently: not cached.
    b = _FLOAT_CACHE.get(x) if x else None
    if b is None:
        b = cbor.dumps(x)
        if x:
            if len(_FLOAT_CACHE) >= _CACHE_MAX:
                _FLOAT_CACHE.clear()
            _FLOAT_CACHE[x] = b
    return b


def _order(keys: tuple) -> tuple | None:
    """Map keys in deterministic order with their encodings; None unless all are text."""
    order = _ORDER_CACHE.get(keys)
    if order is None:
        for k in keys:
            if type(k) is not str:
                return None
        # Keys are distinct, so sorting the pairs never compares the keys themselves.
        order = tuple(sorted(((_key(k), k) for k in keys), key=_first))
        if len(_ORDER_CACHE) >= _CACHE_MAX:
            _ORDER_CACHE.clear()
        _ORDER_CACHE[keys] = order
    return order


def text_key_order(d: dict) -> list[str]:
    """The text keys of ``d`` in deterministic order (the order decoding their encoding gives)."""
    order = _order(tuple(d))
    if order is None:
        raise UsageError("map keys must be text")
    return [k for _, k in order]


def dumps(obj) -> bytes:
    """Deterministic CBOR, byte-identical to glintcore.cbor.dumps (tested), faster for leaves.

    Handles text, bytes, small ints, floats, None and maps with text keys itself (pairs
    sorted by the bytewise order of the encoded keys, RFC 8949 section 4.2.1) and hands
    everything else (lists, booleans, other keys, bignums, tags) to glintcore.cbor.
    """
    t = type(obj)
    if t is str:
        return _str(obj)
    if t is dict:
        order = _order(tuple(obj))
        if order is None:
            return cbor.dumps(obj)
        n = len(order)
        parts = [_SMALL_HEADS[0xA0 | n] if n < 24 else _head(5, n)]
        append = parts.append
        for kb, k in order:
            append(kb)
            v = obj[k]
            t = type(v)
            # Inline the common scalar cases: this loop is most of a leaf's encoding.
            if t is str:
                b = _STR_CACHE.get(v)
                append(b if b is not None else _str(v))
            elif t is bytes and len(v) == 32:
                append(_BYTES32_HEAD + v)
            else:
                append(dumps(v))
        return b"".join(parts)
    if t is int:
        if 0 <= obj < 24:
            return _SMALL_HEADS[obj]
        if 0 <= obj < _UINT_LIMIT:
            return _head(0, obj)
        if -_UINT_LIMIT <= obj < 0:
            return _head(1, -1 - obj)
    elif t is bytes:
        n = len(obj)
        return (_SMALL_HEADS[0x40 | n] if n < 24 else _head(2, n)) + obj
    elif obj is None:
        return b"\xf6"
    elif t is float:
        return _float(obj)
    return cbor.dumps(obj)


def _first(pair):
    return pair[0]


# Top-level leaf keys in deterministic order: d, i, k, n, t, v, item, prev.
_K_D, _K_I, _K_K, _K_N, _K_T, _K_V = (b"\x61" + c for c in (b"d", b"i", b"k", b"n", b"t", b"v"))
_K_ITEM, _K_PREV = b"\x64item", b"\x64prev"
_V_ITEM = _K_V + _SMALL_HEADS[LEAF_VERSION] + _K_ITEM
_NULL = b"\xf6"


def encode_leaf(index: int, kind: str, item: str, seq: int, prev: bytes | None, time: int, data: dict) -> bytes:
    """Deterministic CBOR of one event (the bytes that are hashed into the log).

    Equal to ``glintcore.cbor.dumps`` of the event map (pinned by the tests); written
    out because it is the hot path of every append.
    """
    return b"".join((
        b"\xa8", _K_D, dumps(data), _K_I, dumps(index), _K_K, _str(kind), _K_N, dumps(seq),
        _K_T, dumps(time), _V_ITEM, _str(item), _K_PREV, _NULL if prev is None else dumps(prev),
    ))


def decode_leaf(raw: bytes, error=VerificationError, strict: bool = True) -> Event:
    """Decode and check a leaf; raise ``error`` naming what is wrong.

    ``strict`` also checks the deterministic encoding (certificates); the hash covers
    the exact bytes either way, so a full-log scan may skip it.
    """
    if not isinstance(raw, (bytes, bytearray)) or len(raw) > MAX_LEAF_BYTES:
        raise error("leaf is not bytes or too large")
    raw = bytes(raw)
    try:
        m = cbor.loads(raw)
    except DecodeError as e:
        raise error(f"leaf is not valid CBOR: {e}") from None
    if not isinstance(m, dict) or m.get("v") != LEAF_VERSION:
        raise error("leaf is not a version-1 event map")
    if set(m) != {"v", "i", "k", "item", "n", "prev", "t", "d"}:
        raise error("leaf has missing or unknown fields")
    if strict and dumps(m) != raw:  # dumps: byte-identical to cbor.dumps (tested), at a quarter of its cost
        raise error("leaf is not in deterministic CBOR form")
    ints = (m["i"], m["n"], m["t"])
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in ints):
        raise error("leaf index, sequence or time is not an unsigned integer")
    prev = m["prev"]
    if (m["n"] == 0) != (prev is None) or (prev is not None and (not isinstance(prev, bytes) or len(prev) != HASH_SIZE)):
        raise error("leaf chain link is malformed (prev must be null exactly for the first event)")
    if not isinstance(m["k"], str) or m["k"] not in KIND_FIELDS or not isinstance(m["d"], dict):
        raise error(f"leaf has unknown kind {m['k']!r}")
    if (m["k"] == REGISTER) != (m["n"] == 0):
        raise error("an item's first event must be its register event, and only that")
    if not isinstance(m["item"], str):
        raise error("leaf item id is not text")
    return Event(m["i"], m["k"], m["item"], m["n"], prev, m["t"], m["d"], raw, leaf_hash(raw))
