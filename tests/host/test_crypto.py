"""Host crypto on OpenSSL (glint.crypto) against the independent implementations: glintcore.p256
(the device's, RFC 6979), python-ecdsa (Ed25519 and P-256); keys 0600 and never in a repr;
the external issuer signer fails closed."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

import ecdsa
import pytest

from glint import crypto
from glint.errors import LedgerError, UsageError
from glint.ledger import Keys, Ledger, verify_certificate
from glintcore import p256

RNG = __import__("random").Random(1515)


@pytest.mark.parametrize("i", range(12))
def test_es256_matches_glintcore_p256_both_ways(i):
    d = RNG.randrange(1, crypto.P256_N)
    h = hashlib.sha256(b"msg %d" % i).digest()
    pub = crypto.p256_public(d)
    assert pub == p256.public_key(d)
    sig = crypto.es256_sign_digest(d, h)
    assert sig == p256.sign_digest(d, h)  # RFC 6979 on both sides: byte-identical
    assert crypto.es256_verify_digest(pub, h, sig) and p256.verify_digest(pub, h, sig)
    bad = bytearray(sig)
    bad[RNG.randrange(64)] ^= 1 << RNG.randrange(8)
    assert not crypto.es256_verify_digest(pub, h, bytes(bad))
    assert not p256.verify_digest(pub, h, bytes(bad))


def test_es256_refuses_malformed_inputs():
    d = 12345
    pub, h = crypto.p256_public(d), bytes(32)
    sig = crypto.es256_sign_digest(d, h)
    n = crypto.P256_N.to_bytes(32, "big")
    for s in (b"", sig[:63], bytes(64), sig[:32] + n, n + sig[32:], sig + b"\x00"):
        assert not crypto.es256_verify_digest(pub, h, s)
    off_curve = b"\x04" + bytes(63) + b"\x01"
    assert not crypto.es256_verify_digest(off_curve, h, sig)
    with pytest.raises(UsageError):
        crypto.check_p256_point(off_curve)
    with pytest.raises(UsageError):
        crypto.p256_public(0)


def test_ed25519_matches_python_ecdsa():
    for i in range(6):
        seed = bytes(RNG.randrange(256) for _ in range(32))
        msg = b"checkpoint %d\n" % i
        sk = ecdsa.SigningKey.from_string(seed, curve=ecdsa.Ed25519)
        assert crypto.ed25519_public(seed) == sk.get_verifying_key().to_string()
        sig = crypto.ed25519_sign(seed, msg)
        assert sig == sk.sign(msg)
        assert crypto.ed25519_verify(crypto.ed25519_public(seed), msg, sig)
        assert not crypto.ed25519_verify(crypto.ed25519_public(seed), msg + b"x", sig)


def test_pem_round_trip_against_python_ecdsa():
    d = RNG.randrange(1, crypto.P256_N)
    pub = crypto.p256_public(d)
    pem = crypto.p256_public_pem(pub)
    assert crypto.p256_public_from_pem(pem) == pub
    assert crypto.p256_public_from_pem(ecdsa.VerifyingKey.from_string(pub[1:], curve=ecdsa.NIST256p).to_pem()) == pub
    sk_pem = ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p).to_pem()  # SEC1 "EC PRIVATE KEY"
    assert crypto.p256_private_from_pem(sk_pem) == d
    assert crypto.p256_private_from_pem(crypto.p256_private_pem(d)) == d
    other = ecdsa.SigningKey.generate(curve=ecdsa.SECP256k1).get_verifying_key().to_pem()
    with pytest.raises(UsageError, match="not a P-256"):
        crypto.p256_public_from_pem(other)
    with pytest.raises(UsageError):
        crypto.p256_public_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_key_files_are_0600_refused_when_readable_and_never_in_a_repr(tmp_path):
    keys = Keys.load(tmp_path, create=True)
    kdir = tmp_path / "keys"
    for name in ("issuer.key", "log.key"):
        assert stat.S_IMODE((kdir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(kdir.stat().st_mode) & 0o077 == 0
    secret = "%064x" % keys.issuer_d
    assert secret not in repr(keys) and keys.log_signer.skey() not in repr(keys.log_signer)
    os.chmod(kdir / "issuer.key", 0o644)
    with pytest.raises(UsageError, match="readable by other users"):
        Keys.load(tmp_path)


SIGNER = """
import sys
from glint import crypto
d = int(sys.argv[1], 16)
h = bytes.fromhex(sys.stdin.readline().strip())
print(crypto.es256_sign_digest(d, h).hex() if sys.argv[2] == "good" else "00" * 64)
"""


def test_external_issuer_signer_signs_and_fails_closed(tmp_path):
    home = tmp_path / "home"
    keys = Keys.load(home, create=True)
    d = keys.issuer_d
    kdir = home / "keys"
    (tmp_path / "signer.py").write_text(SIGNER)
    (kdir / "issuer.key").unlink()  # the private key lives with the signer now
    (kdir / "issuer.pub").write_text(keys.issuer_public.hex() + "\n")
    (kdir / "issuer.signer").write_text(f"{sys.executable} {tmp_path / 'signer.py'} {d:064x} good\n")
    ext = Keys.load(home)
    assert ext.external is not None and ext.issuer_public == keys.issuer_public
    with Ledger.open(home / "ledger.db", keys=ext, durable=False) as led:
        led.register_item("acme:BAG-1", "ACME")
        a = led.record_verify("acme:BAG-1", "pass", fap=1e-9)
        blob = led.issue_certificate(a.index)
    assert verify_certificate(blob, keys.issuer_public, keys.log_verifier()).result == "pass"
    (kdir / "issuer.signer").write_text(f"{sys.executable} {tmp_path / 'signer.py'} {d:064x} bad\n")
    with Ledger.open(home / "ledger.db", keys=Keys.load(home), durable=False) as led:
        a = led.record_verify("acme:BAG-1", "pass", fap=1e-9)
        with pytest.raises(LedgerError, match="gave no valid signature"):
            led.issue_certificate(a.index)
