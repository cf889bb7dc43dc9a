"""C2SP signed notes with Ed25519 keys, and tlog checkpoints carried in them.

Formats (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint):

- verifier key: ``<name>+<key id, 8 hex>+base64(0x01 || 32-byte public key)``
- signer key:   ``PRIVATE+KEY+<name>+<key id>+base64(0x01 || 32-byte seed)``
- key id:       first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)
- signed note:  the text (ending in a newline), an empty line, then one line per
  signature: ``— <name> base64(key id || 64-byte signature)``; the signature covers the text.
- checkpoint text: origin line, decimal tree size, base64 root hash, optional extension lines.

Ed25519 comes from pyca/cryptography (OpenSSL, glint.crypto); python-ecdsa cross-checks it in the tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from glint import crypto
from glint.errors import UsageError, VerificationError

ALG_ED25519 = 0x01
KEY_ID_SIZE = 4
SIG_SIZE = 64
SIG_PREFIX = "\u2014 "  # em dash and space
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str, error=VerificationError) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise error(f"{what} is not valid base64") from None


def _check_name(name: str, error=UsageError) -> str:
    if not name or any(c in name for c in "+ \n\t") or not name.isprintable():
        raise error(f"key name {name!r} is empty or contains '+', spaces or control characters")
    return name


def key_id(name: str, public: bytes) -> bytes:
    """Signed-note key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:KEY_ID_SIZE]


VERIFIED_MEMO = 256  # successful note checks a verifier remembers (oldest dropped first)


class Verifier:
    """An Ed25519 note verifier parsed from its key string."""

    def __init__(self, vkey: str):
        text = vkey.strip()
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise UsageError("log key is not a signed-note verifier key (name+keyid+base64)",
                             "export it with 'glint cert keys'")
        name, kid_hex, b64 = parts
        _check_name(name)
        raw = _unb64(b64, "verifier key", UsageError)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise UsageError("verifier key is not an Ed25519 key (want 0x01 and 32 bytes)")
        self.name = name
        self.public = raw[1:]
        self.key_id = key_id(name, self.public)
        if kid_hex != self.key_id.hex():
            raise UsageError(f"verifier key id {kid_hex} does not match its key ({self.key_id.hex()})")
        try:
            crypto.check_ed25519_public(self.public)
        except UsageError:
            raise UsageError("verifier key is not a valid Ed25519 point") from None
        self.vkey = text
        self._verified: dict[bytes, None] = {}

    def verify(self, msg: bytes, sig: bytes) -> bool:
        # A host re-checks the same checkpoint note several times per certificate
        # (python-ecdsa Ed25519 cost ~8 ms, OpenSSL ~0.1 ms); remember digests of (msg, sig) pairs that
        # verified under this key. Only successes are remembered, so nothing that failed
        # is ever accepted, and a fresh process (offline verification) checks everything.
        memo = _memo_key(msg, sig)
        if memo in self._verified:
            return True
        ok = crypto.ed25519_verify(self.public, msg, sig)
        if ok:
            self._remember(memo)
        return ok

    def _remember(self, memo: bytes) -> None:
        if len(self._verified) >= VERIFIED_MEMO:
            self._verified.pop(next(iter(self._verified)))
        self._verified[memo] = None

    def vouch(self, msg: bytes, sig: bytes, signer: "Signer") -> None:
        """Remember a signature that ``signer`` (this very key) has just made over ``msg``."""
        if signer.name == self.name and signer.public == self.public:
            self._remember(_memo_key(msg, sig))


def _memo_key(msg: bytes, sig: bytes) -> bytes:
    return hashlib.sha256(len(msg).to_bytes(8, "big") + msg + sig).digest()


class Signer:
    """An Ed25519 note signer (seed kept in memory only)."""

    def __init__(self, name: str, seed: bytes):
        _check_name(name)
        if len(seed) != 32:
            raise UsageError("Ed25519 seed must be 32 bytes")
        self.name = name
        self.public = crypto.ed25519_public(seed)
        self.key_id = key_id(name, self.public)
        self._seed = bytes(seed)
        self._vkey = f"{name}+{self.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + self.public)}"

    def __repr__(self) -> str:  # never the seed: reprs end up in logs and tracebacks
        return f"Signer({self.name!r}, key id {self.key_id.hex()})"

    @classmethod
    def generate(cls, name: str) -> "Signer":
        import secrets

        return cls(name, secrets.token_bytes(32))

    @classmethod
    def from_skey(cls, skey: str) -> "Signer":
        """Parse ``PRIVATE+KEY+<name>+<keyid>+base64(0x01 || seed)``."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise UsageError("not a signed-note signer key (PRIVATE+KEY+name+keyid+base64)")
        raw = _unb64(parts[4], "signer key", UsageError)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise UsageError("signer key is not an Ed25519 key")
        signer = cls(parts[2], raw[1:])
        if parts[3] != signer.key_id.hex():
            raise UsageError("signer key id does not match its key")
        return signer

    def skey(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + self._seed)}"

    def vkey(self) -> str:
        return self._vkey  # made once: a signer's name and key never change (a checkpoint asks it twice)

    def sign(self, text: str, vouch_to: "Verifier | None" = None) -> str:
        """Return the signed note: text, blank line, one signature line.

        ``vouch_to``: a verifier of this same key that should not spend another
        Ed25519 verification on the signature just made (see Verifier.vouch).
        """
        body = _check_text(text)
        msg = body.encode("utf-8")
        sig = crypto.ed25519_sign(self._seed, msg)
        if vouch_to is not None:
            vouch_to.vouch(msg, sig, self)
        return f"{body}\n{SIG_PREFIX}{self.name} {_b64(self.key_id + sig)}\n"


def _check_text(text: str) -> str:
    if not text.endswith("\n") or "\n\n" in text or "\r" in text:
        raise UsageError("note text must end in one newline and contain no blank lines")
    return text


def open_note(note: str, verifier: Verifier) -> str:
    """Verify a signed note with ``verifier`` and return its text.

    Fails closed: no signature by this key (name and key id), a bad signature,
    or a malformed note raise VerificationError with the reason. Signatures by
    other keys are ignored, as the format requires.
    """
    if not isinstance(note, str) or len(note.encode("utf-8", "replace")) > MAX_NOTE_BYTES:
        raise VerificationError("signed note is missing or too large")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise VerificationError("signed note has no signature block")
    text, sigblock = note[: cut + 1], note[cut + 2:]
    if not sigblock.endswith("\n"):
        raise VerificationError("signed note does not end in a newline")
    lines = sigblock[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError("signed note has too many signatures")
    found = False
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise VerificationError("malformed signature line in signed note")
        name, _, b64 = line[len(SIG_PREFIX):].partition(" ")
        raw = _unb64(b64, "note signature")
        if len(raw) < KEY_ID_SIZE:
            raise VerificationError("note signature is too short")
        if name != verifier.name or raw[:KEY_ID_SIZE] != verifier.key_id:
            continue
        if len(raw) != KEY_ID_SIZE + SIG_SIZE or not verifier.verify(text.encode("utf-8"), raw[KEY_ID_SIZE:]):
            raise VerificationError(f"note signature by {verifier.name} does not verify")
        found = True
    if not found:
        raise VerificationError(f"note is not signed by the log key {verifier.name}+{verifier.key_id.hex()}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise VerificationError("checkpoint has fewer than three lines")
        origin, size_s, root_s = lines[0], lines[1], lines[2]
        if not origin:
            raise VerificationError("checkpoint has an empty origin")
        if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")) or len(size_s) > 20:
            raise VerificationError(f"checkpoint size {size_s!r} is not a decimal number")
        root = _unb64(root_s, "checkpoint root")
        if len(root) != 32:
            raise VerificationError("checkpoint root is not a 32-byte hash")
        return cls(origin, int(size_s), root, tuple(lines[3:-1]))


def sign_checkpoint(cp: Checkpoint, signer: Signer, vouch_to: Verifier | None = None) -> str:
    return signer.sign(cp.text(), vouch_to)


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint and parse it; checks the origin when one is given."""
    cp = Checkpoint.parse(open_note(note, verifier))
    if origin is not None and cp.origin != origin:
        raise VerificationError(f"checkpoint origin {cp.origin!r} is not the log {origin!r}")
    return cp
