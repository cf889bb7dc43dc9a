"""Reading and writing P-256 keys given on the command line: SEC1 hex or PEM files.

PEM and SEC1 parsing goes through pyca/cryptography (glint.crypto), not python-ecdsa.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from glint import crypto
from glint.errors import UsageError
from glintcore import p256

T = TypeVar("T")
R = TypeVar("R")

HINT = "give a SEC1 hex point 04||x||y (130 hex digits) or a PEM file"


def _spec_text(spec: str) -> str:
    """The key text of ``spec``: the content of the file it names, else ``spec`` itself."""
    p = Path(spec)
    return (p.read_bytes().decode("ascii", "replace") if p.is_file() else spec).strip()


def _parsed(spec: str, data: T, parse: Callable[[T], R], hint: str | None = None) -> R:
    """``parse(data)``, its UsageError naming ``spec``."""
    try:
        return parse(data)
    except UsageError as e:
        raise UsageError(f"{spec}: {e.msg}", hint=hint) from None


def load_public_key(spec: str) -> bytes:
    """A P-256 public key as 65-byte SEC1 (04||x||y) from hex text, a hex file or a PEM file."""
    text = _spec_text(spec)
    if "-----BEGIN" in text:
        return _parsed(spec, text, crypto.p256_public_from_pem, HINT)
    try:
        pub = bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"{spec}: not a file and not hex", hint=HINT) from None
    return _parsed(spec, pub, crypto.check_p256_point, HINT)


def load_private_key(spec: str) -> int:
    """A P-256 private key (int) from 64 hex digits, a file holding them, or a PEM file."""
    text = _spec_text(spec)
    if "-----BEGIN" in text:
        return _parsed(spec, text, crypto.p256_private_from_pem)
    try:
        d = int(text, 16)
    except ValueError:
        raise UsageError(f"{spec}: not a file and not a hex private key") from None
    if not 1 <= d < p256.N:
        raise UsageError(f"{spec}: private key out of range")
    return d


def write_private_pem(path: Path, d: int) -> None:
    """Write a private key as PEM, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    with os.fdopen(fd, "wb") as f:
        f.write(crypto.p256_private_pem(d))


def public_pem(pub: bytes) -> bytes:
    return crypto.p256_public_pem(pub).encode("ascii")


MAINTAINER_FILE = "maintainer.key"


def maintainer_key(home, create: bool = True) -> int | None:
    """The engineer's maintainer key of a home (``<home>/keys/maintainer.key``, hex, mode 0600).

    Its public half is provisioned on each scanner (glint.workflows.provision); its signed
    challenges unlock a locked scanner for the REPL and re-keying (docs/security.md).
    None when absent and not ``create``.
    """
    import secrets
    import stat

    path = Path(home) / "keys" / MAINTAINER_FILE
    if path.exists():
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(f"{path} is readable by other users", f"chmod 600 {path}")
        return load_private_key(str(path))
    if not create:
        return None
    d = secrets.randbelow(p256.N - 1) + 1
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%064x\n" % d)
    return d
