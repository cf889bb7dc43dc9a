"""The portable core on a real MicroPython (WebAssembly port) gives the same bytes as on CPython."""

from __future__ import annotations

import json
import math

import pytest

from glintcore import cbor, cose, descriptor as D, frame, messages, p256, proto
from glinttest import CBOR_ILL_FORMED as ILL_FORMED, load_vector


def test_runs_on_micropython(mpy):
    assert mpy.run("import sys; print(sys.implementation.name)").strip() == "micropython"


def test_appendix_a_on_micropython(mpy):
    appendix = load_vector("cbor_rfc8949_appendix_a.json")
    hexes = [v["hex"] for v in appendix]
    res = mpy.eval_json(
        "from glintcore import cbor\n"
        "from glintcore.errors import DecodeError\n"
        f"H = {hexes!r}\n"
        "R = []\n"
        "for h in H:\n"
        "    v = cbor.loads(bytes.fromhex(h))\n"
        "    R.append([v if type(v) in (int, str, bool) else repr(v), cbor.dumps(v).hex()])\n",
        "R",
    )
    for vec, (rep, reenc) in zip(appendix, res):
        value = cbor.loads(bytes.fromhex(vec["hex"]))
        # identical re-encoding on both platforms, and the preferred form when round-trippable
        assert reenc == cbor.dumps(value).hex(), vec["hex"]
        if vec["roundtrip"]:
            assert reenc == vec["hex"]
        if "decoded" in vec and isinstance(vec["decoded"], (int, str, bool)) and vec["decoded"] is not None:
            # the value itself (repr differs between ports: the Unix port escapes non-ASCII)
            assert rep == vec["decoded"], vec["hex"]


def test_ill_formed_rejected_on_micropython(mpy):
    res = mpy.eval_json(
        "from glintcore import cbor\n"
        "from glintcore.errors import DecodeError\n"
        f"C = {ILL_FORMED!r}\n"
        "R = {}\n"
        "for name in C:\n"
        "    try:\n"
        "        cbor.loads(bytes.fromhex(C[name])); R[name] = 'accepted'\n"
        "    except DecodeError as e:\n"
        "        R[name] = 'DecodeError'\n"
        "    except Exception as e:\n"
        "        R[name] = type(e).__name__ + ': ' + str(e)\n",
        "R",
    )
    assert res == {name: "DecodeError" for name in ILL_FORMED}


def _descriptor_fields():
    recs = [((i * 97) % 320 * 32 + i, (i * 41) % 240 * 32, 255 - 3 * i) for i in range(64)]
    return dict(device_id=b"\xde\xad\xbe\xef\x00\x01\x02\x03", counter=70000, fw="0.1.0", board="sim",
                width=320, height=240, quality={0: 90, 1: 512, 2: 800, 3: 0, 4: 35, 5: 20, 6: 30},
                spots=D.pack_spots(recs), guidance=0, nonce=bytes(range(16)))


def test_descriptor_cose_frame_bytes_identical(mpy):
    f = _descriptor_fields()
    d = p256.private_key_from_entropy(bytes(range(32)))
    desc = D.encode(D.make(**f))
    signed = cose.sign1(desc, d, kid=f["device_id"])
    req = messages.encode_response(proto.MSG_SCAN, 7, proto.ST_OK, {"scan": signed, "guidance": 0})
    wire = frame.encode_frame(req)
    code = (
        "from glintcore import descriptor as D, cose, p256, messages, proto, frame\n"
        f"F = dict(device_id={f['device_id']!r}, counter=70000, fw='0.1.0', board='sim', width=320, height=240,"
        f" quality={f['quality']!r}, spots={f['spots']!r}, guidance=0, nonce={f['nonce']!r})\n"
        "d = p256.private_key_from_entropy(bytes(range(32)))\n"
        "desc = D.encode(D.make(**F))\n"
        "signed = cose.sign1(desc, d, kid=F['device_id'])\n"
        "req = messages.encode_response(proto.MSG_SCAN, 7, proto.ST_OK, {'scan': signed, 'guidance': 0})\n"
        "wire = frame.encode_frame(req)\n"
        "back = D.decode(cose.verify1(frame.decode_frame(wire) and messages.decode_message(frame.decode_frame(wire)).body['scan'], p256.public_key(d)))\n"
        "R = [desc.hex(), signed.hex(), wire.hex(), back[D.K_COUNTER], len(signed)]\n"
    )
    desc_hex, signed_hex, wire_hex, counter, n = mpy.eval_json(code, "R")
    assert desc_hex == desc.hex()
    assert signed_hex == signed.hex(), "same key and message must give the same RFC 6979 signature"
    assert wire_hex == wire.hex()
    assert counter == 70000 and n == len(signed) <= 512


def test_micropython_signature_verifies_on_cpython(mpy):
    out = mpy.eval_json(
        "from glintcore import cose, p256\n"
        "k = p256.private_key_from_entropy(b'\\x07' * 32)\n"
        "R = [p256.public_key(k).hex(), cose.sign1(b'made on micropython', k, kid=b'dev').hex()]\n",
        "R",
    )
    pub, msg = bytes.fromhex(out[0]), bytes.fromhex(out[1])
    assert cose.verify1(msg, pub) == b"made on micropython"


def test_deframer_on_micropython_resyncs(mpy):
    good = frame.encode_frame(b"after noise")
    res = mpy.eval_json(
        "from glintcore import frame\n"
        "from glintcore.errors import FrameError\n"
        "d = frame.Deframer(max_payload=64)\n"
        f"ev = d.feed({bytes(range(1, 200))!r} + b'\\x00' + {frame.encode_frame(b'x' * 100)!r} + {good!r})\n"
        "R = [e.status if isinstance(e, FrameError) else (e if e == frame.INTERRUPT else e.hex()) for e in ev]\n",
        "R",
    )
    assert res[-1] == b"after noise".hex()
    assert proto.ST_OVERSIZE in res
