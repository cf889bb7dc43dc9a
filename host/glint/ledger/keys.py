"""The ledger's two keys, kept under the glint home directory.

- issuer key (ECDSA P-256): signs scan certificates (COSE_Sign1, ES256);
  public key exported as SEC1 hex (``issuer.pub``) and PEM (``issuer.pem``).
- log key (Ed25519): signs checkpoints as C2SP signed notes; its name is the log
  origin; public key exported as the signed-note verifier key string (``log.vkey``).

Layout: ``$GLINT_HOME/keys/{issuer.key, log.key}`` (mode 0600), default home ``~/.glint``.

External signer: the issuer key can live outside glint (an HSM or PKCS#11 token, a
signing service). Put the command line in ``keys/issuer.signer`` (one line, shell
words) and the key's SEC1 public point in ``keys/issuer.pub`` (hex) instead of
``issuer.key``. For each certificate glint runs the command with the 32-byte SHA-256
digest to sign as 64 hex digits on stdin and reads the 64-byte r||s signature as 128
hex digits from stdout (a PKCS#11 token: a small wrapper around ``pkcs11-tool --sign
--mechanism ECDSA``). The signature is verified with ``issuer.pub`` before it is used:
a signer that answers wrongly fails closed.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from glint import crypto
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
SIGNER_FILE = "issuer.signer"
ISSUER_PUB_FILE = "issuer.pub"
SIGNER_TIMEOUT_S = 30.0    # an HSM asking for a PIN or a network signer may be slow; not forever
SECRET_MODE_MASK = 0o077   # key files readable by group or others are refused


def glint_home(home: str | os.PathLike | None = None) -> Path:
    """The glint home directory: ``home`` if given, else $GLINT_HOME, else ~/.glint (glint.home)."""
    return Home(home).root


# P-256 on the host goes through OpenSSL (glint.crypto); glintcore.p256 is the device's and a test
# cross-check. Key text and PEM through glint.keys, the one key loader.
public_key = crypto.p256_public
sign_digest = crypto.es256_sign_digest
verify_digest = crypto.es256_verify_digest


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


class ExternalSigner:
    """The issuer key behind a command (see the module docstring); ``sign_digest`` checks every answer."""

    def __init__(self, argv: list[str], public: bytes, timeout: float = SIGNER_TIMEOUT_S):
        if not argv:
            raise UsageError("the external signer command is empty")
        self.argv = list(argv)
        self.public = crypto.check_p256_point(public)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ExternalSigner({self.argv[0]!r})"

    def sign_digest(self, h: bytes) -> bytes:
        import subprocess

        from glint.errors import LedgerError

        try:
            r = subprocess.run(self.argv, input=bytes(h).hex() + "\n", capture_output=True, text=True,
                               timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LedgerError(f"external issuer signer {self.argv[0]} failed: {e}") from None
        out = r.stdout.strip()
        try:
            sig = bytes.fromhex(out)
        except ValueError:
            sig = b""
        if r.returncode != 0 or not crypto.es256_verify_digest(self.public, h, sig):
            why = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:200]
            raise LedgerError(f"external issuer signer {self.argv[0]} gave no valid signature ({why})",
                              f"it must print 128 hex digits r||s verifying with {ISSUER_PUB_FILE}")
        return sig


def _read_secret(path: Path) -> str:
    """A key file's text; refused when group or others may read it (a key is never left readable)."""
    mode = path.stat().st_mode
    if mode & SECRET_MODE_MASK:
        raise UsageError(f"{path} is readable by other users (mode {mode & 0o777:o})", f"chmod 600 {path}")
    return path.read_text()


class Keys:
    """The issuer (P-256) and log (Ed25519) keys of one glint home."""

    def __init__(self, issuer_d: int | None, log_signer: Signer, home: Path | None = None,
                 external: ExternalSigner | None = None):
        if external is None and not (isinstance(issuer_d, int) and 0 < issuer_d < P256_N):
            raise UsageError("issuer private key is out of range")
        self.issuer_d = issuer_d
        self.log_signer = log_signer
        self.home = home
        self.external = external
        if external is not None:
            self.issuer_public = external.public
        else:
            assert issuer_d is not None
            self.issuer_public = public_key(issuer_d)

    def __repr__(self) -> str:  # never the private keys: reprs end up in logs and tracebacks
        return f"Keys(origin={self.origin!r}, issuer={self.issuer_public.hex()[:18]}...)"

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
        import shlex

        kdir = glint_home(home) / "keys"
        ipath, lpath = kdir / ISSUER_FILE, kdir / LOG_FILE
        spath = kdir / SIGNER_FILE
        if spath.exists() and lpath.exists():
            try:
                pub = bytes.fromhex((kdir / ISSUER_PUB_FILE).read_text().strip())
            except (OSError, ValueError):
                raise UsageError(f"{spath} needs the issuer's public key in {kdir / ISSUER_PUB_FILE} (SEC1 hex)") from None
            ext = ExternalSigner(shlex.split(spath.read_text()), pub)
            return cls(None, Signer.from_skey(_read_secret(lpath)), glint_home(home), external=ext)
        if not ipath.exists() or not lpath.exists():
            if not create:
                raise UsageError(f"no ledger keys in {kdir}", "create them with 'glint cert keys'")
            keys = cls.generate(origin)
            keys.home = glint_home(home)
            keys.save()
            _log.info("created issuer and log keys in %s (log origin %s)", kdir, keys.origin)
            return keys
        try:
            d = int(_read_secret(ipath).strip(), 16)
        except ValueError:
            raise UsageError(f"{ipath} is not a hex P-256 private key") from None
        return cls(d, Signer.from_skey(_read_secret(lpath)), glint_home(home))

    def save(self) -> None:
        if self.home is None:
            raise UsageError("these keys belong to no glint home", "load or create them with Keys.load(home)")
        kdir = self.home / "keys"
        kdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.external is not None or self.issuer_d is None:
            raise UsageError("the issuer key is held by an external signer: nothing to save")
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
        if self.external is not None:
            return self.external.sign_digest(h)
        assert self.issuer_d is not None
        return sign_digest(self.issuer_d, h)
