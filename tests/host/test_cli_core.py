"""glint inspect / glint cose as a user runs them (glint's main, glinttest.glint_cli): real files."""

from __future__ import annotations

import ecdsa
import pytest
from glinttest import glint_cli

from glintcore import cose, descriptor as D, p256

KEY = p256.private_key_from_entropy(b"\x05" * 32)
PUB = p256.public_key(KEY)


def glint(*args, cwd=None):
    return glint_cli(*args, cwd=cwd)


@pytest.fixture
def signed_scan(tmp_path):
    d = D.make(b"\x00" * 8, 5, "0.1.0", "sim", 320, 240, {0: 1}, D.pack_spots([(32, 64, 255)]), 0, nonce=b"n" * 8)
    path = tmp_path / "scan.cose"
    path.write_bytes(cose.sign1(D.encode(d), KEY, kid=b"\x00" * 8))
    return path


def test_cose_verify_valid_hex_and_pem(tmp_path, signed_scan):
    r = glint("cose", "verify", str(signed_scan), "--pubkey", PUB.hex())
    assert r.returncode == 0, r.stderr
    pem = tmp_path / "dev.pem"
    pem.write_bytes(ecdsa.VerifyingKey.from_string(PUB, curve=ecdsa.NIST256p).to_pem())
    assert glint("cose", "verify", str(signed_scan), "--pubkey", str(pem)).returncode == 0


def test_cose_verify_invalid_is_exit_1_one_line(tmp_path, signed_scan):
    data = bytearray(signed_scan.read_bytes())
    data[-3] ^= 0x10
    bad = tmp_path / "bad.cose"
    bad.write_bytes(bytes(data))
    r = glint("cose", "verify", str(bad), "--pubkey", PUB.hex())
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "does not verify" in r.stderr
    r = glint("cose", "verify", str(signed_scan), "--pubkey", p256.public_key(7).hex())
    assert r.returncode == 1


def test_bad_key_and_missing_file_are_one_line_errors(signed_scan):
    r = glint("cose", "verify", str(signed_scan), "--pubkey", "04abcd")
    assert r.returncode == 2 and r.stderr.startswith("glint: ") and r.stderr.count("\n") == 1
    r = glint("inspect", "/nonexistent/file")
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_sign_then_verify_roundtrip(tmp_path):
    payload = tmp_path / "p.bin"
    payload.write_bytes(b"\xa1\x01\x02")
    out = tmp_path / "p.cose"
    assert glint("cose", "sign", str(payload), "--key", f"{KEY:064x}", "--kid", "0a0b", "-o", str(out)).returncode == 0
    assert cose.verify1(out.read_bytes(), PUB) == b"\xa1\x01\x02"
    assert cose.decode1(out.read_bytes()).kid == b"\x0a\x0b"


def test_inspect_signed_scan(signed_scan):
    r = glint("inspect", str(signed_scan), "--pubkey", PUB.hex())
    assert r.returncode == 0, r.stderr
    assert "scan descriptor v1" in r.stdout and "signature valid" in r.stdout
    assert "(1.00, 2.00, 255)" in r.stdout and "counter" in r.stdout


def test_inspect_plain_cbor_and_hex_file(tmp_path):
    f = tmp_path / "x.hex"
    f.write_text("a26161016162820203\n")
    r = glint("inspect", str(f))
    assert r.returncode == 0 and r.stdout.strip() == '{"a": 1, "b": [2, 3]}'
