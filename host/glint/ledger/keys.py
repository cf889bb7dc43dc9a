"""The ledger's two keys, kept under the glint home directory.

- issuer key (ECDSA P-256): signs scan certificates (COSE_Sign1, ES256);
  public key exported as SEC1 hex (``issuer.pub``) and PEM (``issuer.pem``).
- log key (Ed25519): signs checkpoints as C2SP signed notes; its name is the log
  origin; public key exported as the signed-note verifier key string (``log.vkey``).

Layout: ``$GLINT_HOME/keys/{issuer.key, log.key}`` (mode 0600), default home ``~/.glint``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from glint.errors import UsageError
from glint.home import Home
from glint.keys import load_public_key, public_pem
from glint.ledger.note import Signer, Verifier
from glintcore import p256

_log = logging.getLogger(__name__)

ORIGIN_PREFIX = "glint.local/ledger/"
P256_N = p256.N
ISSUER_FILE = "issuer.key"
LOG_FILE = "log.key"


def glint_home(home: str | os.PathLike | None = None) -> Path:
    """The glint home directory: ``home`` if given, else $GLINT_HOME, else ~/.glint (glint.home)."""
    return Home(home).root


# P-256: the project's own glintcore.p256 (RFC 6979); key text and PEM through glint.keys, the one key loader.
public_key = p256.public_key
sign_digest = p256.sign_digest
verify_digest = p256.verify_digest


def pem_of(pub65: bytes) -> str:
    return public_pem(pub65).decode("ascii")


def load_issuer_public(text_or_path: str) -> bytes:
    """An issuer public key from SEC1 hex, a PEM block, or a file holding either (glint.keys)."""
    return load_public_key(text_or_path)


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
        if self.home is None:
            raise UsageError("these keys belong to no glint home", "load or create them with Keys.load(home)")
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
