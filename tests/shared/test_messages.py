from __future__ import annotations

import pytest

from glintcore import cbor, messages, proto
from glintcore.errors import DecodeError, GlintError, ProtocolError


def test_request_response_event_roundtrip():
    m = messages.decode_message(messages.encode_request(proto.MSG_SCAN, 42, {"nonce": b"n" * 16}))
    assert (m.kind, m.type, m.seq, m.status, m.body) == ("request", proto.MSG_SCAN, 42, None, {"nonce": b"n" * 16})
    r = messages.decode_message(messages.encode_response(proto.MSG_SCAN, 42, proto.ST_POOR_CAPTURE, {"guidance": 3}))
    assert (r.kind, r.type, r.seq, r.status) == ("response", proto.MSG_SCAN, 42, proto.ST_POOR_CAPTURE)
    e = messages.decode_message(messages.encode_event(proto.EVT_SCAN_SPOOLED, {"counter": 9}))
    assert (e.kind, e.type, e.seq) == ("event", proto.EVT_SCAN_SPOOLED, 0)


@pytest.mark.parametrize("value", [
    5, [], [1], [1, 2, 3, 4, 5], ["x", 1, {}], [1, -1, {}], [1, 70000, {}], [1, 1, []],
    [0x82, 1, {}], [1, 1, 0, {}], [0x81, 1, "ok", {}],
])
def test_bad_envelopes(value):
    with pytest.raises((ProtocolError, DecodeError)):
        messages.decode_message(cbor.dumps(value))


def test_errors_are_glint_errors_and_one_line():
    with pytest.raises(GlintError) as e:
        messages.decode_message(b"\xff")
    assert "\n" not in e.value.oneline()


def test_status_table_covers_every_code():
    codes = [v for k, v in vars(proto).items() if k.startswith("ST_")]
    assert sorted(codes) == sorted(proto.STATUS_NAMES)
    assert messages.describe_status(proto.ST_SPOOL_FULL, {"error": "16/16 used"}) == "spool full: 16/16 used"
