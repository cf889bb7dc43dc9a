"""Host cryptography on pyca/cryptography (OpenSSL): ES256 (P-256), Ed25519, SEC1 and PEM keys.

Why a dependency: the host's long-lived keys (the ledger's issuer and log keys) and
every scan verification ran on pure Python (glintcore.p256, python-ecdsa), which is
not constant-time (python-ecdsa puts side channels out of scope) and is slow: ES256
verify 18.8x and Ed25519 verify 26.9x faster here through OpenSSL. pyca/cryptography
is the field's well-kept binding (sigstore-python uses it). glintcore.p256 stays: it is
what the device runs, and the tests check the two against each other.

ES256 signing is deterministic (RFC 6979, OpenSSL 3.2+), so a host signature is
byte-identical to glintcore.p256's for the same key and digest (tested).
Functions take and return the wire forms glint uses: 65-byte SEC1 public points,
32-byte digests, 64-byte r||s signatures, 32-byte Ed25519 seeds and public keys.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature

from glint.errors import UsageError

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_CURVE = ec.SECP256R1()
_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))
_PREHASHED_DET = ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True)
_KEY_CACHE = 4096  # parsed public keys (provisioned devices, issuers) kept ready


@functools.lru_cache(maxsize=_KEY_CACHE)
def _p256_public(pub: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, pub)


@functools.lru_cache(maxsize=16)
def _p256_private(d: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(d, _CURVE)


def p256_public(d: int) -> bytes:
    """The SEC1 uncompressed public point (65 bytes) of private scalar ``d``."""
    if not 0 < d < P256_N:
        raise UsageError("P-256 private key is out of range")
    return _p256_private(d).public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint)


def es256_sign_digest(d: int, h: bytes) -> bytes:
    """Deterministic (RFC 6979) ECDSA P-256 signature r||s (64 bytes) of the SHA-256 digest ``h``."""
    der = _p256_private(d).sign(bytes(h), _PREHASHED_DET)
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es256_verify_digest(pub: bytes, h: bytes, sig: bytes) -> bool:
    """True if ``sig`` (r||s) is a valid P-256 signature of digest ``h`` by SEC1 point ``pub``."""
    if len(sig) != 64 or len(h) != 32:
        return False
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < P256_N and 0 < s < P256_N):
        return False
    try:
        key = _p256_public(bytes(pub))
    except ValueError:  # not a point on the curve
        return False
    try:
        key.verify(encode_dss_signature(r, s), bytes(h), _PREHASHED)
    except InvalidSignature:
        return False
    return True


def check_p256_point(pub: bytes) -> bytes:
    """``pub`` if it is an uncompressed SEC1 point on P-256; UsageError otherwise."""
    if len(pub) != 65 or pub[0] != 4:
        raise UsageError("P-256 public key must be an uncompressed SEC1 point (65 bytes, 04||x||y)")
    try:
        _p256_public(bytes(pub))
    except ValueError:
        raise UsageError("P-256 public key is not a point on the curve") from None
    return bytes(pub)


def p256_public_from_pem(text: str | bytes) -> bytes:
    """SEC1 point of a PEM public key (SubjectPublicKeyInfo) or of a PEM private key; UsageError if not P-256."""
    data = text.encode("ascii") if isinstance(text, str) else text
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            raise UsageError("not a PEM public or (unencrypted) private key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _CURVE.name:
        raise UsageError("PEM key is not a P-256 key")
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def p256_private_from_pem(text: str | bytes) -> int:
    """The private scalar of an unencrypted PEM (PKCS#8 or SEC1 'EC PRIVATE KEY') P-256 key."""
    data = text.encode("ascii") if isinstance(text, str) else text
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UsageError("not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _CURVE.name:
        raise UsageError("PEM key is not a P-256 private key")
    return key.private_numbers().private_value


def p256_public_pem(pub: bytes) -> str:
    """PEM SubjectPublicKeyInfo of a SEC1 point."""
    return _p256_public(check_p256_point(pub)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def p256_private_pem(d: int) -> bytes:
    """PKCS#8 PEM of a private scalar (for files written 0600 by the caller)."""
    return _p256_private(d).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())


# --- Ed25519 (signed-note checkpoints) -------------------------------------------------------

def ed25519_public(seed: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@functools.lru_cache(maxsize=16)
def _ed25519_private(seed: bytes) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)  # derives the public key: not per signature


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    return _ed25519_private(bytes(seed)).sign(bytes(msg))


@functools.lru_cache(maxsize=64)
def _ed25519_public(pub: bytes) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(pub)


def check_ed25519_public(pub: bytes) -> bytes:
    try:
        _ed25519_public(bytes(pub))
    except ValueError:
        raise UsageError("not a 32-byte Ed25519 public key") from None
    return bytes(pub)


def ed25519_verify(pub: bytes, msg: bytes, sig: bytes) -> bool:
    if len(sig) != 64:
        return False
    try:
        _ed25519_public(bytes(pub)).verify(bytes(sig), bytes(msg))
    except (InvalidSignature, ValueError):
        return False
    return True
