"""Scan certificates: a CWT in a COSE_Sign1 (ES256) signed by the host's issuer key.

A certificate proves, to anyone holding only the issuer public key and the log's
verifier key, that a verification event is in the log and what the item's history
was up to it. Claims (deterministic CBOR map; see docs/ledger.md):

    1 iss: log origin      6 iat: issue time     7 cti: first 16 bytes of the leaf hash
    "glint": 1             certificate format version
    "item", "res", "fap", "time", "loc", "op", "dev", "scan"   the verification
    "idx":   log index     "leaf": the verify event's leaf bytes
    "proof": [hash...]     inclusion proof of the leaf in the checkpoint's tree
    "ckpt":  tstr          the signed checkpoint (C2SP signed note)
    "hist":  [leaf...]     every earlier event of the item, in order (per-item hash chain)

``verify`` checks the signature, the checkpoint signature, the inclusion proof, that
the claims say what the leaf says, and that the history chains into the leaf; any
failure raises VerificationError with a one-line reason.
"""

from __future__ import annotations

import hashlib
import time as _time
from dataclasses import dataclass

from glint.errors import CryptoError, DecodeError, UsageError, VerificationError
from glint.ledger import events as ev
from glint.ledger import merkle
from glint.ledger.keys import Keys, verify_digest
from glint.ledger.note import Checkpoint, Verifier, open_checkpoint
from glint.ledger.twins import ItemState, replay
from glintcore import cbor, cose

CERT_VERSION = 1
CWT_ISS, CWT_IAT, CWT_CTI = 1, 6, 7
CONTENT_FORMAT_CWT = 61  # CoAP content-format of application/cwt
MAX_CERT_BYTES = 1 << 20
MAX_HISTORY = 10_000
_CLAIM_FROM_DATA = {"res": "res", "fap": "fap", "loc": "loc", "op": "op", "dev": "dev", "scan": "scan"}
_REQUIRED = {CWT_ISS, CWT_IAT, CWT_CTI, "glint", "item", "res", "time", "idx", "leaf", "proof", "ckpt", "hist"}


def issuer_kid(pub65: bytes) -> bytes:
    """Key id of an issuer key in the COSE header: first 8 bytes of SHA-256 of the SEC1 point."""
    return hashlib.sha256(pub65).digest()[:8]


@dataclass(frozen=True)
class CertInfo:
    """What a verified certificate says."""

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
    history: list[ev.Event]
    state: ItemState

    def as_dict(self) -> dict:
        return {
            "item": self.item, "result": self.result, "fap": self.fap, "time": self.time,
            "location": self.location, "operator": self.operator, "device": self.device,
            "scan": self.scan.hex() if self.scan else None, "index": self.index, "issued": self.issued,
            "log": self.checkpoint.origin, "tree_size": self.checkpoint.size,
            "root": self.checkpoint.root.hex(), "brand": self.state.brand,
            "provenance": self.state.provenance_line(),
            "history": [{"index": e.index, "kind": e.kind, "time": e.time, "summary": e.summary()}
                        for e in self.history],
        }


def build(keys: Keys, leaf: bytes, history: list[bytes], proof: list[bytes], checkpoint_note: str,
          issued: int | None = None) -> bytes:
    """Sign a certificate for the verify event ``leaf`` (no checks: see Ledger.issue_certificate)."""
    e = ev.decode_leaf(leaf, UsageError)
    cp = Checkpoint.parse(checkpoint_note[: checkpoint_note.rfind("\n\n") + 1])
    claims = {
        CWT_ISS: cp.origin, CWT_IAT: int(_time.time()) if issued is None else issued, CWT_CTI: e.hash[:16],
        "glint": CERT_VERSION, "item": e.item, "time": e.time, "idx": e.index, "leaf": e.raw,
        "proof": list(proof), "ckpt": checkpoint_note, "hist": list(history),
    }
    for claim, field in _CLAIM_FROM_DATA.items():
        if field in e.data:
            claims[claim] = e.data[field]
    payload = cbor.dumps(claims)
    return cose.sign1_with(payload, keys.sign_digest, kid=issuer_kid(keys.issuer_public),
                           protected_extra={3: CONTENT_FORMAT_CWT})


def verify(blob: bytes, issuer_pub: bytes, log: Verifier) -> CertInfo:
    """Verify a certificate offline with the issuer public key and the log verifier key."""
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
    if not isinstance(c, dict) or c.get("glint") != CERT_VERSION:
        raise VerificationError("certificate is not a glint version-1 certificate")
    missing = [str(k) for k in _REQUIRED if k not in c]
    if missing:
        raise VerificationError(f"certificate lacks claims {', '.join(sorted(missing))}")
    if not isinstance(c["ckpt"], str):
        raise VerificationError("certificate checkpoint is not text")
    cp = open_checkpoint(c["ckpt"], log)
    if c[CWT_ISS] != cp.origin:
        raise VerificationError(f"certificate issuer {c[CWT_ISS]!r} is not the log {cp.origin!r}")
    event = ev.decode_leaf(c["leaf"])
    if event.kind != ev.VERIFY:
        raise VerificationError(f"certified event is a {event.kind} event, not a verification")
    if c["idx"] != event.index:
        raise VerificationError(f"certificate index {c['idx']} is not the event's index {event.index}")
    if c[CWT_CTI] != event.hash[:16]:
        raise VerificationError("certificate id does not match the event")
    merkle.verify_inclusion(event.hash, event.index, cp.size, c["proof"], cp.root)
    _check_claims(c, event)
    history = _check_history(c["hist"], event)
    try:
        state = replay(history + [event])
    except UsageError as err:
        raise VerificationError(f"item history is not a valid custody sequence: {err}") from None
    if state is None:
        raise VerificationError("certificate has no item history")
    d = event.data
    return CertInfo(event.item, d["res"], d.get("fap"), event.time, d.get("loc"), d.get("op"), d.get("dev"),
                    d.get("scan"), event.index, c[CWT_IAT], cp, event, history, state)


def _check_claims(c: dict, e: ev.Event) -> None:
    if c["item"] != e.item:
        raise VerificationError(f"certificate names item {c['item']!r} but the event is for {e.item!r}")
    if c["time"] != e.time:
        raise VerificationError("certificate time differs from the event's")
    for claim, field in _CLAIM_FROM_DATA.items():
        if c.get(claim) != e.data.get(field):
            raise VerificationError(f"certificate claim {claim!r} differs from the logged event")


def _check_history(hist, e: ev.Event) -> list[ev.Event]:
    if not isinstance(hist, list) or len(hist) > MAX_HISTORY:
        raise VerificationError("certificate history is not a list of events")
    if len(hist) != e.seq:
        raise VerificationError(f"certificate history has {len(hist)} events, the item's chain has {e.seq}"
                                " before this one")
    out = []
    prev = None
    for n, raw in enumerate(hist + [e.raw]):
        h = ev.decode_leaf(raw)
        if h.item != e.item or h.seq != n:
            raise VerificationError(f"history event {n} belongs to another item or position")
        if h.prev != (prev.hash if prev else None):
            raise VerificationError(f"item history was altered: event {n} (log index {h.index})"
                                    " does not link to the event before it")
        if prev is not None and h.index <= prev.index:
            raise VerificationError(f"item history is out of log order at event {n}")
        out.append(h)
        prev = h
    return out[:-1]
