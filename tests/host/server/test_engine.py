"""glint serve's own HTTP engine (glint.server.engine): its strict-subset parser gives exactly the
request waitress's parser gives, or leaves the request to waitress's parser; the engine answers
keep-alive, pipelined, HTTP/1.0, HEAD and 100-continue requests as waitress does, from a real
server on a socket. (The server's own refusals, the cap and the deadlines: test_raw_errors.py and
tests/e2e/test_serve_limits.py, against both engines or the default one.)"""

from __future__ import annotations

import json
import random
import socket
import threading

import pytest
from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser

from glint.server.engine import NEED_MORE, ThreadedServer, parse_simple

ADJ = Adjustments(host="127.0.0.1", port=0)
BODY = b'{"kind":"service","item":"acme:BAG-1","data":{"action":"clean"}}'
UPLOAD = (b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:8750\r\nAuthorization: Bearer glk_x\r\nIdempotency-Key: k-1\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


def waitress_view(data: bytes):
    p = HTTPRequestParser(ADJ)
    used = 0
    while used < len(data) and not p.completed:
        n = p.received(data[used:])
        if n == 0:
            break
        used += n
    if not p.completed or p.error is not None or p.empty:
        return None
    return (p.command, p.request_uri, p.path, p.query, p.version, p.url_scheme, dict(p.headers),
            p.get_body_stream().read(), used)


def simple_view(data: bytes):
    got = parse_simple(data)
    if got is None or got is NEED_MORE:
        return got
    r, used = got
    return (r.command, r.request_uri, r.path, r.query, r.version, r.url_scheme, r.headers,
            r.get_body_stream().read(), used)


CASES = [UPLOAD, UPLOAD + b"GET / HTTP/1.1\r\n\r\n", b"GET /v1/checkpoint HTTP/1.0\r\n\r\n",
         b"GET /v1/proof/inclusion?index=3&size=9 HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n",
         b"GET /a?b?c%20 HTTP/1.1\r\nhost:   spaced value \t\r\nconnection: close\r\n\r\n",
         b"HEAD /v1/items/acme:BAG-1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"]
FALLBACK = [b"GET /a%20b HTTP/1.1\r\n\r\n", b"GET //x HTTP/1.1\r\n\r\n", b"GET http://h/x HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\n\r\n", b"GET / HTTP/1.1\r\nX_Y: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n", b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", b"\r\nGET / HTTP/1.1\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx"]


@pytest.mark.parametrize("data", CASES)
def test_the_subset_parses_as_waitress_parses(data):
    assert simple_view(data) == waitress_view(data) is not None


@pytest.mark.parametrize("data", FALLBACK)
def test_outside_the_subset_waitress_parses(data):
    assert simple_view(data) is None


def test_an_unfinished_head_waits_and_a_long_one_goes_to_waitress():
    assert parse_simple(b"GET / HTTP/1.1\r\nHost: x\r\n") is NEED_MORE
    assert parse_simple(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000) is None  # waitress counts it against its limit


def test_random_heads_parse_as_waitress_parses_or_go_to_it():
    """Mutations of real heads over the bytes that matter to either parser: whatever the subset
    takes, waitress takes identically."""
    rng = random.Random(15)
    alphabet = b" \t\r\n:;/?%#_-.,=&@!~*'()+aZ09\x00\x7f\x80\xff"
    taken = 0
    for _ in range(3000):
        data = bytearray(rng.choice(CASES))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            op = rng.random()
            if op < 0.4:
                data[i] = rng.choice(alphabet)
            elif op < 0.7:
                data.insert(i, rng.choice(alphabet))
            else:
                del data[i]
        got = simple_view(bytes(data))
        if got is not None and got is not NEED_MORE:
            taken += 1
            assert got == waitress_view(bytes(data)), bytes(data)
    assert taken > 300  # the property looked at many accepted heads


def _echo(environ, start_response):
    body = json.dumps({k: environ[k] for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL")}
                      | {"body": environ["wsgi.input"].read().decode()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(scope="module")
def echo():
    srv = ThreadedServer(_echo, "127.0.0.1", 0, connection_limit=10, per_address=4, channel_timeout=5, deadline_s=5)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield srv.effective_port
    srv.close()
    t.join(5)
    assert not t.is_alive()


def _answers(port: int, data: bytes, n: int) -> list[tuple[str, dict, bytes]]:
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        buf = b""
        while len(out) < n:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                assert chunk, (out, buf)
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
            size = int(headers.get("content-length", 0)) if lines[0].split()[1] != "100" else 0
            while len(buf) < size:
                buf += s.recv(65536)
            out.append((lines[0], headers, buf[:size]))
            buf = buf[size:]
    return out


def test_pipelined_requests_on_one_connection_both_parsers(echo):
    data = UPLOAD + b"GET /a%2Fb?q=1 HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"
    (l1, h1, b1), (l2, h2, b2), (l3, h3, b3) = _answers(echo, data, 3)
    assert json.loads(b1) == {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/events", "QUERY_STRING": "",
                              "SERVER_PROTOCOL": "HTTP/1.1", "body": BODY.decode()}
    assert json.loads(b2)["PATH_INFO"] == "/a/b" and json.loads(b2)["QUERY_STRING"] == "q=1"  # waitress's parser
    assert h1.get("connection") is None and h3["connection"] == "close" and h1["server"] == "glint"


def test_http10_closes_unless_keep_alive_and_head_has_no_body(echo):
    (line, headers, _), = _answers(echo, b"GET / HTTP/1.0\r\n\r\n", 1)
    assert line.startswith("HTTP/1.0 200") and headers["connection"] == "close"
    (line, headers, _), = _answers(echo, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1)
    assert headers["connection"] == "Keep-Alive"
    with socket.create_connection(("127.0.0.1", echo), timeout=5) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""


def test_expect_100_continue(echo):
    with socket.create_connection(("127.0.0.1", echo), timeout=5) as s:
        s.sendall(b"POST /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"ok")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert json.loads(got.partition(b"\r\n\r\n")[2])["body"] == "ok"


def test_no_thread_for_a_connection_drops_it_and_keeps_serving(echo, monkeypatch):
    import types

    import glint.server.engine as eng

    failed = []

    def thread(*args, **kwargs):
        if not failed:
            failed.append(1)
            raise RuntimeError("can't start new thread")
        return threading.Thread(*args, **kwargs)

    monkeypatch.setattr(eng, "threading", types.SimpleNamespace(Thread=thread))
    with socket.create_connection(("127.0.0.1", echo), timeout=5) as s:  # dropped: closed unanswered
        s.sendall(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    (line, _, body), = _answers(echo, b"GET /y HTTP/1.1\r\nConnection: close\r\n\r\n", 1)
    assert failed and line.startswith("HTTP/1.1 200") and json.loads(body)["PATH_INFO"] == "/y"
