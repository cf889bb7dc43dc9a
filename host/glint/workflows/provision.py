"""Provisioning: the device makes its key, the host records the public key with the device's identity."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from glint import crypto
from glint.errors import DeviceError, VerificationError
from glint.link import Scanner
from glint.registry import Device, Registry, device_hex
from glintcore import p256, proto

_log = logging.getLogger(__name__)

HOST_ENTROPY_BYTES = 32  # mixed into the device's own entropy: a weak device RNG alone cannot pick the key


@dataclass(frozen=True)
class Provisioned:
    device: Device
    new_key: bool  # False when the device already had a key and it was adopted


def provision(reg: Registry, scanner: Scanner, label: str | None = None, force: bool = False) -> Provisioned:
    """Have the scanner generate its key on the device (or adopt the key it has) and register it.

    The private key never leaves the device. Proof of possession: the device signs a
    random host challenge (MSG_SIGNTEST, domain-separated so it can never be a scan)
    and the host checks it against the public key before recording anything.
    ``force`` makes the device replace an existing key (the old key is retired).
    """
    from glint.keys import maintainer_key

    info = scanner.info(refresh=True)
    did = device_hex(info["device_id"])
    new_key = False
    pub = info.get("pubkey")
    if pub is None or force:
        if force and info.get("locked"):
            # re-keying a locked scanner needs the maintainer's signed challenge (or one line saying why not)
            from glint.unlock import unlock_for

            unlock_for(scanner, reg.path.parent if reg.path is not None else None, "re-keying (--force)")
        maint = maintainer_key(reg.path.parent) if reg.path is not None else None
        known = reg.device(did)
        floor = known.last_counter + 1 if known is not None and known.last_counter >= 0 else None
        pub = scanner.keygen(force=force, entropy=secrets.token_bytes(HOST_ENTROPY_BYTES),
                             maintainer=None if maint is None else crypto.p256_public(maint), counter_floor=floor)
        new_key = True
    pub = bytes(pub)
    challenge = secrets.token_bytes(16)
    body = scanner.request(proto.MSG_SIGNTEST, {"message": challenge}).body
    prefix = bytes(body.get("prefix", b""))
    if not prefix or not p256.verify(pub, prefix + challenge, bytes(body.get("signature", b""))):
        raise VerificationError(f"device {did} could not prove it holds the key it reported",
                                "the scanner may be faulty or not genuine; do not provision it")
    if not isinstance(info.get("board"), str):
        raise DeviceError("scanner did not report its board", hint="update its firmware")
    dev = reg.add_device(did, pub, info.get("board"), info.get("fw"), label)
    _log.info("provisioned device %s (%s, fw %s)%s", did, dev.board, dev.fw, " with a new key" if new_key else "")
    return Provisioned(dev, new_key)
