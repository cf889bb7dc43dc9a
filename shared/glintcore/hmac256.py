"""HMAC-SHA256 (RFC 2104) on top of hashlib.sha256 alone.

MicroPython has hashlib.sha256 but no hmac module, and its hash objects have no
copy(); this module gives both platforms the same small implementation, so the
RFC 6979 nonces it feeds are byte-identical on the device and on the host.
"""

import hashlib

BLOCK_SIZE = 64  # SHA-256 block size in bytes
DIGEST_SIZE = 32

# The pads as 512-bit integers: one XOR each instead of a 64-step byte loop (fast on MicroPython).
_IPAD = int.from_bytes(b"\x36" * BLOCK_SIZE, "big")
_OPAD = int.from_bytes(b"\x5c" * BLOCK_SIZE, "big")


def sha256(data):
    """SHA-256 digest (32 bytes) of a bytes-like object."""
    return hashlib.sha256(data).digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256 of ``msg`` under ``key`` (bytes-like, any lengths); returns 32 bytes."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    k = int.from_bytes(bytes(key) + bytes(BLOCK_SIZE - len(key)), "big")
    inner = hashlib.sha256((k ^ _IPAD).to_bytes(BLOCK_SIZE, "big"))
    inner.update(msg)
    outer = hashlib.sha256((k ^ _OPAD).to_bytes(BLOCK_SIZE, "big"))
    outer.update(inner.digest())
    return outer.digest()
