"""Service limits of a real `glint serve` (waitress): half-sent requests (slowloris) do not lock other
clients out, and a full disk answers 503 JSON while the server keeps serving (issue 15 point 5)."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from softdevice import NOW

from glint.server.auth import KeyStore

WAIT_S = 30.0


def start(home, preexec=None):
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=preexec,
                            env=dict(os.environ, GLINT_LOG="ERROR"))
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, int(line.split("127.0.0.1:")[1].split()[0])


def stop(proc):
    proc.terminate()
    assert proc.wait(timeout=WAIT_S) == 0


def get(port, path, timeout=5.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, json.loads(r.read())


def connect_from(source: str, port: int) -> socket.socket:
    """A connection to the server from loopback address ``source`` (127.0.0.0/8 is all loopback)."""
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def read_answer(s: socket.socket) -> bytes:
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return got
        got += chunk


def test_half_sent_requests_do_not_lock_out_other_clients(tmp_path):
    """150 half-sent requests from one address (the issue's slowloris): the address's first 64
    connections are held, the rest answered 503 JSON and closed at once (the per-address cap,
    glint.server.conncap, named in the log); another address is served meanwhile; closing
    connections frees their slots."""
    home = tmp_path / "hq"
    subprocess.run([sys.executable, "-m", "glint", "init", "--home", str(home)], check=True, capture_output=True)
    from glint.server.conncap import DEFAULT_PER_ADDRESS

    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home",
                                 str(home)], stdout=subprocess.PIPE, stderr=err, text=True,
                                env=dict(os.environ, GLINT_LOG="WARNING"))
    line = proc.stdout.readline()
    assert "listening on" in line, line
    port = int(line.split("127.0.0.1:")[1].split()[0])
    socks = []
    try:
        refused = []
        for _ in range(150):
            s = connect_from("127.0.0.1", port)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
            socks.append(s)
        for s in socks[DEFAULT_PER_ADDRESS:]:  # beyond the cap: one JSON line, then closed
            refused.append(read_answer(s))
        assert all(r.startswith(b"HTTP/1.1 503 ") for r in refused), refused[0]
        body = json.loads(refused[0].split(b"\r\n\r\n", 1)[1])
        assert body["error"] == f"too many connections from 127.0.0.1 (limit {DEFAULT_PER_ADDRESS} per address)"
        held = socks[0]
        held.settimeout(0.3)
        try:
            assert held.recv(10) == b"", "a connection within the cap was answered"
        except socket.timeout:
            pass  # still open, waiting for the rest of its request
        t0 = time.monotonic()  # another client (address) is served at once
        probe = connect_from("127.0.0.2", port)
        probe.sendall(b"GET /v1/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(probe)
        assert answer.startswith(b"HTTP/1.1 200 ") and time.monotonic() - t0 < 5.0, answer[:200]
        assert b'"size":0' in answer.replace(b" ", b"")
        for s in socks:
            s.close()
        socks = []
        deadline = time.monotonic() + 10
        while True:  # the slots come free as the server sees the connections close
            s = connect_from("127.0.0.1", port)
            s.sendall(b"GET /v1/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = read_answer(s)
            s.close()
            if answer.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    finally:
        for s in socks:
            s.close()
        stop(proc)
    text = log.read_text()
    assert f"connection from 127.0.0.1 refused: it holds {DEFAULT_PER_ADDRESS} connections" in text, text[-2000:]


def test_full_disk_is_a_503_json_answer_and_the_server_keeps_serving(tmp_path):
    home = tmp_path / "hq"
    subprocess.run([sys.executable, "-m", "glint", "init", "--home", str(home)], check=True, capture_output=True)
    ks = KeyStore(home / "glint.db")
    key = ks.create("brand", "brand-host")[1]
    ks.close()
    limit = 2 * 1024 * 1024  # the server process may write files up to 2 MiB: then the "disk" is full

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc, port = start(home, cap)
    try:
        def post(i, body):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Bearer {key}",
                                                                 "Idempotency-Key": f"k{i}"})
            try:
                with urllib.request.urlopen(req, timeout=WAIT_S) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        assert post(0, {"kind": "register", "item": "acme:D-1", "time": NOW,
                        "data": {"brand": "B", "prov": {"class": "factory"}}})[0] == 201
        answers = []
        for i in range(1, 3000):
            status, body = post(i, {"kind": "service", "item": "acme:D-1", "time": NOW,
                                    "data": {"action": "clean", "note": "x" * 500}})
            answers.append(status)
            if status != 201:
                break
        assert status == 503 and body["error"] and "\n" not in body["error"] and body["hint"], (status, body)
        status, item = get(port, "/v1/items/acme:D-1")  # reads still answer; the process is alive
        assert status == 200 and len(item["events"]) == 1 + answers.count(201)  # nothing half-stored
        try:  # signing a checkpoint writes: refused the same way, as JSON
            get(port, "/v1/checkpoint")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and json.loads(e.read())["error"]
    finally:
        stop(proc)


def test_a_trickling_request_is_cut_at_the_whole_request_deadline(tmp_path):
    """One byte every 0.5 s is never silent for the 10 s channel timeout; the deadline (here 2 s from the
    first byte) answers 408 JSON and closes; a request sent whole on another connection is unaffected."""
    home = tmp_path / "hq"
    subprocess.run([sys.executable, "-m", "glint", "init", "--home", str(home)], check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(home),
                             "--request-deadline", "2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, GLINT_LOG="ERROR"))
    line = proc.stdout.readline()
    assert "listening on" in line, line
    port = int(line.split("127.0.0.1:")[1].split()[0])
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        request = b"GET /v1/checkpoint HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
        t0 = time.monotonic()
        got = b""
        s.settimeout(0.5)
        for byte in request[:-4]:  # never finishes its headers
            try:
                s.sendall(bytes([byte]))
            except OSError:  # closed by the server
                break
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            got += chunk
            if not chunk or b"}" in got:
                break
            assert time.monotonic() - t0 < 15
        took = time.monotonic() - t0
        assert got.startswith(b"HTTP/1.1 408 "), got
        body = json.loads(got.split(b"\r\n\r\n", 1)[1])
        assert "within 2 s of its first byte" in body["error"] and body["hint"]
        assert 2.0 <= took < 5.0, took
        s.close()
        assert get(port, "/v1/checkpoint")[0] == 200
    finally:
        stop(proc)
