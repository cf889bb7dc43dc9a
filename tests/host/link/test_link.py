"""The link against the real firmware App over a real TCP socket, with faults on the wire."""

import secrets
import socket
import time

import pytest

from glint.errors import DeviceError, LinkError
from glint.link import Timeouts, open_scanner
from glintcore import cose, descriptor, frame, messages, proto

FAST = Timeouts(request=0.5, scan=5.0, keygen=5.0, retries=2, reconnect=1.0)


def test_info_keygen_scan(peer, coating_images):
    peer.lens(coating_images["a1"])
    with open_scanner(peer.url, FAST) as sc:
        info = sc.info()
        assert info["board"] == "sim" and len(info["device_id"]) == 8
        with pytest.raises(DeviceError, match="device has no key") as e:
            sc.scan(secrets.token_bytes(16))
        assert "provision" in e.value.oneline()
        pub = sc.keygen()
        with pytest.raises(DeviceError, match="already has a key"):
            sc.keygen()
        nonce = secrets.token_bytes(16)
        reply = sc.scan(nonce)
        assert reply.signed is not None and reply.guidance == proto.GD_OK
        d = descriptor.decode(cose.verify1(reply.signed, pub))
        assert d[descriptor.K_NONCE] == nonce and d[descriptor.K_DEVICE] == info["device_id"]


def test_poor_capture_is_a_reply_with_guidance(peer):
    import numpy as np

    peer.lens(np.zeros((240, 320), np.uint8))
    with open_scanner(peer.url, FAST) as sc:
        sc.keygen()
        reply = sc.scan(secrets.token_bytes(16))
    assert reply.signed is None and reply.status == proto.ST_POOR_CAPTURE
    assert reply.guidance != proto.GD_OK and reply.guidance_text in proto.GUIDANCE_TEXT.values()


def test_lost_answer_idempotent_is_retried(peer):
    with open_scanner(peer.url, FAST) as sc:
        peer.drop = 1
        assert sc.info()["board"] == "sim"
        assert sc.stats["retries"] == 1 and peer.requests == 2


def test_lost_scan_answer_is_not_resent(peer, coating_images):
    peer.lens(coating_images["a1"])
    with open_scanner(peer.url, Timeouts(request=0.5, scan=1.0, keygen=5.0)) as sc:
        sc.keygen()
        peer.drop = 1
        n = peer.requests
        with pytest.raises(LinkError, match="did not answer scan"):
            sc.scan(secrets.token_bytes(16))
        assert peer.requests == n + 1  # sent once: the caller retries with a new nonce
        # the late answer never arrives; the next request works and stale answers are dropped
        sc.timeouts.scan = 30.0  # a real scan on a loaded machine can take longer than the 1 s above
        assert sc.scan(secrets.token_bytes(16)).signed is not None


def test_damaged_request_is_resent_even_for_scans(peer, coating_images):
    peer.lens(coating_images["a1"])
    with open_scanner(peer.url, FAST) as sc:
        sc.keygen()
        peer.damage = 1
        assert sc.scan(secrets.token_bytes(16)).signed is not None
        assert sc.stats["retries"] == 1


def test_line_noise_between_frames(peer):
    peer.noise = bytes(range(1, 255)) + b"\x00\x47\x01\x02\x00"  # garbage and a broken frame
    with open_scanner(peer.url, FAST) as sc:
        for _ in range(3):
            assert sc.info(refresh=True)["board"] == "sim"
        assert sc.stats["noise"] >= 1


def test_events_are_queued(peer):
    with open_scanner(peer.url, FAST) as sc:
        sc.info()
        peer.send_raw(frame.encode_frame(messages.encode_event(proto.EVT_SCAN_SPOOLED, {"counter": 5})))
        assert sc.info(refresh=True)  # the event arrives in the middle of a request
        evs = sc.poll_events(wait=0.1)
        assert [(e.type, e.body["counter"]) for e in evs] == [(proto.EVT_SCAN_SPOOLED, 5)]
        assert sc.poll_events() == []


def test_reconnect_after_hangup(peer):
    with open_scanner(peer.url, FAST) as sc:
        sc.info()
        peer.hangup = 1
        assert sc.info(refresh=True)["board"] == "sim"  # reopened the socket and retried
        assert sc.stats["reconnects"] >= 1


def test_unplugged_scanner_is_one_line():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(LinkError) as e:
        open_scanner(f"socket://127.0.0.1:{port}")
    line = e.value.oneline()
    assert "\n" not in line and "plugged in" in line and "another program" in line
    with pytest.raises(LinkError, match="cannot open"):
        open_scanner("/dev/ttyGLINT-missing")


def test_timeout_is_bounded():
    srv = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        t0 = time.monotonic()
        with open_scanner(f"socket://127.0.0.1:{srv.getsockname()[1]}",
                          Timeouts(request=0.2, retries=1)) as sc:
            with pytest.raises(LinkError, match="did not answer info within 0.2 s"):
                sc.info()
        assert time.monotonic() - t0 < 3
    finally:
        srv.close()


def test_spool_roundtrip(peer, coating_images):
    peer.lens(coating_images["a1"])
    with open_scanner(peer.url, FAST) as sc:
        sc.keygen()
        ev = messages.decode_message(peer.app.standalone_scan())
        assert ev.type == proto.EVT_SCAN_SPOOLED
        c = ev.body["counter"]
        assert sc.spool_list() == [c]
        scan = sc.spool_get(c)
        assert descriptor.K_NONCE not in descriptor.decode(cose.decode1(scan).payload)
        sc.spool_ack(c)
        assert sc.spool_list() == []
        with pytest.raises(DeviceError, match="not found"):
            sc.spool_get(c)


def test_config_get_one_key_and_all(peer):
    with open_scanner(peer.url, FAST) as sc:
        sc.config_set("exposure_us", 12000)
        assert sc.config_get("exposure_us") == 12000
        full = sc.config_get()
        assert full["exposure_us"] == 12000 and "max_spots" in full
        with pytest.raises(DeviceError, match="unknown config key"):
            sc.config_set("no_such_key", 1)


def test_one_layer_down_exchange_response_next_event(peer):
    """What protocol tests use: a refusal as the device sent it, a hand-made frame's answer, one event."""
    with open_scanner(peer.url, FAST) as sc:
        msg = sc.exchange(proto.MSG_SCAN, {"nonce": b"short"})  # no DeviceError, no retry
        assert msg.kind == messages.KIND_RESPONSE and msg.status == proto.ST_BAD_ARG and sc.stats["sent"] == 1
        sc.transport.write(frame.encode_frame(messages.encode_request(0x3E, 9, {})))  # an unknown type
        assert (sc.response(timeout=2.0).status, sc.stats["sent"]) == (proto.ST_UNKNOWN, 1)
        peer.send_raw(frame.encode_frame(messages.encode_event(proto.EVT_LOG, {"msg": "hi"})))
        assert sc.next_event(timeout=2.0).body == {"msg": "hi"}
        with pytest.raises(LinkError, match="no event from the scanner"):
            sc.next_event(timeout=0.1)
