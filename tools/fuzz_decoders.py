#!/usr/bin/env python3
"""Mutation fuzzing of every decoder of signed or untrusted data: only glint's own errors, ever.

    python tools/fuzz_decoders.py [--n 1000000] [--seed 1] [--only cbor,cose,...] [--json]

Each decoder gets ``--n`` inputs made by mutating valid seeds (bit flips, byte
insertions, deletions, truncation, duplicated chunks, random bytes, head bytes set to
interesting CBOR values). An input may be refused only with a GlintError subclass (the
one error hierarchy); any other exception is a finding and is printed with its input.
A mutated signed message that still verifies would also be a finding (cose, cert, scan).

Decoders: cbor (glintcore.cbor.loads), canonical (cbor.canonical), cose (cose.decode1),
descriptor (descriptor.decode), message (messages.decode_message), frame (Deframer.feed),
leaf (glint.ledger.events.decode_leaf), cert (glint.ledger.verify_certificate),
scan (glint.checks.check_scan against a registry), wire (glint.server.wire.parse_event on JSON).
This is a bench run (minutes per million inputs), not part of the default tests.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

INTERESTING = bytes([0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x5F, 0x7F, 0x9F, 0xBF, 0xF9, 0xFA, 0xFB, 0xFF, 0xC0,
                     0xD2, 0xD8, 0xF4, 0xF5, 0xF6, 0xF7])


def mutate(rng: random.Random, seed: bytes) -> bytes:
    b = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(7)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b.insert(i, rng.randrange(256))
        elif op == 2 and b:
            del b[i]
        elif op == 3:
            del b[rng.randrange(len(b) + 1):]
        elif op == 4 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randrange(1, 16)]
        elif op == 5 and b:
            b[i] = rng.choice(INTERESTING)
        else:
            b[i:i] = rng.randbytes(rng.randrange(1, 8))
    return bytes(b)


def _world(tmp: Path):
    """Seeds and decoder callables over real signed data."""
    from glint.checks import check_scan
    from glint.ledger import Keys, Ledger, verify_certificate
    from glint.ledger.events import decode_leaf
    from glint.registry import Registry
    from glint.server import wire
    from glintcore import cbor, cose, descriptor as D, frame, messages, p256

    d = p256.private_key_from_entropy(b"f" * 32)
    did = b"\xf0" * 8
    recs = [(32 * (10 + 7 * k), 32 * (20 + 5 * k), 200) for k in range(30)]
    desc = D.encode(D.make(did, 7, "0.4.0", "sim", 320, 240, {0: 1}, D.pack_spots(recs), 0, nonce=b"n" * 16))
    scan = cose.sign1(desc, d, kid=did)
    reg = Registry.open(tmp / "home")
    reg.add_device(did, p256.public_key(d), "sim", "0.4.0")
    keys = Keys.generate("glint.fuzz/log")
    led = Ledger.open(tmp / "home" / "ledger.db", keys=keys, durable=False)
    led.register_item("acme:F-1", "ACME")
    a = led.record_verify("acme:F-1", "pass", fap=1e-9, device=did.hex(), scan=scan)
    cert = led.issue_certificate(a.index)
    leaf = led.event(a.index).raw
    msg = messages.encode_request(2, 7, {"nonce": b"n" * 16})
    body = json.dumps(wire.event_body("verify", "acme:F-1", 1_700_000_000, {"res": "pass", "fap": 1e-9}, scan)).encode()
    deframer = frame.Deframer(4096)

    def feed(x):
        from glint.errors import GlintError

        for ev in deframer.feed(x + b"\x00"):  # the deframer reports bad frames as events, never raises
            if isinstance(ev, Exception) and not isinstance(ev, GlintError):
                raise AssertionError(f"deframer reported a non-glint error: {ev!r}")
            if isinstance(ev, (bytes, bytearray)):
                try:
                    messages.decode_message(bytes(ev))
                except GlintError:
                    pass

    def cert_verify(x):
        verify_certificate(x, keys.issuer_public, keys.log_verifier())
        if x != cert:
            raise AssertionError("a mutated certificate verified")

    def scan_check(x):
        c = check_scan(reg, x, relayed=True)
        if x != scan:
            raise AssertionError(f"a mutated scan passed the checks (counter {c.counter})")

    def wire_parse(x):
        try:
            obj = json.loads(x)
        except ValueError:
            return
        wire.parse_event(obj)

    return {
        "cbor": ([desc, cert, leaf, msg], cbor.loads),
        "canonical": ([desc, leaf], lambda x: cbor.canonical(x)),
        "cose": ([scan, cert], lambda x: cose.decode1(x)),
        "descriptor": ([desc], D.decode),
        "message": ([msg], messages.decode_message),
        "frame": ([frame.encode_frame(msg)], feed),
        "leaf": ([leaf], lambda x: decode_leaf(x)),
        "cert": ([cert], cert_verify),
        "scan": ([scan], scan_check),
        "wire": ([body], wire_parse),
    }, (reg, led)


def run(n: int, seed: int, only: list[str] | None) -> dict:
    from glint.errors import GlintError

    out = {}
    with tempfile.TemporaryDirectory(prefix="glint-fuzz-") as tmp:
        world, closers = _world(Path(tmp))
        for name, (seeds, fn) in world.items():
            if only and name not in only:
                continue
            rng = random.Random(seed)
            findings = []
            refused = 0
            t0 = time.perf_counter()
            for _ in range(n):
                x = mutate(rng, rng.choice(seeds))
                try:
                    fn(x)
                except GlintError:
                    refused += 1
                except RecursionError:
                    findings.append(("RecursionError", x.hex()[:200]))
                except Exception as e:  # anything else is a finding
                    findings.append((f"{type(e).__name__}: {e}"[:200], x.hex()[:200]))
                if len(findings) >= 20:
                    break
            out[name] = {"inputs": n, "refused": refused, "findings": findings,
                         "per_s": round(n / (time.perf_counter() - t0))}
        for c in closers:
            c.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="inputs per decoder")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="comma-separated decoders")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.n, a.seed, a.only.split(",") if a.only else None)
    if a.json:
        print(json.dumps(r))
    else:
        for name, v in r.items():
            print(f"{name:<11} {v['inputs']:>9} inputs  {v['refused']:>9} refused with glint errors  "
                  f"{len(v['findings'])} findings  ({v['per_s']}/s)")
            for f in v["findings"][:5]:
                print(f"    {f[0]}  input {f[1]}")
    return 1 if any(v["findings"] for v in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
