"""The device signing key and device id: generated on the device, only the public key leaves.

The private key is a P-256 scalar derived (glintcore.p256.private_key_from_entropy)
from at least 32 bytes of the board's hardware/OS entropy (board.entropy), optionally
mixed with host-supplied bytes (which can add but never replace device entropy).
It is stored as a CRC-checked record (store.py) in a file, in ESP32 NVS where board.json says
``"keystore": "nvs"``, or sealed in a file where board.json says ``"keystore": "sealed"`` (the
OpenMV boards, whose storage is the USB drive any PC reads): encrypted and authenticated under
a key derived from the chip's unique id, which is not on the drive (docs/security.md). No
message ever returns it.
"""

import hashlib

from micropython import const

from glintcore import p256
from glintcore.hmac256 import hmac_sha256
from glintfw import store

SEED_LEN = const(32)
DEVICE_ID_LEN = const(8)
SEAL_MAGIC = b"GLS1"
SEAL_NONCE_LEN = const(16)
SEAL_TAG_LEN = const(16)


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


class _SealedBackend:
    """The key file sealed under the chip: KEK = HMAC-SHA256(unique_id, "glint/kek/v1");
    record = "GLS1" || nonce || (key XOR HMAC(KEK, "enc" || nonce)) || HMAC(KEK, "mac" || nonce || ct)[:16].

    A PC that reads the file (the OpenMV USB drive) gets ciphertext; it needs the chip's unique id,
    which only code running on the chip can read. A tag that does not verify reads as no key.
    A plaintext key file from an earlier firmware is read once and sealed in place.
    """

    def __init__(self, path, uid, entropy):
        if not uid:
            raise OSError("no chip unique id to seal the key under (board.json keystore 'sealed')")
        self.path = path
        self.kek = hmac_sha256(bytes(uid), b"glint/kek/v1")
        self.entropy = entropy

    def _stream(self, nonce):
        return hmac_sha256(self.kek, b"glint/seal/enc" + nonce)

    def _tag(self, nonce, ct):
        return hmac_sha256(self.kek, b"glint/seal/mac" + nonce + ct)[:SEAL_TAG_LEN]

    def load(self):
        data = store.read_record(self.path)
        if data is None:
            return None
        if len(data) == p256.SCALAR_SIZE:  # plaintext from an earlier firmware: seal it now
            self.save(data)
            return data
        n = len(SEAL_MAGIC)
        if len(data) != n + SEAL_NONCE_LEN + p256.SCALAR_SIZE + SEAL_TAG_LEN or data[:n] != SEAL_MAGIC:
            return None
        nonce = data[n:n + SEAL_NONCE_LEN]
        ct = data[n + SEAL_NONCE_LEN:n + SEAL_NONCE_LEN + p256.SCALAR_SIZE]
        tag = data[n + SEAL_NONCE_LEN + p256.SCALAR_SIZE:]
        want = self._tag(nonce, ct)
        diff = 0
        for i in range(SEAL_TAG_LEN):
            diff |= want[i] ^ tag[i]
        if diff:
            return None
        ks = self._stream(nonce)
        return bytes(ct[i] ^ ks[i] for i in range(p256.SCALAR_SIZE))

    def save(self, data):
        nonce = bytes(self.entropy(SEAL_NONCE_LEN))
        ks = self._stream(nonce)
        ct = bytes(data[i] ^ ks[i] for i in range(p256.SCALAR_SIZE))
        store.write_record(self.path, SEAL_MAGIC + nonce + ct + self._tag(nonce, ct))


def _hw_unique_id():
    try:
        import machine

        uid = machine.unique_id()
        return bytes(uid) if uid else None
    except Exception:  # no machine module (WebAssembly, CPython) or no chip id
        return None


class KeyStore:
    def __init__(self, directory, entropy, backend="file", uid=None):
        """``entropy(n)`` returns n bytes from a strong source (board.entropy); ``uid`` the chip id to
        seal under (default machine.unique_id()) for backend "sealed"."""
        self.dir = directory
        self.entropy = entropy
        if backend == "nvs":
            self._key = _NvsBackend()
        elif backend == "sealed":
            self._key = _SealedBackend(store.join(directory, "key"), uid or _hw_unique_id(), self._random)
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
