"""Outbox retries against a real `glint serve` process that is down, then up, then restarted.

Checks: transient failures back off and keep order; once the server is up every local
event lands exactly once on the remote; re-sending (lost acknowledgements, a restarted
client) is recognised through the idempotency key and appends nothing.
"""

import os
import signal
import subprocess
import sys
import time

import hashlib

import pytest
from glinttest import reserved_port
from softdevice import NOW, SoftDevice, sim_coating

from glint.ledger import Keys, Ledger
from glint.match import Database
from glint.match.database import to_record
from glint.outbox import Outbox, backoff_delay, open_host_db
from glint.server.auth import KeyStore
from glint.server.client import RemoteError, RemoteLedger

START_TIMEOUT_S = 20.0


def start_server(home, port=0):
    """glint serve on ``port`` (0: a free one); ``proc.port`` is the port it listens on."""
    env = dict(os.environ, GLINT_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", f"127.0.0.1:{port}", "--create"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, proc.stderr.read()
    proc.port = int(line.split("http://127.0.0.1:")[1].split()[0])
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=START_TIMEOUT_S) == 0


DEVICE = SoftDevice(3)


# what a bench key may register: a later enrollment (a factory claim is the brand key's)
LATER = {"class": "later", "by": "field-1", "at": NOW - 500}


def make_remote(home):
    """A server home that trusts DEVICE and has a bench key for the field host; returns the key."""
    home.mkdir()
    DEVICE.provision(home)
    ks = KeyStore(home / "glint.db")
    key = ks.create("bench", "field-1")[1]
    ks.close()
    return key


def make_local(home, n_verify):
    """A field host's ledger: register, enroll (with its reference in the home's matcher), verifies."""
    ref, probes, size = sim_coating(7)
    Database(home / "match").add("acme:BAG-7", ref)
    led = Ledger.open(home / "ledger.db", keys=Keys.load(home, create=True), durable=False)
    led.register_item("acme:BAG-7", "ACME", provenance=LATER, time=NOW - 500)
    led.add_coating("acme:BAG-7", "c1", ref=hashlib.sha256(to_record(ref).tobytes()).digest(),
                    scan=DEVICE.sign(probes[0], *size), time=NOW - 400, dev=DEVICE.hex)
    for i in range(n_verify):
        led.record_verify("acme:BAG-7", "pass", fap=1e-9, device=DEVICE.hex, scan=DEVICE.sign(probes[i % 2], *size),
                          time=NOW - 300 + i)
    return led


def test_backoff_grows_and_is_capped():
    d = [backoff_delay(a, base=1.0, cap=30.0) for a in range(1, 10)]
    assert 1.0 <= d[0] <= 1.2 and 2.0 <= d[1] <= 2.4 and 4.0 <= d[2] <= 4.8
    assert all(x <= 36.0 for x in d) and d[-1] >= 30.0


def test_outbox_down_then_up_no_duplicates(tmp_path):
    local, remote_home = tmp_path / "local", tmp_path / "remote"
    key = make_remote(remote_home)
    led = make_local(local, 5)
    db = open_host_db(local)
    box = Outbox(db, base_s=0.05, max_s=0.2)
    assert box.collect(led, Database(local / "match")) == 7 and box.collect(led) == 0
    with reserved_port() as port:  # held until the server binds it: no other worker's test can take it meanwhile
        remote = RemoteLedger(f"http://127.0.0.1:{port}", timeout=10.0, api_key=key)  # an enroll re-matched on a loaded machine: >2 s

        # server down: one transient failure per round, order kept, backoff recorded
        rep = box.upload(remote)
        assert (rep.sent, rep.failed, rep.pending) == (0, 1, 7)
        head = box.entries()[0]
        assert head["attempts"] == 1 and head["local_index"] == 0 and "unreachable" in head["last_error"]
        assert box.upload(remote).failed == 0  # not due yet: nothing tried
        time.sleep(0.3)
        assert box.upload(remote).failed == 1 and box.entries()[0]["attempts"] == 2

        proc = start_server(remote_home, port)
    try:
        time.sleep(0.3)
        rep = box.upload(remote)
        assert (rep.sent, rep.rejected, rep.pending, rep.duplicates) == (7, 0, 0, 0)
        assert remote.checkpoint()["size"] == 7

        # lost acknowledgements: the client forgets it sent; the remote recognises every key
        db.execute("UPDATE outbox SET state='pending', next_try=0")
        rep = box.upload(remote)
        assert (rep.sent, rep.duplicates) == (7, 7)
        # a new local event after a restart of the client goes out once
        other_ref, other_probes, size = sim_coating(8)
        led.record_verify("acme:BAG-7", "fail", device=DEVICE.hex, scan=DEVICE.sign(other_probes[0], *size),
                          time=NOW - 100)
        box2 = Outbox(open_host_db(local))
        assert box2.collect(led) == 1
        assert box2.upload(remote).sent == 1
    finally:
        stop(proc)

    # the remote restarted from disk still honours the keys
    proc = start_server(remote_home, port)
    try:
        db.execute("UPDATE outbox SET state='pending', next_try=0")
        rep = box.upload(remote)
        assert (rep.sent, rep.duplicates) == (8, 8)
        cp = remote.checkpoint()
        assert cp["size"] == 8
        item = remote.item("acme:BAG-7")
        assert [e["kind"] for e in item["events"]] == ["register", "enroll"] + ["verify"] * 6
        local_scans = [e.data.get("scan") for e in led.item("acme:BAG-7").events]
        from glint.server import wire

        assert [wire.decode_value(e["data"]).get("scan") for e in item["events"]] == local_scans
        with pytest.raises(RemoteError) as e:
            remote.post_event("other-key", {"kind": "verify", "item": "acme:NONE", "data": {"res": "pass"}})
        assert not e.value.transient and e.value.status == 422
    finally:
        stop(proc)
    led.close()


def test_refused_upload_goes_to_the_exception_queue(tmp_path):
    """An event the remote refuses (it does not know the item) is rejected, queued, and not retried."""
    local, remote_home = tmp_path / "local", tmp_path / "remote"
    key = make_remote(remote_home)
    led = Ledger.open(local / "ledger.db", keys=Keys.load(local, create=True), durable=False)
    led.register_item("acme:X-1", "ACME", provenance=LATER)
    box = Outbox(open_host_db(local))
    box.collect(led)
    # the remote already holds another event under the same idempotency key: a conflict
    proc = start_server(remote_home)
    try:
        remote = RemoteLedger(f"http://127.0.0.1:{proc.port}", api_key=key)
        key = box.entries()[0]["key"]
        remote.post_event(key, {"kind": "register", "item": "acme:OTHER", "data": {"brand": "B", "prov": LATER}})
        rep = box.upload(remote)
        assert rep.rejected == 1 and rep.pending == 0
        ex = box.exceptions.list()
        assert len(ex) == 1 and ex[0].source == "outbox" and "409" in ex[0].reason
    finally:
        stop(proc)
    led.close()
