"""The HTTP layer of glint serve over a raw socket against a real server, both engines (glint's own,
glint.server.engine, and waitress): the answers the layer gives itself, before glint's app runs,
are glint's JSON errors (issue 15: JSON for every failure; glint.server.httperrors; both parse with
waitress's parser), and an answer's headers and body go out in one send (glint.server.sendonce,
glint.server.engine.send)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from glint.server import make_server


@pytest.fixture(scope="module", params=["threads", "waitress"])
def engine(request):
    return request.param


@pytest.fixture(scope="module")
def port(tmp_path_factory, engine):
    home = tmp_path_factory.mktemp("raw") / "hq"
    home.mkdir()
    srv = make_server(home, "127.0.0.1", 0, engine=engine)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield srv.effective_port
    srv.close()
    t.join(10)
    srv.glint_close()


def exchange(port: int, data: bytes) -> tuple[str, dict, bytes]:
    """Send ``data`` on a fresh connection; (status line, headers, body) of the answer, read to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return lines[0], headers, body


POST = b"POST /v1/events HTTP/1.1\r\nHost: x\r\n"
CASES = {
    "bad-uri": (b"GET /v1/\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Bad URI"),
    "malformed-request-line": (b"GARBAGE\r\n\r\n", 400, "Start line is invalid"),
    "oversize-headers": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 300_000 + b"\r\n\r\n", 431, "max_header"),
    "bad-content-length": (POST + b"Content-Length: abc\r\n\r\n", 400, "Content-Length is invalid"),
    "two-content-lengths": (POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "Content-Length"),
    "unknown-transfer-encoding": (POST + b"Transfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"),
    "bad-chunk-size": (POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk size"),
    "malformed-header": (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "Invalid header"),
    "control-byte-in-header": (b"GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n", 400, "Invalid header"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_waitress_own_refusals_are_one_line_json(port, case):
    data, status, words = CASES[case]
    line, headers, body = exchange(port, data)
    assert line.split()[1] == str(status), line
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body.count(b"\n") == 1 and body.endswith(b"\n")
    err = json.loads(body)
    assert set(err) == {"error", "hint"} and words in err["error"] and err["hint"]
    assert int(headers["content-length"]) == len(body)


def test_the_refused_bytes_are_escaped_not_echoed(port):
    """A header waitress names in its refusal carries a control byte: the JSON line escapes it."""
    from glint.server.httperrors import error_body

    err = json.loads(error_body(400, "Bad Request", "bad \x1b[31m header\nX: y"))
    assert "\x1b" not in err["error"] and "\n" not in err["error"]


def test_a_well_formed_request_on_the_same_server_is_answered(port):
    line, headers, body = exchange(port, b"GET /v1/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert line.split()[1] == "200" and json.loads(body)["size"] == 0


def test_an_answer_is_one_send_headers_and_body(port, engine, monkeypatch):
    sent: list[bytes] = []
    if engine == "waitress":
        from waitress.channel import HTTPChannel

        real = HTTPChannel.write_soon

        def recording(self, data):
            sent.append(bytes(data))
            return real(self, data)

        monkeypatch.setattr(HTTPChannel, "write_soon", recording)
    else:
        import glint.server.engine as eng

        real_send = eng.send

        def recording_send(conn, data):
            sent.append(bytes(data))
            return real_send(conn, data)

        monkeypatch.setattr(eng, "send", recording_send)
    line, headers, body = exchange(port, b"GET /v1/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert line.split()[1] == "200"
    assert len(sent) == 1 and sent[0].startswith(b"HTTP/1.1 200 ") and sent[0].endswith(body)


def test_an_exception_before_any_header_is_a_json_500(port, engine, monkeypatch):
    """The layer answers 500 itself when it fails before writing a header (a bug in the layer
    under the app): glint's JSON error too."""
    from glint.server.engine import ThreadedServer
    from glint.server.sendonce import OneSendTask

    def broken(self, *args):
        raise RuntimeError("boom")

    if engine == "waitress":
        monkeypatch.setattr(OneSendTask, "execute", broken)
    else:
        monkeypatch.setattr(ThreadedServer, "_environ", broken)
    line, headers, body = exchange(port, b"GET /v1/checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")
    assert line.split()[1] == "500" and headers["content-type"] == "application/json"
    err = json.loads(body)
    assert err["error"].startswith("Internal Server Error") and err["hint"] == "this is a bug in glint serve"
