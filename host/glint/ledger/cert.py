"""Scan certificates (compact, format 4): a COSE_Sign1 (ES256) signed by the host's issuer key.

A certificate proves, to anyone holding only the issuer public key and the log's
verifier key, that a verification event is in the log. It carries the event itself
(verdict, item, scan digest, time, and ``prev``, the head of the item's hash chain
before it), an inclusion proof of its leaf in the log's tree **right after it** (size =
index + 1) and the log's signature on that tree's checkpoint; nothing grows with the
item's history, and the proof has one hash per 1 bit of the event's index (exactly
popcount(index) hashes). The payload is one deterministic CBOR array (docs/formats.md):

    [dt, index, seq, time, item, res, fap, dev, data, hashes]

    dt       int      issue time minus the event's time (the issue time is time + dt)
    index, seq, time   the leaf's "i", "n", "t"
    item     tstr / [host, GTIN, serial]: the leaf's "item", a GS1 Digital Link id
             https://HOST/01/<14 digits>/21/SERIAL as its parts (the GTIN an integer)
    res      uint     the result's position in events.RESULTS (0 pass, 1 fail)
    fap      number / null (absent)
    dev      bstr .size 8 when the leaf's dev is 16 lower-case hex digits (their bytes),
             tstr for any other text, null when absent
    data     map      the leaf's other data keys, those of ``DATA_KEYS`` written as their position
    hashes   bstr     logsig (64) || prev (32) || scan digest (32, iff the leaf has one) ||
                      the inclusion proof (32 per 1 bit of index)

The leaf bytes are ``events.encode_leaf(index, "verify", item, seq, prev, time, data)`` with
the data rebuilt (one spelling of each value: ``leaf_of4``); ``logsig`` is the log key's
Ed25519 signature over the checkpoint text ``<origin>\n<index + 1>\n<base64 root>\n``,
whose origin is the log key's name and whose root the proof yields.

The certificate id is the hex of the first 16 bytes of the leaf hash (``cert_id``).
The item's earlier events are not in the certificate: they are fetched from the log
(``Ledger.history``, ``GET /v1/history/<item>``) or read from a saved bundle
(``make_bundle``: certificate + history), and checked against the chain head: each
event links to the one before, the last one is the leaf's ``prev``.

``verify`` checks the signature, the checkpoint signature, the inclusion proof, and,
when the history is given, that it chains into the leaf and replays as a valid custody
sequence; any failure raises VerificationError with a one-line reason. Older formats
still verify: format 3 (a CWT: ``{6 iat, -4 [data, index, seq, time, item, prev], -5
proof, -6 logsig}``, what ``build`` falls back to for a leaf format 4 cannot spell) and
format 2 (the leaf bytes whole, a proof to the latest checkpoint: ``{"glint": 2, 6, -1
leaf, -2 proof, -3 [size, sig]}``); format-1 certificates (which carried the whole
history) are refused with a named reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time as _time
from dataclasses import dataclass

from glint.errors import CryptoError, DecodeError, GlintError, UsageError, VerificationError
from glint.ledger import events as ev
from glint.ledger import merkle, sealed
from glint.ledger.keys import Keys, verify_digest
from glint.ledger.note import SIG_PREFIX, SIG_SIZE, Checkpoint, Verifier, open_checkpoint
from glint.ledger.twins import ItemState, replay
from glintcore import cbor, cose

CERT_VERSION = 4
CWT_IAT = 6
C_LEAF, C_PROOF, C_CKPT = -1, -2, -3            # format 2
C_EVENT, C_PROOF3, C_LOGSIG = -4, -5, -6        # format 3
# Data keys a format-3 certificate writes as their position here (one byte instead of the text).
DATA_KEYS = ("res", "fap", "dev", "op", "loc", "coat", "scan", "via", "parts", "sealed")
_DATA_KEY_NO = {k: n for n, k in enumerate(DATA_KEYS)}
CONTENT_FORMAT_CWT = 61  # CoAP content-format of application/cwt (formats 2 and 3)
# Format 4: the data keys that have a slot of their own in the payload array (res, fap, dev)
# or go into its hashes (scan); the others stay in its data map.
SLOTTED = frozenset({"res", "fap", "dev", "scan"})
DEV_HEX = 16             # a device id: 16 lower-case hex digits, carried as their 8 bytes
FORMAT4_LEN = 10
MAX_CERT_BYTES = 64 * 1024
MAX_HISTORY = 100_000
BUNDLE_VERSION = 1          # certificate + history
BUNDLE_REVEALS_VERSION = 2  # ... + the reveals of sealed values its reader may see (glint.ledger.sealed)
MAX_BUNDLE_BYTES = 64 << 20
CERT_ID_BYTES = 16
_CLAIMS2 = {"glint", CWT_IAT, C_LEAF, C_PROOF, C_CKPT}
_CLAIMS3 = {CWT_IAT, C_EVENT, C_PROOF3, C_LOGSIG}


def issuer_kid(pub65: bytes) -> bytes:
    """Key id of an issuer key in the COSE header: first 8 bytes of SHA-256 of the SEC1 point."""
    return hashlib.sha256(pub65).digest()[:8]


def cert_id(leaf_hash: bytes) -> str:
    """The public id of a certificate: hex of the first 16 bytes of its event's leaf hash."""
    return leaf_hash[:CERT_ID_BYTES].hex()


def is_cert_id(text: str) -> bool:
    return isinstance(text, str) and len(text) == 2 * CERT_ID_BYTES and all(c in "0123456789abcdef" for c in text)


def checkpoint_note(cp: Checkpoint, log: Verifier, sig: bytes) -> str:
    """The C2SP signed note a compact certificate's checkpoint stands for."""
    b64 = base64.b64encode(log.key_id + sig).decode("ascii")
    return f"{cp.text()}\n{SIG_PREFIX}{log.name} {b64}\n"


@dataclass(frozen=True)
class CertInfo:
    """What a verified certificate says; ``history``/``state`` only when the history was checked."""

    item: str
    result: str
    fap: float | None
    time: int
    location: str | None
    operator: str | None
    device: str | None
    scan: bytes | None
    index: int
    issued: int
    checkpoint: Checkpoint
    event: ev.Event
    history: list[ev.Event] | None = None
    state: ItemState | None = None
    kid: bytes = b""
    format: int = CERT_VERSION

    @property
    def id(self) -> str:
        return cert_id(self.event.hash)

    @property
    def history_checked(self) -> bool:
        return self.history is not None

    def as_dict(self) -> dict:
        st = self.state
        return {
            "id": self.id, "format": self.format,
            "item": self.item, "result": self.result, "fap": self.fap, "time": self.time,
            "location": self.location, "operator": self.operator, "device": self.device,
            "scan": self.scan.hex() if self.scan else None, "index": self.index, "issued": self.issued,
            "log": self.checkpoint.origin, "tree_size": self.checkpoint.size,
            "root": self.checkpoint.root.hex(), "chain_head": self.event.prev.hex() if self.event.prev else None,
            "issuer_kid": self.kid.hex(),
            "brand": st.brand if st else None, "provenance": st.provenance_line() if st else None,
            "lineage": st.lineage if st else None, "checked": checked_line(self.event.data),
            "history": None if self.history is None else
            [{"index": e.index, "kind": e.kind, "time": e.time, "summary": e.summary()} for e in self.history],
        }


def checked_line(d: dict) -> str:
    """What a verification checked: the coating authenticates; an identifier only found the record."""
    coat = f"coating {d['coat']}" if d.get("coat") else "the coating"
    via = d.get("via")
    if isinstance(via, dict):
        return f"{coat} (the item was looked up by {via.get('scheme')} {via.get('value')}, which does not authenticate)"
    return coat


def lineage_line(state: ItemState | None) -> str | None:
    """ "machined from acme:BILLET-7 (enrolled at the foundry)" for a derived item, else None."""
    lin = state.lineage if state is not None else None
    if not lin:
        return None
    return f"{lin.get('how', 'made')} from {lin.get('item')}" + (f" ({lin['origin']})" if lin.get("origin") else "")


def _verify_event(leaf: bytes | ev.Event) -> ev.Event:
    """The verify event of leaf bytes (strictly decoded), or the event ``build`` decoded once for both
    spellings; UsageError for any other kind."""
    e = leaf if isinstance(leaf, ev.Event) else ev.decode_leaf(leaf, UsageError)
    if e.kind != ev.VERIFY:
        raise UsageError(f"certificates are for verify events, not {e.kind}")
    return e


def compact_event(leaf: bytes | ev.Event) -> list:
    """The ``event`` claim of a format-3 certificate: a verify event's leaf without its fixed parts."""
    e = _verify_event(leaf)
    if not all(type(k) is str for k in e.data):
        raise UsageError("a certified event's data keys must be text")
    data = {_DATA_KEY_NO.get(k, k): v for k, v in e.data.items()}
    return [data, e.index, e.seq, e.time, e.item, e.prev]


def leaf_of(event) -> bytes:
    """The leaf bytes a format-3 ``event`` claim stands for (VerificationError naming what is wrong)."""
    if not isinstance(event, list) or len(event) != 6:
        raise VerificationError("certificate event is not [data, index, seq, time, item, prev]")
    data, index, seq, t, item, prev = event
    if not isinstance(data, dict):
        raise VerificationError("certificate event data is not a map")
    out: dict = {}
    _merge_data(data, out, "certificate event data has a key twice")
    for x, top in ((index, 1 << 63), (seq, 1 << 63), (t, ev.MAX_TIME + 1)):
        if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < top:
            raise VerificationError("certificate event index, sequence or time is not an unsigned integer")
    if not isinstance(item, str) or not (prev is None or isinstance(prev, bytes)):
        raise VerificationError("certificate event item or chain head is malformed")
    return _verify_leaf(index, item, seq, prev, t, out)


def _merge_data(data: dict, out: dict, twice: str) -> None:
    """``data``'s keys (written as their numbers, DATA_KEYS, or as other text) into ``out``, one
    spelling per key; ``twice`` names a key already in ``out``."""
    for k, v in data.items():
        if type(k) is int and 0 <= k < len(DATA_KEYS):
            k = DATA_KEYS[k]
        elif type(k) is not str or k in _DATA_KEY_NO:  # one spelling per key
            raise VerificationError("certificate event data has a key spelled two ways or not text")
        if k in out:
            raise VerificationError(twice)
        out[k] = v


def _verify_leaf(index: int, item: str, seq: int, prev, t: int, data: dict) -> bytes:
    """The verify leaf a certificate's event stands for (VerificationError if it cannot be one)."""
    try:
        return ev.encode_leaf(index, ev.VERIFY, item, seq, prev, t, data)
    except (GlintError, TypeError, ValueError) as e:
        raise VerificationError(f"certificate event cannot be encoded: {e}") from None


class _NotCompact(Exception):
    """A verify leaf that format 4 cannot spell (build falls back to format 3)."""


_GS1 = re.compile(r"https://([^/]+)/01/([0-9]{14})/21/([^/]+)")


def gs1_parts(item: str) -> list | None:
    """``[host, GTIN as an integer, serial]`` of a GS1 Digital Link item id
    ``https://HOST/01/<14-digit GTIN>/21/SERIAL`` (nothing more), which a format-4 certificate
    carries instead of the text (~20 bytes fewer); None for any other id."""
    m = _GS1.fullmatch(item)
    return None if m is None else [m.group(1), int(m.group(2)), m.group(3)]


def _gs1_text(parts) -> str:
    host, gtin, serial = parts
    return f"https://{host}/01/{gtin:014d}/21/{serial}"


def _is_dev_hex(v) -> bool:
    return type(v) is str and len(v) == DEV_HEX and all(c in "0123456789abcdef" for c in v)


def compact4(leaf: bytes | ev.Event, issued: int, logsig: bytes, proof: bytes) -> list:
    """The payload array of a format-4 certificate for the verify event ``leaf`` (_NotCompact when
    one of its values has no format-4 spelling)."""
    e = _verify_event(leaf)
    d = e.data
    res, fap, dev, scan = d.get("res"), d.get("fap"), d.get("dev"), d.get("scan")
    if (res not in ev.RESULTS or type(res) is not str or ("fap" in d and type(fap) not in (int, float))
            or ("dev" in d and type(dev) is not str) or ("scan" in d and (type(scan) is not bytes or len(scan) != 32))
            or e.prev is None or not all(type(k) is str for k in d)):
        raise _NotCompact
    data = {_DATA_KEY_NO.get(k, k): v for k, v in d.items() if k not in SLOTTED}
    hashes = logsig + e.prev + (scan if scan is not None else b"") + proof
    return [issued - e.time, e.index, e.seq, e.time, gs1_parts(e.item) or e.item, ev.RESULTS.index(res), fap,
            bytes.fromhex(dev) if dev is not None and _is_dev_hex(dev) else dev, data, hashes]


def leaf_of4(claims: list) -> tuple[bytes, int, bytes, bytes]:
    """(leaf bytes, issue time, log signature, proof bytes) of a format-4 payload array
    (VerificationError naming what is wrong; each value has one spelling)."""
    e, iat, logsig, proof = _event4(claims)
    return e.raw, iat, logsig, proof


def _event4(claims: list) -> tuple[ev.Event, int, bytes, bytes]:
    """``leaf_of4`` with the certified event instead of its leaf bytes: the event the leaf encodes,
    built from the checked claims without decoding the leaf again. The same Event that
    ``ev.decode_leaf(leaf)`` (strict) returns: the leaf is ``ev.encode_leaf`` of these very values,
    byte-identical to their deterministic CBOR (tests/host/ledger), decoding it gives them back
    (data keys in the encoding's order), and each check decode_leaf makes holds here by
    construction or was made above (unsigned index, sequence and time; sequence >= 1 with a
    32-byte chain head, so the first-event rule holds; kind verify; text item; a data map of text
    keys), except the size limit, checked here. The leaf hash, which binds the event to the
    signed root, is of the exact bytes either way."""
    if len(claims) != FORMAT4_LEN:
        raise VerificationError("certificate payload is not [dt, index, seq, time, item, res, fap, dev, data, hashes]")
    dt, index, seq, t, item, res, fap, dev, data, hashes = claims
    for x, top in ((index, 1 << 63), (seq, 1 << 63), (t, ev.MAX_TIME + 1)):
        if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < top:
            raise VerificationError("certificate event index, sequence or time is not an unsigned integer")
    if not isinstance(dt, int) or isinstance(dt, bool) or not 0 <= t + dt <= ev.MAX_TIME:
        raise VerificationError("certificate issue time is not a time")
    if seq < 1:
        raise VerificationError("certificate event sequence is malformed")
    if isinstance(item, list):  # a GS1 Digital Link id: [host, GTIN, serial]
        if (len(item) != 3 or type(item[0]) is not str or type(item[1]) is not int or type(item[2]) is not str
                or not 0 <= item[1] < 10 ** 14 or gs1_parts(_gs1_text(item)) != item):
            raise VerificationError("certificate item is not [host, GTIN, serial] of a GS1 Digital Link id")
        item = _gs1_text(item)
    elif not isinstance(item, str) or gs1_parts(item) is not None:
        raise VerificationError("certificate item is not text, or a GS1 Digital Link id spelled as text "
                                "(one spelling: [host, GTIN, serial])")
    if type(res) is not int or not 0 <= res < len(ev.RESULTS):
        raise VerificationError("certificate result is not 0 (pass) or 1 (fail)")
    if fap is not None and type(fap) not in (int, float):
        raise VerificationError("certificate fap is not a number")
    if not (dev is None or (type(dev) is bytes and len(dev) == DEV_HEX // 2) or (type(dev) is str and not _is_dev_hex(dev))):
        raise VerificationError("certificate device id is not 8 bytes, other text or null (one spelling)")
    if not isinstance(data, dict):
        raise VerificationError("certificate event data is not a map")
    if not isinstance(hashes, bytes):
        raise VerificationError("certificate hashes are not bytes")
    n_proof = 32 * bin(index).count("1")
    extra = len(hashes) - SIG_SIZE - 32 - n_proof
    if extra not in (0, 32):
        raise VerificationError(f"certificate hashes are not logsig, chain head, [scan digest,] and "
                                f"{n_proof // 32} proof hashes (one per 1 bit of the index)")
    logsig, prev = hashes[:SIG_SIZE], hashes[SIG_SIZE:SIG_SIZE + 32]
    out: dict = {"res": ev.RESULTS[res]}
    if fap is not None:
        out["fap"] = fap
    if dev is not None:
        out["dev"] = dev.hex() if type(dev) is bytes else dev
    if extra:
        out["scan"] = hashes[SIG_SIZE + 32:SIG_SIZE + 64]
    _merge_data(data, out, "certificate event data has a key twice (or one that has a slot of its own)")
    leaf = _verify_leaf(index, item, seq, prev, t, out)
    if len(leaf) > ev.MAX_LEAF_BYTES:
        raise VerificationError("leaf is not bytes or too large")
    order = ev.text_key_order(out)
    event = ev.Event(index, ev.VERIFY, item, seq, prev, t, {k: out[k] for k in order}, leaf, ev.leaf_hash(leaf))
    return event, t + dt, logsig, hashes[len(hashes) - n_proof:]


def build(keys: Keys, leaf: bytes | ev.Event, proof: list[bytes], note: str, issued: int | None = None) -> bytes:
    """Sign a compact (format-4) certificate for the verify event ``leaf`` (no checks: see
    Ledger.issue_certificate); format 3 for a leaf whose values format 4 cannot spell.

    ``leaf``: the leaf bytes (decoded strictly here), or the event the caller has decoded
    already (Ledger.issue_certificate's, of a row it stored): the certificate's leaf is built
    again from the event's values either way, and the issuer's self-check (``verify``) decodes
    that leaf strictly and checks that it hashes into the signed checkpoint's root.

    ``note``: the signed checkpoint (C2SP note) of the tree of size index + 1, which ``proof``
    leads to; only the log key's signature goes into the certificate, so it must be a plain
    checkpoint signed by this home's log key.
    """
    cut = note.rfind("\n\n")
    cp = Checkpoint.parse(note[: cut + 1])
    sig = _note_signature(note, keys.log_verifier())
    if cp.extensions or checkpoint_note(cp, keys.log_verifier(), sig) != note:
        raise UsageError("a compact certificate needs a plain checkpoint signed only by the log key")
    decoded = _verify_event(leaf)  # one strict decode (of bytes) for both spellings
    event = compact_event(decoded)
    if cp.size != event[1] + 1:
        raise UsageError(f"a compact certificate's checkpoint is the tree right after its event "
                         f"(size {event[1] + 1}), not size {cp.size}")
    iat = int(_time.time()) if issued is None else int(issued)
    kid = issuer_kid(keys.issuer_public)
    try:
        payload = cbor.dumps(compact4(decoded, iat, sig, b"".join(proof)))
    except _NotCompact:
        return _sign3(keys, event, proof, sig, iat)
    return cose.sign1_with(payload, keys.sign_digest, kid=kid)


def build3(keys: Keys, leaf: bytes, proof: list[bytes], note: str, issued: int) -> bytes:
    """A format-3 certificate (the CWT of the issues before format 4): what ``build`` falls back to,
    and the tests' older certificate."""
    return _sign3(keys, compact_event(leaf), proof, _note_signature(note, keys.log_verifier()), issued)


def _sign3(keys: Keys, event: list, proof: list[bytes], sig: bytes, iat: int) -> bytes:
    claims = {CWT_IAT: iat, C_EVENT: event, C_PROOF3: b"".join(proof), C_LOGSIG: sig}
    return cose.sign1_with(cbor.dumps(claims), keys.sign_digest, kid=issuer_kid(keys.issuer_public),
                           protected_extra={3: CONTENT_FORMAT_CWT})


def _note_signature(note: str, log: Verifier) -> bytes:
    line = note[note.rfind("\n\n") + 2:].split("\n")[0]
    raw = base64.b64decode(line.rsplit(" ", 1)[-1])
    if raw[:4] != log.key_id or len(raw) != 4 + SIG_SIZE:
        raise UsageError("checkpoint is not signed by this home's log key")
    return raw[4:]


def kid_of(blob: bytes) -> bytes | None:
    """The issuer key id in a certificate's protected header (unverified), or None."""
    try:
        k = cose.decode1(bytes(blob)).kid
    except (DecodeError, TypeError, ValueError):
        return None
    return k if isinstance(k, bytes) else None


def peek(blob: bytes) -> ev.Event | None:
    """The certified event of a certificate, decoded WITHOUT any check (to fetch its history), or None."""
    try:
        c = cbor.loads(cose.decode1(bytes(blob)).payload)
        if isinstance(c, list):
            leaf = leaf_of4(c)[0]
        elif isinstance(c, dict):
            leaf = c[C_LEAF] if "glint" in c else leaf_of(c[C_EVENT])
        else:
            return None
        return ev.decode_leaf(leaf, VerificationError, strict=False)
    except (GlintError, KeyError, TypeError, ValueError):
        return None


def verify(blob: bytes, issuer_pub: bytes, log: Verifier, history: list[bytes] | None = None,
           reveals: dict | None = None) -> CertInfo:
    """Verify a certificate offline with the issuer public key and the log verifier key.

    ``history``: the item's events before the certified one (leaf bytes, in order), from
    the log or a bundle; when given it must chain into the certificate's event.
    ``reveals``: log index -> reveal of sealed values (a bundle's, glint.ledger.sealed); each is
    checked against its leaf's commitments, and the revealed values are what CertInfo shows.
    """
    if not isinstance(blob, (bytes, bytearray)) or len(blob) > MAX_CERT_BYTES:
        raise VerificationError("certificate is not bytes or too large")
    blob = bytes(blob)
    try:
        msg = cose.decode1(blob)
        if blob[:1] != b"\xd2":
            # One message, one spelling: glint issues tagged certificates with no unprotected headers.
            raise DecodeError("not tagged COSE_Sign1 (tag 18)")
        if msg.unprotected:
            raise DecodeError("unprotected headers are not allowed in a glint certificate")
        payload = cose.verify_decoded(msg, issuer_pub, verify_digest=verify_digest)
    except DecodeError as e:
        raise VerificationError(f"certificate is not a COSE_Sign1 message: {e}") from None
    except CryptoError as e:
        raise VerificationError(f"certificate signature does not verify with the issuer key ({e})") from None
    try:
        c = cbor.loads(payload)
    except DecodeError as e:
        raise VerificationError(f"certificate claims are not valid CBOR: {e}") from None
    if not isinstance(c, (dict, list)):
        raise VerificationError("certificate claims are not a map or a format-4 array")
    if isinstance(c, dict) and c.get("glint") == 1:
        raise VerificationError("certificate format 1 is no longer issued; ask the issuer for a new "
                                f"(compact, format {CERT_VERSION}) certificate of the same event")
    if cbor.dumps(c) != payload:
        raise VerificationError("certificate claims are not in deterministic CBOR form")
    size = None
    event4 = None
    if isinstance(c, list):
        if msg.protected != {1: -7, 4: msg.kid}:  # format 4: no content type, nothing else
            raise VerificationError("format-4 certificate's protected header is not {alg: ES256, kid}")
        fmt = 4
        event4, iat, logsig, proof_b = _event4(c)
        leaf = event4.raw
    elif "glint" in c:
        if c.get("glint") != 2:
            raise VerificationError(f"certificate is not a glint format-2 or format-{CERT_VERSION} certificate")
        if set(c) != _CLAIMS2:
            raise VerificationError("certificate has missing or unknown claims")
        fmt, leaf, proof_b, ck = 2, c[C_LEAF], c[C_PROOF], c[C_CKPT]
        if (not isinstance(ck, list) or len(ck) != 2 or not isinstance(ck[0], int) or isinstance(ck[0], bool)
                or not isinstance(ck[1], bytes) or len(ck[1]) != SIG_SIZE):
            raise VerificationError("certificate checkpoint is not [size, 64-byte signature]")
        size, logsig = ck
    else:
        if set(c) != _CLAIMS3:
            raise VerificationError("certificate has missing or unknown claims")
        fmt, leaf, proof_b, logsig = 3, leaf_of(c[C_EVENT]), c[C_PROOF3], c[C_LOGSIG]
        if not isinstance(logsig, bytes) or len(logsig) != SIG_SIZE:
            raise VerificationError("certificate log signature is not 64 bytes")
    if fmt != 4:
        iat = c[CWT_IAT]
    if not isinstance(iat, int) or isinstance(iat, bool) or not 0 <= iat <= ev.MAX_TIME:
        raise VerificationError("certificate issue time is not a time")
    if not isinstance(proof_b, bytes) or len(proof_b) % merkle.HASH_SIZE:
        raise VerificationError("certificate proof is not a whole number of 32-byte hashes")
    event = event4 if event4 is not None else ev.decode_leaf(leaf)  # format 4: of the leaf just encoded
    if event.kind != ev.VERIFY:
        raise VerificationError(f"certified event is a {event.kind} event, not a verification")
    proof = [proof_b[i:i + merkle.HASH_SIZE] for i in range(0, len(proof_b), merkle.HASH_SIZE)]
    size = merkle._check_size(event.index + 1 if size is None else size, "checkpoint size")
    root = merkle.root_from_inclusion(event.hash, event.index, size, proof)
    try:
        cp = open_checkpoint(checkpoint_note(Checkpoint(log.name, size, root), log, logsig), log)
    except VerificationError:
        raise VerificationError(f"checkpoint signature does not verify with the log key {log.name}+"
                                f"{log.key_id.hex()} (size {size}, root from the inclusion proof): the event, "
                                "the proof or the checkpoint was altered, or another log signed it") from None
    reveals = _check_reveals(reveals)
    event = _open(event, reveals)
    d = event.data
    if "res" not in d:
        raise VerificationError("certified event has no result")
    hist = state = None
    if history is not None:
        hist, state = check_history(history, event, reveals)
    unknown = set(reveals) - {event.index} - {h.index for h in hist or ()}
    if unknown:
        raise VerificationError(f"a reveal is given for log index {min(unknown)}, which is not an event of this "
                                "certificate's history")
    return CertInfo(event.item, d["res"], d.get("fap"), event.time, d.get("loc"), d.get("op"), d.get("dev"),
                    d.get("scan"), event.index, iat, cp, event, hist, state, msg.kid or b"", fmt)


def _check_reveals(reveals) -> dict:
    if reveals is None:
        return {}
    if not isinstance(reveals, dict) or not all(type(k) is int and isinstance(v, dict) for k, v in reveals.items()):
        raise VerificationError("reveals are not a map of log index to reveal")
    return reveals


def _open(e: ev.Event, reveals: dict) -> ev.Event:
    """The event with the sealed values ``reveals`` holds for it, each checked against its commitment."""
    if sealed.SEALED_KEY not in e.data:
        if e.index in reveals:
            raise VerificationError(f"event {e.index}: a reveal is given but its leaf seals nothing")
        return e
    import dataclasses

    return dataclasses.replace(e, data=sealed.open_data(e.kind, e.data, reveals.get(e.index), sealed.ALL, e.index))


def check_history(hist, e: ev.Event, reveals: dict | None = None) -> tuple[list[ev.Event], ItemState]:
    """Check the item's events before ``e`` (leaf bytes) against ``e``'s chain head and replay them
    (sealed values opened with ``reveals``, each checked; the others replay as ``[sealed]``)."""
    if not isinstance(hist, list) or len(hist) > MAX_HISTORY:
        raise VerificationError("certificate history is not a list of events")
    if len(hist) != e.seq:
        raise VerificationError(f"history has {len(hist)} events, the item's chain has {e.seq}"
                                " before the certified one")
    reveals = _check_reveals(reveals)
    out = []
    prev = None
    for n, raw in enumerate(hist + [e.raw]):
        h = _open(ev.decode_leaf(raw), reveals)
        if h.item != e.item or h.seq != n:
            raise VerificationError(f"history event {n} belongs to another item or position")
        if h.prev != (prev.hash if prev else None):
            raise VerificationError(f"item history was altered: event {n} (log index {h.index})"
                                    " does not link to the event before it")
        if prev is not None and h.index <= prev.index:
            raise VerificationError(f"item history is out of log order at event {n}")
        out.append(h)
        prev = h
    try:
        state = replay(out)
    except UsageError as err:
        raise VerificationError(f"item history is not a valid custody sequence: {err}") from None
    assert state is not None
    return out[:-1], state


# --- bundles: a certificate with the history it stands on, for offline checks -------------

def make_bundle(blob: bytes, history: list[bytes], reveals: dict | None = None) -> bytes:
    """A saved bundle: ``{"glint-bundle": 1, "cert": certificate, "hist": [leaf, ...]}`` (deterministic CBOR);
    with reveals (log index -> reveal of sealed values, glint.ledger.sealed) format 2, ``"rev"`` added."""
    b = {"glint-bundle": BUNDLE_VERSION, "cert": bytes(blob), "hist": [bytes(h) for h in history]}
    if reveals:
        b["glint-bundle"] = BUNDLE_REVEALS_VERSION
        b["rev"] = {int(k): v for k, v in reveals.items()}
    return cbor.dumps(b)


def read(data: bytes) -> tuple[bytes, list[bytes] | None]:
    """Split a file into (certificate, history or None): a bare certificate or a bundle."""
    c, hist, _ = read_bundle(data)
    return c, hist


def read_bundle(data: bytes) -> tuple[bytes, list[bytes] | None, dict | None]:
    """Split a file into (certificate, history or None, reveals or None)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_BUNDLE_BYTES:
        raise VerificationError("certificate file is not bytes or too large")
    data = bytes(data)
    if data[:1] == b"\xd2":
        return data, None, None
    try:
        b = cbor.loads(data)
    except DecodeError as e:
        raise VerificationError(f"file is neither a certificate nor a bundle: {e}") from None
    if not isinstance(b, dict) or "glint-bundle" not in b:
        raise VerificationError("file is neither a certificate (COSE_Sign1) nor a glint bundle")
    fields = {"glint-bundle", "cert", "hist"} | ({"rev"} if b.get("glint-bundle") == BUNDLE_REVEALS_VERSION else set())
    if b.get("glint-bundle") not in (BUNDLE_VERSION, BUNDLE_REVEALS_VERSION) or set(b) != fields:
        raise VerificationError(f"bundle is not a glint format-{BUNDLE_VERSION} or -{BUNDLE_REVEALS_VERSION} bundle")
    if cbor.dumps(b) != data:
        raise VerificationError("bundle is not in deterministic CBOR form")
    if not isinstance(b["cert"], bytes) or not isinstance(b["hist"], list) or \
            not all(isinstance(h, bytes) for h in b["hist"]):
        raise VerificationError("bundle does not hold a certificate and a list of events")
    return b["cert"], b["hist"], _check_reveals(b.get("rev")) or None
