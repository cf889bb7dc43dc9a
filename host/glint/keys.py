"""Reading and writing P-256 keys given on the command line: SEC1 hex or PEM files."""

from __future__ import annotations

import os
from pathlib import Path

import ecdsa

from glint.errors import UsageError
from glintcore import p256
from glintcore.errors import CryptoError

HINT = "give a SEC1 hex point 04||x||y (130 hex digits) or a PEM file"


def _read_spec(spec: str) -> tuple[str, bytes | None]:
    p = Path(spec)
    if p.is_file():
        return spec, p.read_bytes()
    return spec, None


def load_public_key(spec: str) -> bytes:
    """A P-256 public key as 65-byte SEC1 (04||x||y) from hex text, a hex file or a PEM file."""
    name, data = _read_spec(spec)
    text = data.decode("ascii", "replace").strip() if data is not None else spec.strip()
    if "-----BEGIN" in text:
        try:
            vk = ecdsa.VerifyingKey.from_pem(text)
        except Exception:  # python-ecdsa raises several types for bad PEM
            try:
                vk = ecdsa.SigningKey.from_pem(text).get_verifying_key()
            except Exception as e:
                raise UsageError(f"{name}: not a P-256 PEM key ({e})", hint=HINT) from None
        if vk.curve != ecdsa.NIST256p:
            raise UsageError(f"{name}: key is not on P-256", hint=HINT)
        pub = vk.to_string("uncompressed")
    else:
        try:
            pub = bytes.fromhex(text)
        except ValueError:
            raise UsageError(f"{name}: not a file and not hex", hint=HINT) from None
    try:
        p256.decode_point(pub)
    except CryptoError as e:
        raise UsageError(f"{name}: {e}", hint=HINT) from None
    return pub


def load_private_key(spec: str) -> int:
    """A P-256 private key (int) from 64 hex digits, a file holding them, or a PEM file."""
    name, data = _read_spec(spec)
    text = data.decode("ascii", "replace").strip() if data is not None else spec.strip()
    if "-----BEGIN" in text:
        try:
            sk = ecdsa.SigningKey.from_pem(text)
        except Exception as e:
            raise UsageError(f"{name}: not a P-256 private key PEM ({e})") from None
        if sk.curve != ecdsa.NIST256p:
            raise UsageError(f"{name}: key is not on P-256")
        return sk.privkey.secret_multiplier
    try:
        d = int(text, 16)
    except ValueError:
        raise UsageError(f"{name}: not a file and not a hex private key") from None
    if not 1 <= d < p256.N:
        raise UsageError(f"{name}: private key out of range")
    return d


def write_private_pem(path: Path, d: int) -> None:
    """Write a private key as PEM, readable by its owner only."""
    sk = ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(sk.to_pem())


def public_pem(pub: bytes) -> bytes:
    return ecdsa.VerifyingKey.from_string(pub, curve=ecdsa.NIST256p).to_pem()
