"""The device signing key and device id: generated on the device, only the public key leaves.

The private key is a P-256 scalar derived (glintcore.p256.private_key_from_entropy)
from at least 32 bytes of the board's hardware/OS entropy (board.entropy), optionally
mixed with host-supplied bytes (which can add but never replace device entropy).
It is stored as a CRC-checked record (store.py) in a file, or in ESP32 NVS where
board.json says ``"keystore": "nvs"``. No message ever returns it.
"""

import hashlib

from micropython import const

from glintcore import p256
from glintfw import store

SEED_LEN = const(32)
DEVICE_ID_LEN = const(8)


class KeyExists(Exception):
    pass


class _FileBackend:
    def __init__(self, path):
        self.path = path

    def load(self):
        return store.read_record(self.path)

    def save(self, data):
        store.write_record(self.path, data)


class _NvsBackend:  # pragma: no cover - ESP32 only
    def __init__(self, namespace="glint", key="sk"):
        import esp32

        self.nvs = esp32.NVS(namespace)
        self.key = key

    def load(self):
        buf = bytearray(36)
        try:
            n = self.nvs.get_blob(self.key, buf)
        except OSError:
            return None
        data = bytes(buf[: n - 4])
        if store.crc32(data) != int.from_bytes(buf[n - 4 : n], "little"):
            return None
        return data

    def save(self, data):
        buf = bytearray(data)
        buf.extend(store.crc32(data).to_bytes(4, "little"))
        self.nvs.set_blob(self.key, buf)
        self.nvs.commit()


def _hw_unique_id():
    try:
        import machine

        uid = machine.unique_id()
        return bytes(uid) if uid else None
    except Exception:  # no machine module (WebAssembly, CPython) or no chip id
        return None


class KeyStore:
    def __init__(self, directory, entropy, backend="file"):
        """``entropy(n)`` returns n bytes from a strong source (board.entropy)."""
        self.dir = directory
        self.entropy = entropy
        if backend == "nvs":
            self._key = _NvsBackend()
        else:
            self._key = _FileBackend(store.join(directory, "key"))
        self._d = None
        self._pub = None
        self._id = None

    def _random(self, n):
        b = bytes(self.entropy(n))
        if len(b) != n:
            raise OSError("entropy source returned %d of %d bytes" % (len(b), n))
        return b

    def device_id(self):
        """8 bytes, stable for the life of the device (from the chip id, else random at first boot)."""
        if self._id is None:
            path = store.join(self.dir, "device_id")
            data = store.read_record(path)
            if data is None or len(data) != DEVICE_ID_LEN:
                uid = _hw_unique_id()
                if uid:
                    data = hashlib.sha256(b"glint/device-id/v1" + uid).digest()[:DEVICE_ID_LEN]
                else:
                    data = self._random(DEVICE_ID_LEN)
                store.write_record(path, data)
            self._id = bytes(data)
        return self._id

    def _load(self):
        if self._d is None:
            data = self._key.load()
            if data is not None and len(data) == p256.SCALAR_SIZE:
                self._d = p256.private_key_from_bytes(data)
        return self._d

    def has_key(self):
        return self._load() is not None

    def public_key(self):
        """65-byte SEC1 public key, or None before keygen."""
        if self._pub is None and self._load() is not None:
            self._pub = p256.public_key(self._d)
        return self._pub

    def private_key(self):
        """For the signer inside the firmware only; never sent over the link."""
        return self._load()

    def generate(self, force=False, extra=None):
        """Create and persist a new key; refuse (KeyExists) to replace one unless ``force``."""
        if self.has_key() and not force:
            raise KeyExists("device already has a key")
        seed = self._random(SEED_LEN)
        if extra:
            seed = seed + hashlib.sha256(bytes(extra)).digest()
        d = p256.private_key_from_entropy(seed)
        self._key.save(p256.private_key_to_bytes(d))
        self._d = d
        self._pub = None
        return self.public_key()
