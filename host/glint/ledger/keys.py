"""The ledger's two keys, kept under the glint home directory.

- issuer key (ECDSA P-256): signs scan certificates (COSE_Sign1, ES256);
  public key exported as SEC1 hex (``issuer.pub``) and PEM (``issuer.pem``).
- log key (Ed25519): signs checkpoints as C2SP signed notes; its name is the log
  origin; public key exported as the signed-note verifier key string (``log.vkey``).

Layout: ``$GLINT_HOME/keys/{issuer.key, log.key}`` (mode 0600), default home ``~/.glint``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

import ecdsa
from ecdsa.util import sigdecode_string, sigencode_string

from glint.errors import UsageError
from glint.home import Home
from glint.ledger.note import Signer, Verifier

_log = logging.getLogger(__name__)

ORIGIN_PREFIX = "glint.local/ledger/"
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ISSUER_FILE = "issuer.key"
LOG_FILE = "log.key"


def glint_home(home: str | os.PathLike | None = None) -> Path:
    """The glint home directory: ``home`` if given, else $GLINT_HOME, else ~/.glint (glint.home)."""
    return Home(home).root


# P-256 primitives: glintcore.p256 when present (the project's own, RFC 6979), else python-ecdsa.
try:  # pragma: no cover - depends on which helper has landed
    from glintcore import p256 as _p256

    public_key = _p256.public_key
    sign_digest = _p256.sign_digest
    verify_digest = _p256.verify_digest
except ImportError:  # pragma: no cover

    def public_key(d: int) -> bytes:
        sk = ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p)
        return b"\x04" + sk.get_verifying_key().to_string()

    def sign_digest(d: int, h: bytes) -> bytes:
        sk = ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p, hashfunc=hashlib.sha256)
        return sk.sign_digest_deterministic(h, hashfunc=hashlib.sha256, sigencode=sigencode_string)

    def verify_digest(pub: bytes, h: bytes, sig: bytes) -> bool:
        try:
            vk = ecdsa.VerifyingKey.from_string(pub, curve=ecdsa.NIST256p)
            return bool(vk.verify_digest(sig, h, sigdecode=sigdecode_string))
        except (ecdsa.BadSignatureError, ecdsa.MalformedPointError, ValueError, AssertionError):
            return False


def pem_of(pub65: bytes) -> str:
    return ecdsa.VerifyingKey.from_string(pub65, curve=ecdsa.NIST256p).to_pem().decode("ascii")


def load_issuer_public(text_or_path: str) -> bytes:
    """An issuer public key from SEC1 hex, a PEM block, or a file holding either."""
    text = text_or_path
    p = Path(text_or_path)
    if len(text_or_path) < 4096 and p.is_file():
        text = p.read_text()
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            vk = ecdsa.VerifyingKey.from_pem(text)
            if vk.curve != ecdsa.NIST256p:
                raise UsageError("issuer key is not a P-256 key")
            return b"\x04" + vk.to_string()
        raw = bytes.fromhex(text)
        ecdsa.VerifyingKey.from_string(raw, curve=ecdsa.NIST256p)
    except UsageError:
        raise
    except Exception:
        raise UsageError("issuer key is neither SEC1 hex (04||x||y) nor a P-256 PEM public key",
                         "export it with 'glint cert keys'") from None
    if len(raw) != 65 or raw[0] != 4:
        raise UsageError("issuer key must be an uncompressed SEC1 point (65 bytes, 04||x||y)")
    return raw


def load_log_verifier(text_or_path: str) -> Verifier:
    """A log verifier from the signed-note key string or a file holding it."""
    p = Path(text_or_path)
    text = p.read_text() if len(text_or_path) < 4096 and p.is_file() else text_or_path
    return Verifier(text)


class Keys:
    """The issuer (P-256) and log (Ed25519) keys of one glint home."""

    def __init__(self, issuer_d: int, log_signer: Signer, home: Path | None = None):
        if not 0 < issuer_d < P256_N:
            raise UsageError("issuer private key is out of range")
        self.issuer_d = issuer_d
        self.log_signer = log_signer
        self.home = home
        self.issuer_public = public_key(issuer_d)

    @property
    def origin(self) -> str:
        return self.log_signer.name

    @property
    def log_vkey(self) -> str:
        return self.log_signer.vkey()

    def log_verifier(self) -> Verifier:
        """One verifier per key set, so its memo of checked notes is shared (see Verifier)."""
        v = getattr(self, "_log_verifier", None)
        if v is None:
            v = self._log_verifier = Verifier(self.log_vkey)
        return v

    @classmethod
    def generate(cls, origin: str | None = None) -> "Keys":
        d = secrets.randbelow(P256_N - 1) + 1
        return cls(d, Signer.generate(origin or ORIGIN_PREFIX + secrets.token_hex(4)))

    @classmethod
    def load(cls, home: str | os.PathLike | None = None, create: bool = False, origin: str | None = None) -> "Keys":
        """Load the keys of ``home`` (see glint_home); create them if ``create`` and absent."""
        kdir = glint_home(home) / "keys"
        ipath, lpath = kdir / ISSUER_FILE, kdir / LOG_FILE
        if not ipath.exists() or not lpath.exists():
            if not create:
                raise UsageError(f"no ledger keys in {kdir}", "create them with 'glint cert keys'")
            keys = cls.generate(origin)
            keys.home = glint_home(home)
            keys.save()
            _log.info("created issuer and log keys in %s (log origin %s)", kdir, keys.origin)
            return keys
        try:
            d = int(ipath.read_text().strip(), 16)
        except ValueError:
            raise UsageError(f"{ipath} is not a hex P-256 private key") from None
        return cls(d, Signer.from_skey(lpath.read_text()), glint_home(home))

    def save(self) -> None:
        kdir = self.home / "keys"
        kdir.mkdir(parents=True, exist_ok=True)
        for name, text in ((ISSUER_FILE, "%064x\n" % self.issuer_d), (LOG_FILE, self.log_signer.skey() + "\n")):
            path = kdir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    def export(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write the public keys: issuer.pub (SEC1 hex), issuer.pem, log.vkey. Returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "issuer.pub": self.issuer_public.hex() + "\n",
            "issuer.pem": pem_of(self.issuer_public),
            "log.vkey": self.log_vkey + "\n",
        }
        paths = {}
        for name, text in files.items():
            (out / name).write_text(text)
            paths[name] = out / name
        return paths

    def sign_digest(self, h: bytes) -> bytes:
        return sign_digest(self.issuer_d, h)
