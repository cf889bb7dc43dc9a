"""The scanner lock: a provisioned scanner hands over nothing that could reveal or replace its key.

Locked (the default once the device has a key): the REPL handover (MSG_REPL and the
``\\r\\x03`` interrupt) and MSG_KEYGEN with force are refused (ST_LOCKED). An
unprovisioned scanner stays open for bring-up. Unlocked for the rest of this boot by

- MSG_UNLOCK: the device sends a fresh single-use challenge; the host answers with an
  ES256 signature over UNLOCK_PREFIX || device id || challenge by the maintainer key
  whose public half was provisioned on the device (MSG_KEYGEN ``maintainer``); or
- the board's button held while it boots (physical presence).

The maintainer public key is a CRC-checked record ``maint`` beside the device key.
"""

from micropython import const

from glintcore import p256
from glintcore.proto import UNLOCK_CHALLENGE_LEN, UNLOCK_PREFIX
from glintfw import store

PUB_LEN = const(65)


class Lock:
    def __init__(self, directory, keys, entropy, button_held=False):
        self.path = store.join(directory, "maint")
        self.keys = keys
        self.entropy = entropy
        self._challenge = None
        self._open = bool(button_held)  # physical presence at boot unlocks this boot
        self.by_button = self._open

    @property
    def locked(self):
        return not self._open and self.keys.has_key()

    def maintainer(self):
        data = store.read_record(self.path)
        return bytes(data) if data is not None and len(data) == PUB_LEN else None

    def set_maintainer(self, pub):
        """Record the maintainer's public key (the caller allows it only while unlocked)."""
        p256.decode_point(pub)  # refuses a point not on the curve
        store.write_record(self.path, bytes(pub))

    def challenge(self):
        ch = bytes(self.entropy(UNLOCK_CHALLENGE_LEN))
        if len(ch) != UNLOCK_CHALLENGE_LEN:
            raise OSError("entropy source failed")
        self._challenge = ch
        return ch

    def unlock(self, signature):
        """True (and unlocked for this boot) if ``signature`` answers the pending challenge."""
        ch = self._challenge
        self._challenge = None  # single use, right or wrong
        pub = self.maintainer()
        if ch is None or pub is None:
            return False
        if p256.verify(pub, UNLOCK_PREFIX + self.keys.device_id() + ch, bytes(signature)):
            self._open = True
            return True
        return False
