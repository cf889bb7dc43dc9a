"""POST /v1/events/batch: several events per request, each checked and answered on its own (real ledger,
real registry, real P-256 signatures, the real matcher), all of one round of the group commit."""

from __future__ import annotations

import threading

import pytest
from softdevice import ITEM, NOW, enroll_body, register_body

from glint.ledger.group import LedgerWorker
from glint.server import wire


def verify_body(device, spots, size, res="pass", t=NOW - 50, **data):
    return wire.event_body("verify", ITEM, t, {"res": res, **data}, device.sign(spots, *size))


@pytest.fixture
def enrolled(api, device, coating):
    """ITEM registered (brand key) and enrolled (bench key) on the served home, one event each."""
    assert api.post(register_body(), role="brand").status_code == 201
    assert api.post(enroll_body(device, coating)).status_code == 201
    return api


def batch(api, entries, role="bench"):
    headers = {"Authorization": f"Bearer {api.keys[role]}"} if role else {}
    return api.client.post("/v1/events/batch", json={"events": [{"key": k, "event": e} for k, e in entries]},
                           headers=headers)


def test_each_event_of_a_batch_is_checked_and_answered_on_its_own(enrolled, device, coating):
    api = enrolled
    _ref, probes, size = coating
    size0 = api.get("/v1/checkpoint").json["size"]
    good = verify_body(device, probes[1], size)
    entries = [("v-good", good),
               ("v-lie", verify_body(device, probes[1], size, res="fail")),        # the server's matcher says pass
               ("v-replay", dict(good, time=NOW - 40)),                            # the same scan bytes again
               ("svc", {"kind": "service", "item": ITEM, "time": NOW, "data": {"action": "clean"}}),  # not a bench kind
               ("v-field", verify_body(device, probes[1], size, extra="x")),       # not in the verify schema
               ("v-forged", wire.event_body("verify", ITEM, NOW - 30, {"res": "pass"}, b"\x00" * 200))]
    r = batch(api, entries)
    assert r.status_code == 200, r.json
    res = r.json["results"]
    assert [x["key"] for x in res] == [k for k, _ in entries]
    assert [x["status"] for x in res] == [201, 422, 422, 403, 422, 422], res
    assert res[0]["duplicate"] is False and len(res[0]["leaf_hash"]) == 64
    assert res[1]["reason"] == "match-disagrees" and "not fail" in res[1]["error"]
    assert "replayed scan" in res[2]["error"]
    assert "may not upload 'service'" in res[3]["error"] and res[3]["hint"]
    assert all("\n" not in x.get("error", "") for x in res)
    assert api.get("/v1/checkpoint").json["size"] == size0 + 1  # only the good one reached a leaf
    again = batch(api, entries).json["results"]  # the same batch again: the appended one is a duplicate
    assert again[0] == dict(res[0], status=200, duplicate=True, tree_size=again[0]["tree_size"])
    assert [x["status"] for x in again[1:]] == [422, 422, 403, 422, 422]
    assert api.get("/v1/checkpoint").json["size"] == size0 + 1
    # an appended event is the same as a single upload's: its inclusion proof checks out
    p = api.get(f"/v1/proof/inclusion?index={res[0]['index']}").json
    assert p["leaf_hash"] == res[0]["leaf_hash"]


def test_a_verify_behind_its_enroll_in_one_batch_is_checked_against_that_enroll(api, device, coating):
    ref, probes, (w, h) = coating
    assert api.post(register_body(), role="brand").status_code == 201
    enroll = enroll_body(device, coating)
    res = batch(api, [("e", enroll), ("v", verify_body(device, probes[1], (w, h)))]).json["results"]
    assert [x["status"] for x in res] == [201, 201], res  # the verify saw the enroll's reference


def test_a_malformed_batch_is_refused_whole_and_each_event_takes_a_rate_token(enrolled):
    api = enrolled
    svc = {"kind": "service", "item": ITEM, "time": NOW, "data": {"action": "clean"}}
    size0 = api.get("/v1/checkpoint").json["size"]
    bad = [{"events": []}, {"events": [{"key": "a", "event": svc}] * 101}, {"events": [{"event": svc}]},
           {"events": [{"key": "", "event": svc}]}, {"events": [{"key": "a\x01", "event": svc}]},
           {"events": [{"key": "a", "event": svc}, {"key": "a", "event": svc}]},
           {"events": [{"key": "a", "event": [svc]}]}, {"events": {"key": "a"}}, [svc], {"events": [], "x": 1}]
    for body in bad:
        r = api.client.post("/v1/events/batch", json=body, headers={"Authorization": f"Bearer {api.keys['brand']}"})
        assert r.status_code == 400 and r.json["error"] and "\n" not in r.json["error"], (body, r.json)
    r = batch(api, [("a", svc)], role=None)
    assert r.status_code == 401
    assert api.get("/v1/checkpoint").json["size"] == size0
    # each event of a batch counts against the key's rate
    from glint.server.auth import KeyStore

    ks = KeyStore(api.home / "glint.db")
    api.keys["slow"] = ks.create("brand", "slow", rate_per_s=5.0)[1]  # burst 10
    api.keys["slow2"] = ks.create("brand", "slow2", rate_per_s=5.0)[1]
    ks.close()
    svc = [(f"s{i}", {"kind": "service", "item": ITEM, "time": NOW, "data": {"action": f"a{i}"}}) for i in range(21)]
    r = batch(api, svc[:11], role="slow2")
    assert r.status_code == 400 and "more than this key's burst (10)" in r.json["error"]
    assert batch(api, svc[:10], role="slow").status_code == 200  # every token of the bucket
    r = batch(api, svc[10:20], role="slow")  # 10 more within 2 s: over the rate
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_a_bucket_gives_n_tokens_or_none():
    from glint.server.limits import RateLimited, RateLimiter

    now = [0.0]
    rl = RateLimiter(clock=lambda: now[0])
    rl.take("k", 1.0, 4.0, 3)
    with pytest.raises(RateLimited) as e:
        rl.take("k", 1.0, 4.0, 2)  # 1 token left: nothing is spent
    assert e.value.retry_after == pytest.approx(1.0)
    rl.take("k", 1.0, 4.0, 1)
    now[0] = 2.0
    rl.take("k", 1.0, 4.0, 2)


def test_the_items_of_group_many_share_one_round():
    sizes: list[int] = []

    def handler(ctx, items):
        sizes.append(len(items))
        return [x * 2 if x != 3 else ValueError("three") for x in items]

    w = LedgerWorker(lambda: None, name="t-group")
    try:
        for _ in range(20):  # the worker is idle each time: the items still arrive as one round
            futs = w.group_many(handler, [1, 2, 3, 4])
            assert [f.result(5) for f in futs[:2]] == [2, 4] and futs[3].result(5) == 8
            assert isinstance(futs[2].exception(5), ValueError)
        assert sizes == [4] * 20
        ready = threading.Event()
        w.submit(lambda ctx: ready.wait(5))  # busy: what queues meanwhile joins one round
        a = w.group_many(handler, [5, 6])
        b = w.group(handler, 7)
        ready.set()
        assert [f.result(5) for f in a] == [10, 12] and b.result(5) == 14 and sizes[-1] == 3
    finally:
        w.close()
