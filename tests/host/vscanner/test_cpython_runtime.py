"""The fallback runtime (--runtime cpython): same firmware, same link, no Node needed."""

from __future__ import annotations

import os

from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

from glint.link import Timeouts, open_scanner
from glint.vscanner import LensSpec, VirtualScanner
from glintcore import descriptor, frame, proto
from glintcore.proto import MSG_INFO, MSG_KEYGEN, MSG_REPL, MSG_SCAN


def test_cpython_runtime_scan_reboot_and_bad_frames(tmp_path):
    with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=4), runtime="cpython") as vs:
        with open_scanner(vs.url, Timeouts(request=30.0)) as c:
            assert c.request(MSG_INFO).body["impl"] == "cpython"
            pub = c.request(MSG_KEYGEN).body["pubkey"]
            body = c.request(MSG_SCAN, {"nonce": os.urandom(12)}).body
            m = Sign1Message.decode(body["scan"])
            m.key = EC2Key(crv=P256, x=pub[1:33], y=pub[33:])
            assert m.verify_signature()
            assert descriptor.decode(m.payload)[descriptor.K_COUNTER] == body["counter"]
            c.transport.write(frame.encode_frame(b"\x01" * (proto.MAX_PAYLOAD))[:-1] + b"\x02" * 100 + b"\x00")
            assert c.response(timeout=10).status == proto.ST_OVERSIZE
            r = c.exchange(MSG_REPL)  # provisioned, so locked (glintfw.lock): no REPL handover
            assert r.status == proto.ST_LOCKED
            assert c.request(MSG_INFO).body["pubkey"] == pub
        first = body["counter"]
        vs.restart()
        with open_scanner(vs.url, Timeouts(request=30.0)) as c:
            assert c.request(MSG_SCAN, {"nonce": os.urandom(12)}).body["counter"] > first
