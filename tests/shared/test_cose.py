"""COSE_Sign1 ES256: the COSE working group vectors, interop both ways with pycose and python-ecdsa."""

from __future__ import annotations

import base64
import hashlib
import json

import ecdsa
import pytest
from ecdsa.util import sigdecode_string, sigencode_string
from pycose.algorithms import Es256
from pycose.headers import KID, Algorithm
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

from glintcore import cbor, cose, p256
from glintcore.errors import CryptoError, DecodeError
from glinttest import vector_params


def b64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _wg_cases(vectors):
    for path in sorted((vectors / "cose").glob("*.json")):
        v = json.loads(path.read_text())
        signer = v["input"].get("sign0", {})
        if signer.get("alg") != "ES256" or signer.get("key", {}).get("crv") != "P-256":
            continue  # other algorithms: glint implements ES256 only
        if v["output"]["cbor"].upper().startswith("D284") or v.get("fail"):
            yield dict(v, _id=path.stem)


def wg_vectors():
    return vector_params(_wg_cases, ids=lambda v: v["_id"])


def _pub(key) -> bytes:
    return b"\x04" + b64u(key["x"]) + b64u(key["y"])


@pytest.mark.parametrize("vec", wg_vectors())
def test_cose_wg_vectors(vec):
    signer = vec["input"]["sign0"]
    msg = bytes.fromhex(vec["output"]["cbor"])
    aad = bytes.fromhex(signer.get("external", "")) if signer.get("external") else b""
    pub = _pub(signer["key"])
    if vec.get("fail"):
        with pytest.raises((CryptoError, DecodeError)):
            cose.verify1(msg, pub, aad, require_protected_alg=False)
        return
    s = cose.decode1(msg)
    assert s.to_be_signed(aad).hex().upper() == vec["intermediates"]["ToBeSign_hex"].upper()
    assert cose.verify1(msg, pub, aad, require_protected_alg=False) == vec["input"]["plaintext"].encode()
    if "protected" not in signer:  # sign-pass-01 has alg only in the unprotected bucket
        with pytest.raises(CryptoError, match="protected"):
            cose.verify1(msg, pub, aad)


@pytest.fixture(scope="module")
def key():
    d = p256.private_key_from_entropy(hashlib.sha256(b"glint test key").digest())
    return d, p256.public_key(d)


def test_our_sign1_verifies_in_pycose(key):
    d, pub = key
    msg = cose.sign1(b"scan descriptor bytes", d, kid=b"\x01" * 8)
    m = Sign1Message.decode(msg)
    m.key = EC2Key(crv=P256, x=pub[1:33], y=pub[33:])
    assert m.verify_signature()
    assert m.phdr[Algorithm] == Es256 and m.phdr[KID] == b"\x01" * 8
    # and python-ecdsa agrees on the raw signature over the Sig_structure
    s = cose.decode1(msg)
    vk = ecdsa.VerifyingKey.from_string(pub, curve=ecdsa.NIST256p)
    assert vk.verify(s.signature, s.to_be_signed(), hashfunc=hashlib.sha256, sigdecode=sigdecode_string)


def test_pycose_sign1_verifies_here(key):
    d, pub = key
    ck = EC2Key(crv=P256, d=d.to_bytes(32, "big"), x=pub[1:33], y=pub[33:])
    m = Sign1Message(phdr={Algorithm: Es256, KID: b"peer"}, payload=b"from pycose")
    m.key = ck
    assert cose.verify1(m.encode(), pub) == b"from pycose"


def test_python_ecdsa_signer_interop(key):
    d, pub = key
    sk = ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p)
    msg = cose.sign1_with(b"x", lambda h: sk.sign_digest(h, sigencode=sigencode_string))
    assert cose.verify1(msg, pub) == b"x"


def test_deterministic_signature(key):
    d, _ = key
    assert cose.sign1(b"same", d, kid=b"k") == cose.sign1(b"same", d, kid=b"k")


@pytest.mark.parametrize("tamper", ["payload", "protected", "signature", "alg", "crit", "siglen", "tag"])
def test_tampering_fails_closed(key, tamper):
    d, pub = key
    s = cose.decode1(cose.sign1(b"payload", d, kid=b"k"))
    prot, unprot, payload, sig = s.protected_bytes, s.unprotected, s.payload, s.signature
    tag = cose.TAG_SIGN1
    if tamper == "payload":
        payload = b"pAyload"
    elif tamper == "protected":
        prot = cbor.dumps({1: -7, 4: b"K"})
    elif tamper == "signature":
        sig = sig[:-1] + bytes([sig[-1] ^ 1])
    elif tamper == "alg":
        prot = cbor.dumps({1: -35})
    elif tamper == "crit":
        prot = cbor.dumps({1: -7, 2: [99], 99: 1})
    elif tamper == "siglen":
        sig = sig + b"\x00"
    else:
        tag = 98
    msg = cbor.dumps(cbor.Tag(tag, [prot, unprot, payload, sig]))
    with pytest.raises((CryptoError, DecodeError)):
        cose.verify1(msg, pub)


def test_wrong_key_fails(key):
    d, _ = key
    other = p256.public_key(d + 1)
    with pytest.raises(CryptoError, match="does not verify"):
        cose.verify1(cose.sign1(b"p", d), other)


def test_python_ecdsa_verify_digest_hook(key):
    d, pub = key

    def vd(pub_, h, sig):
        try:
            return ecdsa.VerifyingKey.from_string(pub_, curve=ecdsa.NIST256p).verify_digest(
                sig, h, sigdecode=sigdecode_string)
        except ecdsa.BadSignatureError:
            return False

    assert cose.verify1(cose.sign1(b"p", d), pub, verify_digest=vd) == b"p"


def _respellings(msg: bytes) -> dict[str, bytes]:
    """The same COSE_Sign1 written in five non-deterministic ways (each decodes to the same value)."""
    assert msg[:2] == b"\xd2\x84"
    body = cbor.loads(msg).value
    prot, unprot, payload, sig = body
    assert unprot == {}

    def bstr(b: bytes) -> bytes:
        return cbor.dumps(b)

    def long_bstr(b: bytes) -> bytes:  # length in a 2-byte head where 1 byte would do
        return b"\x59" + len(b).to_bytes(2, "big") + b

    items = [bstr(prot), b"\xa0", bstr(payload), bstr(sig)]
    return {
        "indefinite array": b"\xd2\x9f" + b"".join(items) + b"\xff",
        "non-minimal length": b"\xd2\x84" + long_bstr(prot) + b"".join(items[1:]),
        "tag written long": b"\xd8\x12\x84" + b"".join(items),
        "chunked signature": b"\xd2\x84" + b"".join(items[:3]) + b"\x5f" + bstr(sig[:32]) + bstr(sig[32:]) + b"\xff",
        "indefinite map": b"\xd2\x84" + items[0] + b"\xbf\xff" + b"".join(items[2:]),
    }


@pytest.mark.parametrize("how", ["indefinite array", "non-minimal length", "tag written long",
                                 "chunked signature", "indefinite map"])
def test_non_deterministic_envelope_refused(key, how):
    d, pub = key
    msg = cose.sign1(b"scan descriptor bytes", d, kid=b"\x01" * 8)
    assert cose.verify1(msg, pub) == b"scan descriptor bytes"
    bad = _respellings(msg)[how]
    assert cbor.loads(bad) == cbor.loads(msg)  # the same value, another spelling
    assert cose.verify1(bad, pub, strict=False) == b"scan descriptor bytes"  # the signature itself holds
    with pytest.raises(DecodeError, match="deterministic"):
        cose.verify1(bad, pub)


def test_non_deterministic_protected_header_refused(key):
    d, pub = key
    # {1: -7} written with a non-minimal head for the key: the signature covers these bytes, but glint never signs them
    prot = b"\xa1\x18\x01\x26"
    sig = p256.sign_digest(d, hashlib.sha256(cose.sig_structure(prot, b"x")).digest())
    msg = cbor.dumps(cbor.Tag(18, [prot, {}, b"x", sig]))
    assert cose.verify1(msg, pub, strict=False) == b"x"
    with pytest.raises(DecodeError, match="deterministic"):
        cose.verify1(msg, pub)


def _outcome(f, msg):
    try:
        s = f(msg)
    except (DecodeError, CryptoError) as e:
        return type(e), str(e)
    return s.protected_bytes, s.protected, s.unprotected, s.payload, s.signature


def test_strict_decode_reads_glints_layout_exactly_as_the_general_decoder(monkeypatch):
    """decode1 reads the one envelope layout glint signs (d2 84 bstr a0 bstr bstr, shortest heads)
    without the general decoder: over every payload length class, each respelling above and
    random byte flips, truncations and extensions, it says exactly what the general decoder and
    re-encoding check say (the same fields, or the same error)."""
    import random

    general = {}
    rng = random.Random(9052)
    msgs = []
    for n in (0, 1, 23, 24, 255, 256, 700, 65535, 65536):
        sig = rng.randbytes(64)  # decoding checks no signature
        msg = cose.sign1_with(rng.randbytes(n), lambda h, sig=sig: sig, kid=b"\x01" * 8)
        msgs += [msg, *_respellings(msg).values(), msg[:-1], msg + b"\x00", msg[1:]]
        for _ in range(40 if n < 1000 else 4):
            b = bytearray(msg)
            for _ in range(rng.randrange(1, 3)):
                b[rng.randrange(min(len(b), 16) if rng.random() < 0.7 else len(b))] = rng.randrange(256)
            msgs.append(bytes(b))
    with monkeypatch.context() as m:
        m.setattr(cose, "_glint_layout", lambda msg: None)
        for msg in msgs:
            general[msg] = _outcome(cose.decode1, msg)
    fast = 0
    for msg in msgs:
        fast += cose._glint_layout(msg) is not None
        assert _outcome(cose.decode1, msg) == general[msg], msg[:8].hex()
    assert fast >= 9  # the fast path was taken (each valid message at least)
