"""The demo behind `glint demo`: a scan is made and signed by the device code, then checked by the host.

Device side: the firmware's spot detector, the scan descriptor and the ES256
signature run on the real MicroPython (WebAssembly port under Node) when it is
installed, else on CPython. Host side: the signature is checked with the device's
public key by two independent verifiers (glintcore and python-ecdsa), the nonce
is checked for freshness, and a tampered and a replayed scan are refused.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import TextIO

import ecdsa
from ecdsa.util import sigdecode_string

from glint.errors import GlintError
from glintcore import cose, descriptor as D
from glintcore.errors import CryptoError, DecodeError

DEVICE_CODE = """
from glintcore import descriptor as D, cose, p256
from glintfw.detect import Detector
def demo_scan(entropy, frame, width, height, counter, nonce):
    key = p256.private_key_from_entropy(entropy)
    device_id = p256.public_key(key)[1:9]
    det = Detector(width, height)
    spots, quality, guidance = det.detect(frame)
    desc = D.encode(D.make(device_id, counter, '0.1.0', 'sim', width, height, quality, spots, guidance, nonce=nonce))
    return p256.public_key(key), cose.sign1(desc, key, kid=device_id)
"""


class _Device:
    """The device code on MicroPython (WebAssembly) or, as a fallback, on CPython."""

    def __init__(self, runtime: str):
        from glint.mpy import MicroPython, micropython_available

        self.mp = None
        if runtime == "micropython" or (runtime == "auto" and micropython_available()):
            self.mp = MicroPython()
            self.mp.run(DEVICE_CODE)
            self.name = "MicroPython (WebAssembly)"
        else:
            self.ns: dict = {}
            exec(DEVICE_CODE, self.ns)
            self.name = "CPython fallback"

    def scan(self, entropy: bytes, frame: bytes, w: int, h: int, counter: int, nonce: bytes) -> tuple[bytes, bytes]:
        if self.mp is None:
            return self.ns["demo_scan"](entropy, bytearray(frame), w, h, counter, nonce)
        out = self.mp.eval_json(
            f"pub, msg = demo_scan({entropy!r}, bytearray({frame!r}), {w}, {h}, {counter}, {nonce!r})",
            "[pub.hex(), msg.hex()]")
        return bytes.fromhex(out[0]), bytes.fromhex(out[1])

    def close(self):
        if self.mp is not None:
            self.mp.close()


def host_check(scan: bytes, pub: bytes, nonce: bytes) -> dict:
    """What the host does with a signed scan: two verifiers, then freshness."""
    payload = cose.verify1(scan, pub)
    s = cose.decode1(scan)
    vk = ecdsa.VerifyingKey.from_string(pub, curve=ecdsa.NIST256p)
    try:
        vk.verify(s.signature, s.to_be_signed(), hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
    except ecdsa.BadSignatureError:
        raise CryptoError("python-ecdsa disagrees: signature invalid") from None
    d = D.decode(payload)
    if d.get(D.K_NONCE) != nonce:
        raise CryptoError("scan is not fresh: nonce does not match this request (replay?)")
    return d


def run_demo(home: Path | None, runtime: str, out: TextIO) -> bool:
    from glint import imaging, sim

    home = home or Path(tempfile.mkdtemp(prefix="glint-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    ok = True

    def step(text: str, good: bool = True) -> None:
        nonlocal ok
        ok = ok and good
        out.write(f"  [{'ok' if good else 'FAIL'}] {text}\n")
        out.flush()

    out.write(f"glint demo (data in {home})\n")
    dev = _Device(runtime)
    try:
        prof = sim.get_profile("bench")
        coating = sim.make_coating(seed=42, profile=prof)
        cap = sim.capture(coating, profile=prof, seed=1)
        h, w = cap.image.shape
        frame_path = home / "frame.png"
        sim.write_frame(frame_path, cap.image)
        step(f"simulated a coating capture ({w}x{h}, profile 'bench') -> {frame_path}")

        nonce = secrets.token_bytes(16)
        t0 = time.perf_counter()
        pub, scan = dev.scan(os.urandom(32), cap.image.tobytes(), w, h, 1, nonce)
        dt = time.perf_counter() - t0
        (home / "scan.cose").write_bytes(scan)
        (home / "device.pub").write_text(pub.hex() + "\n")
        d = D.decode(cose.decode1(scan).payload)
        n = len(d[D.K_SPOTS]) // D.SPOT_RECORD
        step(f"device code on {dev.name}: detected {n} spots, signed a {len(scan)}-byte scan in {dt:.2f} s")

        host_twin = imaging.detect(cap.image)
        step("host detector twin gives the same spot bytes as the device", host_twin.spots == d[D.K_SPOTS])

        d = host_check(scan, pub, nonce)
        step(f"host verified the ES256 signature (glintcore and python-ecdsa) and the fresh nonce; "
             f"counter {d[D.K_COUNTER]}")

        bad = bytearray(scan)
        bad[len(bad) // 2] ^= 0x01
        try:
            host_check(bytes(bad), pub, nonce)
            step("a tampered scan was accepted", False)
        except (CryptoError, DecodeError) as e:
            step(f"tampered scan refused: {e}")
        try:
            host_check(scan, pub, secrets.token_bytes(16))
            step("a replayed scan was accepted", False)
        except CryptoError as e:
            step(f"replayed scan refused: {e}")
        out.write(f"files: {home / 'scan.cose'} (try: glint inspect {home / 'scan.cose'} "
                  f"--pubkey {home / 'device.pub'})\n")
    except GlintError as e:
        step(str(e), False)
    finally:
        dev.close()
    out.write("demo " + ("passed" if ok else "FAILED") + "\n")
    return ok
