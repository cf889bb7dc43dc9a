"""COSE_Sign1 (RFC 9052) with ES256 (ECDSA P-256, SHA-256), portable.

    COSE_Sign1 = #6.18([ protected: bstr .cbor {1: -7, ? 4: kid, ...},
                         unprotected: {}, payload: bstr, signature: bstr .size 64 ])
    Sig_structure = ["Signature1", protected, external_aad, payload]

The signature is r || s, 32 bytes each (RFC 9053 section 2.1). The algorithm must
sit in the protected header; verification fails closed on anything else:
unknown critical headers, a wrong algorithm, a bad signature length.
"""

import hashlib

from micropython import const

from glintcore import cbor
from glintcore.errors import CryptoError, DecodeError

TAG_SIGN1 = const(18)
HDR_ALG = const(1)
HDR_CRIT = const(2)
HDR_CONTENT_TYPE = const(3)
HDR_KID = const(4)
ALG_ES256 = const(-7)
SIG_LEN = const(64)
_UNDERSTOOD = (HDR_ALG, HDR_CRIT, HDR_CONTENT_TYPE, HDR_KID)


class Sign1:
    """A decoded COSE_Sign1 message (signature not yet checked)."""

    def __init__(self, protected_bytes, protected, unprotected, payload, signature):
        self.protected_bytes = protected_bytes
        self.protected = protected
        self.unprotected = unprotected
        self.payload = payload
        self.signature = signature

    @property
    def alg(self):
        return self.protected.get(HDR_ALG)

    @property
    def kid(self):
        kid = self.protected.get(HDR_KID)
        return kid if kid is not None else self.unprotected.get(HDR_KID)

    def to_be_signed(self, external_aad=b""):
        # RFC 9052 section 4.4: with no protected attributes the Sig_structure holds a
        # zero-length bstr, even when the message carried an encoded empty map (h'A0').
        prot = self.protected_bytes if self.protected else b""
        return sig_structure(prot, self.payload, external_aad)


def sig_structure(protected_bytes, payload, external_aad=b""):
    """The bytes that are hashed and signed (RFC 9052 section 4.4): the deterministic CBOR of
    ``["Signature1", protected, external_aad, payload]``, written out (three byte strings)."""
    out = bytearray(_SIG1_HEAD)
    for b in (protected_bytes, external_aad, payload):
        b = bytes(b)
        cbor._head(out, 2, len(b))
        out.extend(b)
    return bytes(out)


_SIG1_HEAD = b"\x84\x6aSignature1"  # array(4), text(10) "Signature1"


def encode_protected(kid=None, extra=None):
    hdr = {HDR_ALG: ALG_ES256}
    if kid is not None:
        hdr[HDR_KID] = bytes(kid)
    if extra:
        for k in extra:
            hdr[k] = extra[k]
    return cbor.dumps(hdr)


def sign1_with(payload, sign_digest, kid=None, protected_extra=None, unprotected=None,
               external_aad=b"", tagged=True):
    """Build a COSE_Sign1 with ``sign_digest(sha256_digest) -> 64-byte r||s``."""
    prot = encode_protected(kid, protected_extra)
    tbs = sig_structure(prot, payload, external_aad)
    sig = sign_digest(hashlib.sha256(tbs).digest())
    if len(sig) != SIG_LEN:
        raise CryptoError("signer returned %d bytes, expected %d" % (len(sig), SIG_LEN))
    msg = [prot, unprotected if unprotected is not None else {}, bytes(payload), bytes(sig)]
    return cbor.dumps(cbor.Tag(TAG_SIGN1, msg) if tagged else msg)


def sign1(payload, priv, kid=None, protected_extra=None, unprotected=None, external_aad=b"", tagged=True):
    """Sign ``payload`` with the P-256 private key ``priv`` (int) using RFC 6979 nonces."""
    from glintcore import p256

    def _sign(h):
        return p256.sign_digest(priv, h)

    return sign1_with(payload, _sign, kid, protected_extra, unprotected, external_aad, tagged)


def decode1(msg, strict=True):
    """Parse COSE_Sign1 bytes (tagged or untagged) without checking the signature.

    ``strict`` (the default) refuses an envelope or protected header that is not in the
    deterministic encoding (RFC 8949 section 4.2): glint signs only that form, so any other
    spelling of the same message (indefinite lengths, long heads, chunked strings) was made
    by something else. Other implementations' messages (the COSE WG examples) need
    ``strict=False``.
    """
    obj = _glint_layout(msg) if strict else None
    if obj is None:
        obj = cbor.loads(msg, 16)
        if strict:
            try:
                again = cbor.dumps(obj)
            except (ValueError, TypeError):
                again = None
            if again != bytes(msg):
                raise DecodeError("cose: envelope not in deterministic encoding (RFC 8949 section 4.2)")
    if isinstance(obj, cbor.Tag):
        if obj.tag != TAG_SIGN1:
            raise DecodeError("cose: tag %d is not COSE_Sign1 (18)" % obj.tag)
        obj = obj.value
    if type(obj) is not list or len(obj) != 4:
        raise DecodeError("cose: COSE_Sign1 must be a 4-element array")
    prot_b, unprot, payload, sig = obj
    if type(prot_b) is not bytes:
        raise DecodeError("cose: protected header must be a byte string")
    if type(unprot) is not dict:
        raise DecodeError("cose: unprotected header must be a map")
    if type(payload) is not bytes:
        raise DecodeError("cose: payload must be a byte string (detached payloads unsupported)")
    if type(sig) is not bytes:
        raise DecodeError("cose: signature must be a byte string")
    if prot_b:
        prot = cbor.canonical(prot_b, 8) if strict else cbor.loads(prot_b, 8)
    else:
        prot = {}
    if type(prot) is not dict:
        raise DecodeError("cose: protected header must encode a map")
    for k in unprot:
        if k in prot:
            raise DecodeError("cose: header %r in both buckets" % (k,))
    return Sign1(prot_b, prot, unprot, payload, sig)


def _glint_layout(msg):
    """The envelope of the one layout glint signs, read without the general decoder: tag 18, an
    array of 4, a byte string, an empty map, two byte strings, every head in its shortest form,
    nothing after. Exactly what decoding and re-encoding would accept for that layout; None for
    any other bytes (the general decoder and the re-encoding check then decide)."""
    if type(msg) is not bytes or msg[:2] != b"\xd2\x84":
        return None
    n = len(msg)
    prot, i = cbor.short_string(msg, 2, n, 2)
    if prot is None or i >= n or msg[i] != 0xA0:
        return None
    payload, i = cbor.short_string(msg, i + 1, n, 2)
    if payload is None:
        return None
    sig, i = cbor.short_string(msg, i, n, 2)
    if sig is None or i != n:
        return None
    return cbor.Tag(TAG_SIGN1, [prot, {}, payload, sig])


def _check_headers(s, require_protected_alg=True):
    alg = s.alg
    if alg is None and not require_protected_alg:
        alg = s.unprotected.get(HDR_ALG)
    if alg != ALG_ES256:
        raise CryptoError("cose: algorithm %r is not ES256 (-7) in the protected header" % (alg,))
    crit = s.protected.get(HDR_CRIT)
    if crit is not None:
        if type(crit) is not list or not crit:
            raise CryptoError("cose: malformed crit header")
        for label in crit:
            if label not in _UNDERSTOOD:
                raise CryptoError("cose: unknown critical header %r" % (label,))
    if len(s.signature) != SIG_LEN:
        raise CryptoError("cose: ES256 signature must be %d bytes, got %d" % (SIG_LEN, len(s.signature)))


def verify_decoded(s, pub, external_aad=b"", verify_digest=None, require_protected_alg=True):
    """Check a decoded Sign1 against the SEC1 public key ``pub`` (65 bytes); raise CryptoError.

    glint's own messages carry the algorithm in the protected header, so by default
    an algorithm that is only in the unprotected bucket is refused.
    """
    _check_headers(s, require_protected_alg)
    if verify_digest is None:
        from glintcore import p256

        verify_digest = p256.verify_digest
    h = hashlib.sha256(s.to_be_signed(external_aad)).digest()
    if not verify_digest(pub, h, s.signature):
        raise CryptoError("cose: signature does not verify")
    return s.payload


def verify1(msg, pub, external_aad=b"", verify_digest=None, require_protected_alg=True, strict=True):
    """Verify COSE_Sign1 bytes with the public key ``pub``; return the payload or raise."""
    return verify_decoded(decode1(msg, strict), pub, external_aad, verify_digest, require_protected_alg)
