"""The fallback runtime (--runtime cpython): same firmware, same link, no Node needed."""

from __future__ import annotations

import os

from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

from glint.vscanner import LensSpec, ScannerClient, VirtualScanner
from glintcore import descriptor, frame, proto
from glintcore.proto import MSG_INFO, MSG_KEYGEN, MSG_REPL, MSG_SCAN


def test_cpython_runtime_scan_reboot_and_bad_frames(tmp_path):
    with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=4), runtime="cpython") as vs:
        with ScannerClient.open(vs.url) as c:
            assert c.call(MSG_INFO)["impl"] == "cpython"
            pub = c.call(MSG_KEYGEN)["pubkey"]
            body = c.call(MSG_SCAN, {"nonce": os.urandom(12)})
            m = Sign1Message.decode(body["scan"])
            m.key = EC2Key(crv=P256, x=pub[1:33], y=pub[33:])
            assert m.verify_signature()
            assert descriptor.decode(m.payload)[descriptor.K_COUNTER] == body["counter"]
            c.send_raw(frame.encode_frame(b"\x01" * (proto.MAX_PAYLOAD))[:-1] + b"\x02" * 100 + b"\x00")
            assert c.wait_response(None, None, timeout=10).status == proto.ST_OVERSIZE
            r = c.request(MSG_REPL)  # provisioned, so locked (glintfw.lock): no REPL handover
            assert r.status == proto.ST_LOCKED
            assert c.call(MSG_INFO)["pubkey"] == pub
        first = body["counter"]
        vs.restart()
        with ScannerClient.open(vs.url) as c:
            assert c.call(MSG_SCAN, {"nonce": os.urandom(12)})["counter"] > first
