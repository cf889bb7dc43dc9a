"""The checks every incoming scan passes before anything trusts it (used by every workflow).

``check_scan(registry, signed)`` accepts a device-signed scan (COSE_Sign1 over a scan
descriptor) only if, in this order:

1. it decodes as COSE_Sign1 and its ``kid`` names a provisioned device;
2. the device is not revoked;
3. the ES256 signature verifies with that device's public key;
4. the descriptor is valid and names the same device;
5. the firmware is allowed by the policy (``[firmware]`` in <home>/config.toml:
   ``min_version = "0.4.0"``, ``allow = ["0.4.0", ...]``);
6. it is fresh:
   * an online scan carries a host nonce that this host issued to this device, that has
     not expired and was never used; it is consumed atomically with the acceptance;
     its counter must exceed every counter accepted from the device;
   * an offline (spooled) scan has no nonce; its counter must exceed every spooled
     counter accepted from the device and never have been seen;
   * ``relayed=True`` (the HTTP API, glint.server.admit): an online scan whose nonce
     another glint host issued and checked is accepted when that nonce was never seen
     here (it is recorded as used); a nonce this host issued is checked as above;
     the counter order applies either way;
7. these exact bytes were never accepted before.

A refusal is a ScanRefused (a VerificationError) with a one-line reason and a
``.reason`` code. Replays and counter anomalies (a reused or decreasing counter, which
a cloned or replayed scanner produces) are also recorded as alerts in the registry.
The acceptance and the nonce consumption are one SQLite transaction: two hosts on one
glint.db never accept the same nonce or counter twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass

from glint.crypto import es256_verify_digest
from glint.errors import VerificationError
from glint.registry import Device, Registry, device_hex
from glintcore import cose
from glintcore import descriptor as D
from glintcore.errors import CryptoError, DecodeError, GlintError

_log = logging.getLogger(__name__)

MODE_ONLINE = "online"
MODE_SPOOLED = "spooled"

# .reason codes of ScanRefused
R_MALFORMED = "malformed"
R_UNKNOWN_DEVICE = "unknown-device"
R_REVOKED = "revoked"
R_SIGNATURE = "bad-signature"
R_TAMPERED = "tampered"
R_FIRMWARE = "firmware-policy"
R_NONCE_UNKNOWN = "nonce-unknown"
R_NONCE_EXPIRED = "nonce-expired"
R_NONCE_REUSED = "replay"
R_COUNTER = "counter"
R_DUPLICATE = "duplicate"
R_MODE = "mode"


class ScanRefused(VerificationError):
    """A scan failed a check; ``reason`` is one of the R_* codes, ``device_id`` when known."""

    def __init__(self, reason: str, msg: str, hint: str | None = None, device_id: str | None = None):
        super().__init__(msg, hint)
        self.reason = reason
        self.device_id = device_id


@dataclass(frozen=True)
class CheckedScan:
    """A scan that passed every check and is logged in the registry (``scan_id``)."""

    scan_id: int
    signed: bytes
    scan_hash: bytes
    device: Device
    counter: int
    nonce: bytes | None
    mode: str
    payload: bytes  # the descriptor bytes
    fields: dict  # the decoded descriptor (glintcore.descriptor K_* keys)

    @property
    def device_id(self) -> str:
        return self.device.device_id


@dataclass
class FirmwarePolicy:
    """Which firmware versions may sign scans: a minimum and/or an explicit allow-list."""

    min_version: str | None = None
    allow: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, section: dict) -> "FirmwarePolicy":
        allow = section.get("allow")
        return cls(section.get("min_version"), tuple(allow) if allow else None)

    def check(self, fw: str) -> str | None:
        """None if ``fw`` is allowed, else the reason."""
        if self.allow is not None and fw not in self.allow:
            return f"firmware {fw} is not in the allow-list ({', '.join(self.allow)})"
        if self.min_version and _version(fw) < _version(self.min_version):
            return f"firmware {fw} is older than the minimum {self.min_version}"
        return None


def _version(v: str) -> tuple:
    parts = []
    for p in str(v).split("."):
        num = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(num) if num else 0)
    return tuple(parts)


def scan_digest(signed: bytes) -> bytes:
    return hashlib.sha256(signed).digest()


def check_scan(reg: Registry, signed: bytes, policy: FirmwarePolicy | None = None,
               expect_mode: str | None = None, expect_device: str | None = None,
               now: float | None = None, relayed: bool = False, sync_later: bool = False) -> CheckedScan:
    """Run every check on ``signed`` and log it as accepted; raise ScanRefused otherwise.

    ``expect_mode``: MODE_ONLINE refuses a scan without a nonce (a spooled scan pushed
    into a live session), MODE_SPOOLED refuses one with a nonce. ``expect_device``:
    the device the host asked (a scan from another key is refused).
    ``sync_later``: the acceptance is committed without waiting for the disk
    (``Registry.transaction(sync_later=True)``); the caller must ``reg.wait_durable()``
    before it acts on the scan (glint.workflows.scan.HostSession.process does).
    """
    now = time.time() if now is None else now
    signed = bytes(signed)
    digest = scan_digest(signed)
    msg = _decode_strict(signed)
    kid = msg.protected.get(4, msg.unprotected.get(4)) if isinstance(msg.protected, dict) else None
    if not isinstance(kid, (bytes, bytearray)) or len(kid) != 8:
        raise ScanRefused(R_MALFORMED, "signed scan has no 8-byte key id (kid)")
    did = device_hex(bytes(kid))
    dev = reg.device(did)
    if dev is None:
        reg.alert(R_UNKNOWN_DEVICE, "scan from a device that was never provisioned", did, digest)
        raise ScanRefused(R_UNKNOWN_DEVICE, f"scan from unknown device {did}: it was never provisioned here",
                          "provision it with 'glint device provision PORT'", did)
    if dev.revoked:
        reg.alert(R_REVOKED, "scan from a revoked device", did, digest)
        raise ScanRefused(R_REVOKED, f"scan from revoked device {did} ({dev.revoke_reason})",
                          "a revoked scanner stays refused; provision a new one", did)
    if expect_device is not None and device_hex(expect_device) != did:
        raise ScanRefused(R_SIGNATURE, f"scan signed by device {did}, not by the scanner asked "
                          f"({device_hex(expect_device)})", device_id=did)
    try:
        payload = cose.verify_decoded(msg, dev.pubkey, verify_digest=es256_verify_digest)
    except (CryptoError, DecodeError) as e:
        raise ScanRefused(R_SIGNATURE, f"signature of the scan does not verify with device {did}'s key ({e})",
                          "the scan was altered on the way or signed by another key", did) from None
    try:
        fields = D.decode(payload)
    except (DecodeError, GlintError) as e:
        raise ScanRefused(R_TAMPERED, f"signed descriptor is invalid: {e}", device_id=did) from None
    if device_hex(fields[D.K_DEVICE]) != did:
        raise ScanRefused(R_TAMPERED, "descriptor names another device than its signature", device_id=did)
    problem = (policy or FirmwarePolicy()).check(fields[D.K_FW])
    if problem:
        raise ScanRefused(R_FIRMWARE, f"scan refused by the firmware policy: {problem}",
                          "update the scanner: glint fw deploy", did)
    nonce = fields.get(D.K_NONCE)
    mode = MODE_ONLINE if nonce is not None else MODE_SPOOLED
    if expect_mode is not None and mode != expect_mode:
        raise ScanRefused(R_MODE, f"expected an {expect_mode} scan, got an {mode} one", device_id=did)
    counter = fields[D.K_COUNTER]
    return _accept(reg, signed, digest, dev, counter, nonce, mode, payload, fields, now, relayed, sync_later)


def _decode_strict(signed: bytes):
    """COSE_Sign1 in the one form a glint scanner signs: tagged, deterministic, no unprotected headers.

    Any other spelling of a signed scan (untagged, extra unprotected headers) verifies the
    same signature under other bytes, so it would count as a new scan: refused.
    """
    try:
        msg = cose.decode1(signed)
    except (DecodeError, CryptoError) as e:
        raise ScanRefused(R_MALFORMED, f"not a signed scan: {e}") from None
    if signed[:1] != b"\xd2":
        raise ScanRefused(R_MALFORMED, "not a signed scan: not a tagged COSE_Sign1 (tag 18)")
    if msg.unprotected:
        raise ScanRefused(R_MALFORMED, "not a signed scan: unprotected headers are not allowed")
    return msg


def verify_scan_signature(signed: bytes, pubkey: bytes | None = None, reg: Registry | None = None) -> bytes:
    """The descriptor of a signed scan from a file, after its signature and device checks.

    For scans at rest (``glint verify/enroll/identify FILE``): the key is ``pubkey``, else
    the provisioned device named by the scan's kid in ``reg``. Nothing is consumed and
    freshness is not checked (a file is not a live scan). Raises ScanRefused.
    """
    msg = _decode_strict(bytes(signed))
    kid = msg.protected.get(4, msg.unprotected.get(4)) if isinstance(msg.protected, dict) else None
    did = device_hex(bytes(kid)) if isinstance(kid, (bytes, bytearray)) and len(kid) == 8 else None
    if pubkey is None:
        dev = reg.device(did) if (reg is not None and did) else None
        if dev is None:
            raise ScanRefused(R_UNKNOWN_DEVICE, f"signed scan from {did or 'an unnamed device'}: no key to check "
                              "its signature with", "give --pubkey KEY, a --home where the device is provisioned, "
                              "or --unchecked to match it unverified", did)
        if dev.revoked:
            raise ScanRefused(R_REVOKED, f"scan from revoked device {did} ({dev.revoke_reason})", device_id=did)
        pubkey = dev.pubkey
    try:
        payload = cose.verify_decoded(msg, pubkey, verify_digest=es256_verify_digest)
        fields = D.decode(payload)
    except (CryptoError, DecodeError, GlintError) as e:
        raise ScanRefused(R_SIGNATURE, f"signed scan does not verify: {e}", device_id=did) from None
    if did is not None and device_hex(fields[D.K_DEVICE]) != did:
        raise ScanRefused(R_TAMPERED, "descriptor names another device than its signature", device_id=did)
    return payload


def _accept(reg, signed, digest, dev, counter, nonce, mode, payload, fields, now, relayed=False,
            sync_later=False) -> CheckedScan:
    did = dev.device_id
    refusal: ScanRefused | None = None
    alert: tuple[str, str] | None = None
    with (reg.transaction(sync_later=True) if sync_later else reg.transaction()) as c:
        seen = c.execute("SELECT received_at FROM scans WHERE scan_hash=?", (digest,)).fetchone()
        row = c.execute("SELECT * FROM devices WHERE device_id=?", (did,)).fetchone()
        now_dev = Device(*row)  # as of this transaction (the caller's read came before it)
        last_counter, last_spooled = now_dev.last_counter, now_dev.last_spooled
        used_counter = c.execute("SELECT 1 FROM scans WHERE device_id=? AND counter=?", (did, counter)).fetchone()
        if seen:
            refusal = ScanRefused(R_NONCE_REUSED if mode == MODE_ONLINE else R_DUPLICATE,
                                  f"replayed scan: these exact bytes were accepted at {_when(seen[0])}",
                                  "an old signed scan was sent again", did)
            alert = ("replay", f"scan counter {counter} sent again")
        elif mode == MODE_ONLINE:
            n = c.execute("SELECT device_id, expires_at, used_at FROM nonces WHERE nonce=?", (bytes(nonce),)).fetchone()
            if n is None and relayed:
                # Issued and checked by the relaying host: never seen here, so record it as used.
                c.execute("INSERT INTO nonces(nonce, device_id, issued_at, expires_at, used_at) VALUES (?,?,?,?,?)",
                          (bytes(nonce), did, now, now, now))
                n = (did, now, None)
            if n is None or n[0] != did:
                refusal = ScanRefused(R_NONCE_UNKNOWN, "scan nonce was not issued by this host for this device",
                                      "a scan must answer a nonce this host just issued", did)
                alert = ("replay", f"unknown nonce in scan counter {counter}")
            elif n[2] is not None:
                refusal = ScanRefused(R_NONCE_REUSED, f"replayed scan: its nonce was already used at {_when(n[2])}",
                                      "each nonce is good for one scan", did)
                alert = ("replay", f"nonce reused by scan counter {counter}")
            elif n[1] < now:
                c.execute("UPDATE nonces SET used_at=? WHERE nonce=?", (now, bytes(nonce)))
                refusal = ScanRefused(R_NONCE_EXPIRED, f"scan nonce expired {now - n[1]:.0f} s ago",
                                      "scan again: the host issues a new nonce", did)
            else:
                c.execute("UPDATE nonces SET used_at=? WHERE nonce=? AND used_at IS NULL", (now, bytes(nonce)))
                if used_counter or counter <= last_counter:
                    refusal = ScanRefused(R_COUNTER, f"scan counter {counter} is not above the last one "
                                          f"({last_counter}): possible cloned or replayed scanner",
                                          "the device was recorded in the alerts; check it", did)
                    alert = ("clone", f"online scan counter {counter} <= last accepted {last_counter}")
        else:
            if used_counter or counter <= last_spooled:
                refusal = ScanRefused(R_COUNTER, f"spooled scan counter {counter} is not above the last spooled "
                                      f"one ({last_spooled}): possible cloned or replayed scanner",
                                      "the device was recorded in the alerts; check it", did)
                alert = ("clone", f"spooled scan counter {counter} <= last accepted {max(last_spooled, 0)}"
                         + (" (counter reused)" if used_counter else ""))
        if alert:
            c.execute("INSERT INTO alerts(at, device_id, kind, detail, scan_hash) VALUES (?,?,?,?,?)",
                      (now, did, alert[0], alert[1], digest))
        if refusal is None:
            cur = c.execute("INSERT INTO scans(scan_hash, device_id, counter, mode, received_at) VALUES (?,?,?,?,?)",
                            (digest, did, counter, mode, now))
            scan_id = cur.lastrowid
            c.execute("UPDATE devices SET last_counter=MAX(last_counter, ?), last_spooled=CASE WHEN ? THEN "
                      "MAX(last_spooled, ?) ELSE last_spooled END WHERE device_id=?",
                      (counter, mode == MODE_SPOOLED, counter, did))
    if refusal is not None:
        if alert:
            _log.info("device %s: %s", did, alert[1])
        raise refusal
    # The device as the transaction left it (no read back: the counters it set are known).
    after = dataclasses.replace(now_dev, last_counter=max(last_counter, counter),
                                last_spooled=max(last_spooled, counter) if mode == MODE_SPOOLED else last_spooled)
    return CheckedScan(scan_id, signed, digest, after, counter, None if nonce is None else bytes(nonce),
                       mode, payload, fields)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
