"""The marketplace check: POST /v1/certificates/verify (public) says whether a certificate is genuine.

A seller shows a certificate (the bytes ``glint cert issue -o`` writes: a COSE_Sign1 CWT);
the marketplace sends it, with the listing's item id, and gets a verdict it can act on
automatically. The certificate's own checks are the library's (glint.ledger.cert.verify:
signature by the issuer key, the log's signed checkpoint, the inclusion proof, the
certified event and the item's history); this module only decides which issuer keys
this server vouches for and adds what only the server can say (its own log agrees).

Checks, in order; the first that fails is named in ``failure`` and the verdict is
``failed``; ``checks_passed`` lists the ones before it:

- ``format``: certificate bytes were sent (base64 in JSON, or raw as application/cose),
  at most glint.ledger.cert.MAX_CERT_BYTES, a COSE_Sign1 message with an issuer key id;
- ``issuer-known``: its key id is this server's issuer key or one in ``[issuers] trusted``;
- ``issuer-not-revoked``: the key id is not in ``[issuers] revoked``;
- ``certificate``: glint.ledger.cert.verify with that key and this server's log key;
- ``log-consistent``: this server's log has the certificate's tree (same root at that size);
- ``history``: the item's earlier events in this server's log chain into the certified
  event's chain head and replay as a valid custody sequence (glint.ledger.cert.check_history);
- ``result-pass``: the certified verification's result is ``pass``;
- ``not-voided``: no issuer voided the certificate since (a ``void`` event in this server's log;
  glint.orgs); the answer's ``status`` also says whether the item was retired since or has an
  open case (a substitution), which do not fail the check but a marketplace should show;
- ``item``: the certificate is for the listing's item (only when an item id was sent).

Issuer trust lives in ``<home>/config.toml``::

    [issuers]
    trusted = ["04ab..."]   # SEC1 hex of earlier issuer public keys whose certificates still count
    revoked = ["1f2e..."]   # 16-hex-digit key ids (glint.ledger.cert.issuer_kid) no longer trusted

The server reads ``[issuers]`` again whenever config.toml changes.

Every answer is JSON; garbage, a tampered certificate and an unknown or revoked issuer are
``verdict: failed`` answers naming the check, never an exception.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from glint.errors import DecodeError, GlintError, UsageError
from glint.ledger import cert
from glint.ledger.note import Verifier
from glintcore import cose

CHECKS = ("format", "issuer-known", "issuer-not-revoked", "certificate", "log-consistent", "history", "result-pass",
          "not-voided", "item")
VERIFY_RATE_PER_S = 20.0     # per caller (address or key): a check costs two signature verifications ([limits])
MAX_ITEM_LEN = 1024
COSE_MEDIA = "application/cose"


_HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}
REQUEST_SCHEMA = {
    "type": "object", "required": ["cert"], "additionalProperties": False,
    "properties": {"cert": {"type": "string", "contentEncoding": "base64",
                            "description": "the certificate file (COSE_Sign1, as glint cert issue -o writes it) "
                                           "in standard base64"},
                   "item": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_ITEM_LEN,
                            "description": "the listing's item id: the answer says whether it is the certificate's "
                                           "(null: none)"}},
}
ANSWER_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["verdict", "item", "result", "time", "issued", "index", "log", "issuer", "checks_passed", "failure",
                 "listing_item", "is_listing_item", "status"],
    "properties": {
        "verdict": {"enum": ["verified", "failed"]},
        "item": {"type": ["string", "null"], "description": "the certified item (null unless the certificate verified)"},
        "result": {"type": ["string", "null"], "description": "the certified verification's result"},
        "time": {"type": ["integer", "null"], "description": "Unix seconds of the certified verification"},
        "issued": {"type": ["integer", "null"], "description": "Unix seconds the certificate was issued"},
        "index": {"type": ["integer", "null"], "minimum": 0, "description": "log index of the verify event"},
        "log": {"type": ["string", "null"], "description": "the log's origin"},
        "issuer": {"anyOf": [_HEX, {"type": "null"}], "description": "the issuer key id the certificate names"},
        "checks_passed": {"type": "array", "items": {"enum": list(CHECKS)}},
        "failure": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["check", "error"], "additionalProperties": False,
            "properties": {"check": {"enum": list(CHECKS)}, "error": {"type": "string", "minLength": 1}}}]},
        "listing_item": {"type": ["string", "null"]},
        "is_listing_item": {"type": ["boolean", "null"]},
        "status": {"type": ["object", "null"], "required": ["status"],
                   "description": "the certificate's current status in this server's log (null when the "
                                  "certificate did not get that far): GET /v1/certificates/{index}/status",
                   "properties": {"status": {"enum": ["current", "voided", "retired", "suspect"]}}},
    },
}


@dataclass
class Trust:
    """The issuer keys (key id -> SEC1 point) and the log this server vouches for."""

    issuers: dict[bytes, bytes]
    revoked: frozenset[bytes]
    log: Verifier

    @classmethod
    def of(cls, own_issuer: bytes, log_vkey: str, section: dict) -> "Trust":
        from glint.keys import load_public_key

        trusted = section.get("trusted", [])
        revoked = section.get("revoked", [])
        if not isinstance(trusted, list) or not isinstance(revoked, list):
            raise UsageError("[issuers] trusted and revoked must be lists",
                             'trusted = ["<SEC1 hex>"], revoked = ["<16 hex digits>"]')
        keys = {cert.issuer_kid(own_issuer): own_issuer}
        for k in trusted:
            pub = load_public_key(str(k))
            keys[cert.issuer_kid(pub)] = pub
        kids = set()
        for k in revoked:
            try:
                kid = bytes.fromhex(str(k))
            except ValueError:
                kid = b""
            if len(kid) != 8:
                raise UsageError(f"[issuers] revoked: {str(k)[:40]!r} is not a 16-hex-digit issuer key id")
            kids.add(kid)
        return cls(keys, frozenset(kids), Verifier(log_vkey))


@dataclass
class Answer:
    checks_passed: list[str] = field(default_factory=list)
    failure: dict | None = None
    info: cert.CertInfo | None = None
    issuer: str | None = None
    status: dict | None = None

    def passed(self, name: str) -> None:
        self.checks_passed.append(name)

    def fail(self, name: str, error: str) -> None:
        self.failure = {"check": name, "error": error}


def check_item_arg(item) -> None:
    """The listing's item id as sent: a string of 1..MAX_ITEM_LEN characters (compared, not parsed)."""
    if not isinstance(item, str) or not 0 < len(item) <= MAX_ITEM_LEN:
        raise UsageError(f"'item' must be the listing's item id (1..{MAX_ITEM_LEN} characters)")


def certificate_bytes(body) -> tuple[bytes | str, str | None]:
    """(certificate bytes, or the reason they are not usable; listing item or None) of a JSON request.

    Raises UsageError (400) only when the request carries no certificate at all.
    """
    if not isinstance(body, dict) or not isinstance(body.get("cert"), str):
        raise UsageError('body must be {"cert": "<base64 certificate>", "item": "<listing item id, optional>"}',
                         f"or send the certificate file as it is with Content-Type: {COSE_MEDIA}")
    unknown = set(body) - {"cert", "item"}
    if unknown:
        raise UsageError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
    item = body.get("item")
    if item is not None:
        check_item_arg(item)
    text = body["cert"]
    if len(text) > 2 * cert.MAX_CERT_BYTES:
        return f"certificate larger than {cert.MAX_CERT_BYTES} bytes", item
    try:
        return base64.b64decode(text, validate=True), item
    except (binascii.Error, ValueError):
        return "'cert' is not standard base64", item


def check(blob: bytes | str, item: str | None, trust: Trust, log_root=None, history_of=None,
          status_of=None) -> Answer:
    """Run the checks (module docstring).

    ``status_of(index)``: the current status of the certificate of verify event ``index``
    (glint.orgs.current_status); without it ``not-voided`` is left out.

    ``log_root(size)``: this server's root at a tree size (raises GlintError if it has none);
    ``history_of(item, seq)``: the item's leaves before sequence ``seq`` in this server's log.
    Without them the two checks that need the log are left out.
    """
    a = Answer()
    if isinstance(blob, str):
        a.fail("format", blob)
        return a
    if len(blob) > cert.MAX_CERT_BYTES:
        a.fail("format", f"certificate larger than {cert.MAX_CERT_BYTES} bytes")
        return a
    try:
        kid = cose.decode1(blob).kid
    except (DecodeError, TypeError, ValueError, IndexError, KeyError, OverflowError, RecursionError) as e:
        a.fail("format", f"not a COSE_Sign1 certificate: {e}")
        return a
    if not isinstance(kid, bytes):
        a.fail("format", "the certificate names no issuer key (kid)")
        return a
    a.passed("format")
    a.issuer = kid.hex()
    pub = trust.issuers.get(kid)
    if pub is None:
        a.fail("issuer-known", f"issued under key {kid.hex()[:32]}, which this server does not vouch for")
        return a
    a.passed("issuer-known")
    if kid in trust.revoked:
        a.fail("issuer-not-revoked", f"issuer key {kid.hex()} was revoked: its certificates no longer count")
        return a
    a.passed("issuer-not-revoked")
    try:
        info = cert.verify(blob, pub, trust.log)
    except GlintError as e:
        a.fail("certificate", e.msg)
        return a
    a.info = info
    a.passed("certificate")
    if log_root is not None:
        try:
            ours = log_root(info.checkpoint.size)
        except GlintError:
            ours = None
        if ours != info.checkpoint.root:
            a.fail("log-consistent", f"this server's log has no tree of size {info.checkpoint.size} with the "
                                     "certificate's root")
            return a
        a.passed("log-consistent")
    if history_of is not None:
        try:
            cert.check_history(history_of(info.item, info.event.seq), info.event)
        except GlintError as e:
            a.fail("history", e.msg)
            return a
        a.passed("history")
    if info.result != "pass":
        a.fail("result-pass", f"the certified verification's result is {str(info.result)!r}, not 'pass'")
        return a
    a.passed("result-pass")
    if status_of is not None:
        from glint.orgs import status_line

        try:
            a.status = status_of(info.index)
        except GlintError as e:
            a.fail("not-voided", f"this server cannot say whether the certificate was voided: {e.msg}")
            return a
        if a.status["status"] == "voided":
            a.fail("not-voided", status_line(a.status))
            return a
        a.passed("not-voided")
    if item is not None:
        if item != info.item:
            a.fail("item", "the certificate is for another item than the listing's")
            return a
        a.passed("item")
    return a


def answer_json(a: Answer, item: str | None) -> dict:
    """The JSON answer of POST /v1/certificates/verify (docs/api.md)."""
    i = a.info
    return {
        "verdict": "failed" if a.failure else "verified",
        "item": i.item if i else None,
        "result": i.result if i else None,
        "time": i.time if i else None,
        "issued": i.issued if i else None,
        "index": i.index if i else None,
        "log": i.checkpoint.origin if i else None,
        "issuer": a.issuer,
        "checks_passed": list(a.checks_passed),
        "failure": a.failure,
        "listing_item": item,
        "is_listing_item": None if item is None or i is None else item == i.item,
        "status": a.status,
    }
