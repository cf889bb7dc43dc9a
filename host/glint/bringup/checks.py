"""Pass/fail checks of a scanner's parts: indicators, the device key, storage, the self-test.

Each check returns a Check(name, ok, lines); nothing here prints. The indicator check
needs a person to look at the LED/buzzer: ``confirm(pattern, description) -> bool``
asks them (the CLI prompts; tests and ``--yes`` accept what the device acknowledged).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from glint.bringup.frames import config_value
from glint.errors import DeviceError
from glintcore import p256, proto

# glintfw.indicate.PATTERNS, with what the operator should see (tests check the lists agree)
PATTERNS = {
    "ready": "steady on",
    "capturing": "fast blinking, then on",
    "good": "long flash (+ one beep), then on",
    "retry": "three short blinks (+ two beeps), then on",
    "error": "slow blinking (+ long beep), then off",
    "off": "off",
}
SIGNTEST_BYTES = 32
PATTERN_HOLD_S = 1.5  # long enough to see the slowest pattern (error: 2 s of blinking) start


@dataclass
class Check:
    name: str
    ok: bool
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)


def check_indicators(scanner, confirm=None, hold: float = PATTERN_HOLD_S) -> Check:
    """Play every pattern; ``confirm(name, description)`` says whether it looked right."""
    lines, ok = [], True
    for name, desc in PATTERNS.items():
        try:
            scanner.indicate(name)
        except DeviceError as e:
            lines.append(f"{name:10s} REFUSED: {e.oneline()}")
            ok = False
            continue
        seen = True
        if confirm is not None:
            seen = bool(confirm(name, desc))
        elif hold > 0:
            time.sleep(hold)
        lines.append(f"{name:10s} {'ok' if seen else 'NOT SEEN'} ({desc})")
        ok = ok and seen
    try:  # a pattern the firmware does not know must be refused, not played
        scanner.indicate("no-such-pattern")
        lines.append("unknown pattern ACCEPTED (should be refused)")
        ok = False
    except DeviceError as e:
        if getattr(e, "status", None) != proto.ST_BAD_ARG:
            raise
    scanner.indicate("ready")
    return Check("indicators", ok, lines)


def check_signing(scanner) -> Check:
    """The device signs a random challenge with its key; the host verifies it, and a tampered copy fails."""
    info = scanner.info(refresh=True)
    pub = info.get("pubkey")
    if not isinstance(pub, (bytes, bytearray)) or len(pub) != 65:
        return Check("key", False, ["no device key yet: glint fw provision PORT"])
    challenge = secrets.token_bytes(SIGNTEST_BYTES)
    t0 = time.monotonic()
    body = scanner.request(proto.MSG_SIGNTEST, {"message": challenge}).body
    ms = 1000 * (time.monotonic() - t0)
    prefix = bytes(body.get("prefix", b""))
    sig = bytes(body.get("signature", b""))
    lines = []
    good = bool(prefix) and p256.verify(bytes(pub), prefix + challenge, sig)
    lines.append(f"signature over a fresh challenge: {'verifies' if good else 'DOES NOT VERIFY'} ({ms:.0f} ms round trip)")
    forged = bytearray(challenge)
    forged[0] ^= 1
    tamper_ok = not p256.verify(bytes(pub), prefix + bytes(forged), sig)
    lines.append(f"tampered challenge: {'rejected' if tamper_ok else 'ACCEPTED'}")
    separated = prefix.startswith(b"glint/")  # a signed test message can never parse as a scan
    lines.append(f"domain separation prefix {prefix!r}: {'ok' if separated else 'MISSING'}")
    return Check("key", good and tamper_ok and separated, lines,
                 {"device_id": bytes(info.get("device_id", b"")).hex(), "sign_ms": round(ms, 1)})


def check_storage(scanner) -> Check:
    """Write/read probe (device self-test) and a config round trip that restores the old value."""
    lines, ok = [], True
    st = scanner.selftest().get("storage") or {}
    ok = bool(st.get("ok"))
    lines.append(f"record write/read: {'ok' if ok else 'FAILED ' + str(st.get('detail', ''))}"
                 + (f", {st.get('free')} bytes free" if st.get("free") is not None else ""))
    old = config_value(scanner, "name")
    probe = "bringup-" + secrets.token_hex(4)
    try:
        scanner.config_set("name", probe)
        back = config_value(scanner, "name")
        same = back == probe
    finally:
        scanner.config_set("name", old if isinstance(old, str) else "")
    lines.append(f"config round trip: {'ok' if same else 'FAILED (read back %r)' % (back,)}")
    info = scanner.info(refresh=True)
    lines.append(f"spool: {info.get('spool')} stored, {info.get('spool_free')} free; counter {info.get('counter')}")
    return Check("storage", ok and same, lines, {"free": st.get("free")})


def check_selftest(scanner, require_key: bool = False) -> Check:
    """The device's own self-test (camera, frame, key, storage)."""
    from glint.fw.deploy import selftest_verdict

    res = scanner.selftest()
    ok, lines = selftest_verdict(res)
    if require_key and not (res.get("key") or {}).get("ok"):
        ok = False
    return Check("selftest", ok, [ln.strip() for ln in lines], res)


__all__ = ["Check", "check_indicators", "check_signing", "check_storage", "check_selftest", "PATTERNS"]
