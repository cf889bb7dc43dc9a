"""The virtual scanner over socket:// with pyserial: the device protocol end to end.

One virtual scanner (the real firmware on the MicroPython Unix port, then on WebAssembly)
serves the whole module; tests run in file order and build on each other's device state
(key, counter, spool), the way a host session would.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

from glint.errors import DeviceError
from glint.link import Timeouts, open_scanner
from glint.vscanner import LensSpec
from glintcore import cbor, cose, descriptor, frame, messages, proto
from glintcore.proto import (
    GD_OK, MSG_CONFIG_GET, MSG_CONFIG_SET, MSG_INFO, MSG_KEYGEN, MSG_RESET, MSG_SCAN, MSG_SELFTEST,
    MSG_SPOOL_ACK, MSG_SPOOL_GET, MSG_SPOOL_LIST,
)

STATE = {}
PLATFORM = {"unix": "linux", "node": "webassembly"}  # sys.platform of the firmware on each runtime


def scan(client, nonce=None):
    nonce = nonce or os.urandom(16)
    body = client.request(MSG_SCAN, {"nonce": nonce}).body
    return nonce, body


def verify_pycose(scan_bytes, pub):
    m = Sign1Message.decode(scan_bytes)
    m.key = EC2Key(crv=P256, x=pub[1:33], y=pub[33:])
    assert m.verify_signature()
    return descriptor.decode(m.payload)


def test_info_before_keygen(client, runtime):
    STATE.clear()
    info = client.request(MSG_INFO).body
    assert info["board"] == "sim" and info["impl"] == "micropython" and info["platform"] == PLATFORM[runtime]
    assert len(info["device_id"]) == 8 and info["proto"] == proto.PROTOCOL_VERSION
    assert info["pubkey"] is None and "scan" in info["caps"]
    STATE["device_id"] = info["device_id"]


def test_scan_without_key_is_refused(client):
    msg = client.exchange(MSG_SCAN, {"nonce": b"n" * 16})
    assert msg.status == proto.ST_NO_KEY


def test_keygen_then_refuses_to_replace(client):
    pub = client.request(MSG_KEYGEN).body["pubkey"]
    assert len(pub) == 65 and pub[0] == 4
    msg = client.exchange(MSG_KEYGEN)
    assert msg.status == proto.ST_KEY_EXISTS
    assert client.request(MSG_INFO).body["pubkey"] == pub  # only the public key ever leaves
    STATE["pub"] = pub


def test_scan_signature_verifies_with_pycose(client):
    nonce, body = scan(client)
    d = verify_pycose(body["scan"], STATE["pub"])
    assert cose.verify1(body["scan"], STATE["pub"]) == cose.decode1(body["scan"]).payload
    assert cose.decode1(body["scan"]).kid == STATE["device_id"]
    assert d[descriptor.K_NONCE] == nonce and d[descriptor.K_DEVICE] == STATE["device_id"]
    assert d[descriptor.K_COUNTER] == body["counter"] and d[descriptor.K_GUIDANCE] == GD_OK
    assert d[descriptor.K_GEOM] == [320, 240] and len(d[descriptor.K_SPOTS]) >= 5 * 16
    STATE["spots"] = d[descriptor.K_SPOTS]
    STATE["counters"] = [body["counter"]]


def test_bad_nonce_is_a_bad_argument(client):
    assert client.exchange(MSG_SCAN, {"nonce": b"short"}).status == proto.ST_BAD_ARG
    assert client.exchange(MSG_SCAN, {}).status == proto.ST_BAD_ARG


def test_counterfeit_and_empty_lens(vscanner, client):
    vscanner.set_lens(LensSpec("counterfeit", item_seed=7))
    _, body = scan(client)
    d = verify_pycose(body["scan"], STATE["pub"])
    assert d[descriptor.K_SPOTS] != STATE["spots"]  # another coating, other spots
    STATE["counters"].append(body["counter"])
    vscanner.set_lens(LensSpec("empty"))
    msg = client.exchange(MSG_SCAN, {"nonce": os.urandom(8)})
    assert msg.status == proto.ST_POOR_CAPTURE and msg.body["guidance"] != GD_OK
    assert "scan" not in msg.body
    assert vscanner.status()["pattern"] == "retry"
    vscanner.set_lens(LensSpec("item", item_seed=7))


def _spots(client):
    _, body = scan(client)
    STATE["counters"].append(body["counter"])
    return verify_pycose(body["scan"], STATE["pub"])[descriptor.K_SPOTS]


def test_every_capture_is_a_new_placement_unless_pinned(vscanner, client):
    lens = vscanner.sim_dir / "lens.pgm"
    vscanner.set_lens(LensSpec("item", item_seed=7))  # unpinned: a new capture after every capture
    seen = []
    for _ in range(3):
        before = lens.read_bytes()
        seen.append(_spots(client))
        deadline = time.monotonic() + 10
        while lens.read_bytes() == before and time.monotonic() < deadline:  # the host renders the next one
            time.sleep(0.02)
        assert lens.read_bytes() != before, "no new placement under the lens after a capture"
    assert len(set(seen)) == 3  # three different captures, different spots
    vscanner.set_lens(LensSpec("item", item_seed=7, capture_seed=3))  # pinned: the same frame every time
    a, b = _spots(client), _spots(client)
    assert a == b and a not in seen
    vscanner.set_lens(LensSpec("item", item_seed=7))


def test_line_noise_resynchronises(client):
    rnd = bytes(b for b in os.urandom(3000) if b not in (0x0D, 0x47))  # no CR (interrupt) or frame start
    client.transport.write(rnd + b"\x00")
    # garbage inside a frame: answered with a status, then the link carries on
    client.transport.write(b"G" + os.urandom(40).replace(b"\x00", b"\x01") + b"\x00")
    err = client.response(timeout=10)
    assert err.status in (proto.ST_BAD_CRC, proto.ST_MALFORMED) and err.seq == 0
    _, body = scan(client)
    assert body["counter"] > STATE["counters"][-1]
    STATE["counters"].append(body["counter"])


def _status_reply(client, raw):
    client.transport.write(raw)
    msg = client.response(timeout=10)
    return msg


def test_corrupt_frames_get_status_codes(client):
    good = frame.encode_frame(messages.encode_request(MSG_INFO, 77, {}))
    bad_crc = bytearray(good)
    bad_crc[3] ^= 0x20
    assert _status_reply(client, bytes(bad_crc)).status == proto.ST_BAD_CRC
    big = frame.encode_frame(bytes(proto.MAX_PAYLOAD))[:-1]
    oversize = big + b"\x01" * 600 + b"\x00"
    assert _status_reply(client, oversize).status == proto.ST_OVERSIZE
    not_cbor = frame.encode_frame(b"\xff\xfe\xfd")
    assert _status_reply(client, not_cbor).status == proto.ST_MALFORMED
    not_a_request = frame.encode_frame(cbor.dumps({"hello": 1}))
    assert _status_reply(client, not_a_request).status == proto.ST_MALFORMED
    unknown = frame.encode_frame(messages.encode_request(0x3E, 9, {}))
    msg = _status_reply(client, unknown)
    assert msg.status == proto.ST_UNKNOWN and msg.seq == 9
    assert client.request(MSG_INFO).body["board"] == "sim"  # still alive and in protocol mode


def test_config_persists(client):
    assert client.request(MSG_CONFIG_GET, {"key": "spool_capacity"}).body["value"] == 64
    client.request(MSG_CONFIG_SET, {"key": "name", "value": "bench-7"})
    with pytest.raises(DeviceError) as e:
        client.request(MSG_CONFIG_SET, {"key": "gain", "value": 999})
    assert e.value.status == proto.ST_BAD_ARG
    with pytest.raises(DeviceError):
        client.request(MSG_CONFIG_SET, {"key": "nope", "value": 1})


def test_button_scans_go_to_the_spool(vscanner, client):
    for _ in range(2):
        assert vscanner.press_button()["ok"]
        ev = client.next_event(timeout=30)
        assert ev.type == proto.EVT_SCAN_SPOOLED
    lst = client.request(MSG_SPOOL_LIST).body
    assert lst["count"] == 2 and lst["free"] == lst["capacity"] - 2
    STATE["spooled"] = lst["entries"]
    for c in lst["entries"]:
        d = verify_pycose(client.request(MSG_SPOOL_GET, {"counter": c}).body["scan"], STATE["pub"])
        assert descriptor.K_NONCE not in d and d[descriptor.K_COUNTER] == c
    STATE["counters"].extend(lst["entries"])


def test_reboot_keeps_key_counter_spool_and_config(vscanner, client):
    client.close()
    vscanner.restart()  # SIGKILL = power cut, then boot from the same flash directory
    with open_scanner(vscanner.url, Timeouts(request=30.0)) as c:
        info = c.request(MSG_INFO).body
        assert info["pubkey"] == STATE["pub"] and info["device_id"] == STATE["device_id"]
        assert info["counter"] > max(STATE["counters"])
        assert c.request(MSG_CONFIG_GET, {"key": "name"}).body["value"] == "bench-7"
        assert c.request(MSG_SPOOL_LIST).body["entries"] == STATE["spooled"]
        _, body = scan(c)
        assert body["counter"] > max(STATE["counters"])
        STATE["counters"].append(body["counter"])
        # soft reset through the protocol: same flash, counter still moves on
        assert c.request(MSG_RESET).body == {}
        time.sleep(0.5)
        _, body = scan(c)
        assert body["counter"] > max(STATE["counters"])
        STATE["counters"].append(body["counter"])
    assert STATE["counters"] == sorted(set(STATE["counters"]))  # strictly increasing, never repeated


def test_spool_entries_leave_only_after_ack(vscanner, client):
    first, second = STATE["spooled"]
    client.request(MSG_SPOOL_ACK, {"counter": first})
    assert client.exchange(MSG_SPOOL_GET, {"counter": first}).status == proto.ST_NOT_FOUND
    assert client.exchange(MSG_SPOOL_ACK, {"counter": first}).status == proto.ST_NOT_FOUND
    client.close()
    vscanner.restart()
    with open_scanner(vscanner.url, Timeouts(request=30.0)) as c:
        assert c.request(MSG_SPOOL_LIST).body["entries"] == [second]
        c.request(MSG_SPOOL_ACK, {"counter": second})
        assert c.request(MSG_SPOOL_LIST).body["entries"] == []


def test_spool_full_is_a_clear_state(vscanner, client):
    client.request(MSG_CONFIG_SET, {"key": "spool_capacity", "value": 1})
    vscanner.press_button()
    assert client.next_event(timeout=30).type == proto.EVT_SCAN_SPOOLED
    vscanner.press_button()
    ev = client.next_event(timeout=30)
    assert ev.type == proto.EVT_LOG and ev.body["msg"] == "spool full"
    lst = client.request(MSG_SPOOL_LIST).body
    assert lst["full"] and lst["free"] == 0
    client.request(MSG_SPOOL_ACK, {"counter": lst["entries"][0]})
    client.request(MSG_CONFIG_SET, {"key": "spool_capacity", "value": 64})


def test_selftest(client):
    res = client.request(MSG_SELFTEST).body
    assert res["ok"], res
    assert res["frame"]["max"] > res["frame"]["min"] and res["storage"]["ok"] and res["key"]["ok"]


def test_flash_dir_holds_the_device_state(vscanner):
    root = vscanner.flash_dir / "glint"
    assert (root / "key").is_file() and (root / "counter").is_file() and (root / "spool").is_dir()
    assert not list(vscanner.flash_dir.rglob("*.vsx-tmp"))


def test_second_connection_takes_over(vscanner):
    s = socket.create_connection((vscanner.host, vscanner.port))
    s.close()
    with open_scanner(vscanner.url, Timeouts(request=30.0)) as c:
        assert c.request(MSG_INFO).body["board"] == "sim"
