"""`glint serve` SIGKILLed under load from concurrent clients (group commit): every acknowledged
upload is in the ledger with the leaf hash it was acknowledged with, `glint ledger verify` is clean,
and after a restart the retries of every upload (acknowledged or cut off) are appended at most once."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

from glint.ledger import Keys, Ledger
from glint.server import wire
from glint.server.auth import KeyStore

CLIENTS = 4
KILL_AFTER_ACKS = 80
TIMEOUT_S = 60.0


def _serve(home):
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, GLINT_LOG="WARNING"))
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, int(line.split("http://127.0.0.1:")[1].split()[0])


def _post(conn, token, key, body):
    conn.request("POST", "/v1/events", json.dumps(body).encode(),
                 {"Content-Type": "application/json", "Idempotency-Key": key, "Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def test_acknowledged_uploads_survive_sigkill_and_retries_append_once(tmp_path):
    home = tmp_path / "hq"
    home.mkdir()
    now = int(time.time())
    ks = KeyStore(home / "glint.db")
    tokens = [ks.create("brand", f"client-{c}")[1] for c in range(CLIENTS)]
    ks.close()
    items = [f"acme:CRASH-{c}" for c in range(CLIENTS)]
    with Ledger.open(home / "ledger.db", keys=Keys.load(home, create=True)) as led:
        for it in items:
            led.register_item(it, "ACME", time=now - 10)
    bodies = [[(f"c{c}-{i}", wire.event_body("service", items[c], now, {"action": f"clean {i}"})) for i in range(400)]
              for c in range(CLIENTS)]
    acks: list[tuple[int, str, int, str]] = []  # (client, key, index, leaf hash)
    sent = [0] * CLIENTS  # requests each client began (the last one may be cut off by the kill)
    lock = threading.Lock()
    enough = threading.Event()

    def client(c, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        try:
            for key, body in bodies[c]:
                sent[c] += 1
                status, out = _post(conn, tokens[c], key, body)
                assert status == 201, out
                with lock:
                    acks.append((c, key, out["index"], out["leaf_hash"]))
                    if len(acks) >= KILL_AFTER_ACKS:
                        enough.set()
        except (OSError, http.client.HTTPException):
            return  # the server was killed under this request
        finally:
            conn.close()

    proc, port = _serve(home)
    threads = [threading.Thread(target=client, args=(c, port), daemon=True) for c in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        assert enough.wait(TIMEOUT_S), "the clients got no acknowledgements"
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests in flight, a group possibly half done
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for t in threads:
        t.join(TIMEOUT_S)
    assert len(acks) >= KILL_AFTER_ACKS and all(s < 400 for s in sent)

    with Ledger.open(home / "ledger.db", readonly=True) as led:
        for _c, _key, index, leaf_hash in acks:  # every acknowledged upload is there, as acknowledged
            assert led.event(index).hash.hex() == leaf_hash
    out = subprocess.run([sys.executable, "-m", "glint", "ledger", "verify", "--home", str(home), "--json"],
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"], out.stdout + out.stderr
    # every acknowledged upload's quota charge is committed (fsynced behind the answer: a kill keeps
    # it, docs/api.md "Durability"); each upload is charged at least 200 bytes
    ks = KeyStore(home / "glint.db")
    used = {k.label: k.bytes_used for k in ks.list()}
    ks.close()
    for c in range(CLIENTS):
        assert used[f"client-{c}"] >= 200 * sum(1 for a in acks if a[0] == c), (c, used)

    # Restart; every client retries all it began (same keys): acknowledged ones answer their old
    # index, the cut-off one is appended now or bound to its earlier append, never appended twice.
    acked = {key: index for _c, key, index, _h in acks}
    proc, port = _serve(home)
    try:
        for c in range(CLIENTS):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
            for key, body in bodies[c][:sent[c]]:
                status, res = _post(conn, tokens[c], key, body)
                assert status in (200, 201), res
                if key in acked:
                    assert status == 200 and res["duplicate"] and res["index"] == acked[key]
            conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT_S)
    with Ledger.open(home / "ledger.db", readonly=True) as led:
        for c, it in enumerate(items):
            actions = [e.data["action"] for e in led.item(it).events if e.kind == "service"]
            assert sorted(actions) == sorted(f"clean {i}" for i in range(sent[c]))  # each once
        assert led.verify().ok
