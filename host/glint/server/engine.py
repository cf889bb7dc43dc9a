"""glint serve's own HTTP/1.1 engine: one thread per connection, waitress's request parser.

waitress runs an event loop in one thread that reads every connection and hands each complete
request to a pool thread, which answers through the loop again (a trigger pipe wakes it): every
request crosses threads three times and the loop turns several times per request (docs/api.md,
issue 15: 0.24-0.30 ms of the loop per upload, loaded). Here each connection has its own thread,
which reads its requests with a blocking ``recv`` (the GIL released), parses them with waitress's
own :class:`waitress.parser.HTTPRequestParser` (the same limits, the same refusals), calls the
WSGI app and sends the answer itself, headers and body in one ``sendall``. A request crosses no
thread of the server's own (the app's ledger hand-off is the app's).

What glint serve adds to waitress holds here too, built in:

- connections: at most ``connection_limit`` open (then the listening socket is not accepted from
  until one closes), at most ``per_address`` from one client address (glint.server.conncap's
  counts, its 503 JSON line and its log note; 0: no cap);
- a connection silent for ``channel_timeout`` is closed; a request (headers and body) must
  arrive within ``deadline_s`` of its first byte, else 408 JSON and closed (glint.server.deadline's
  answer; exact here: each ``recv`` waits at most until the deadline);
- the parser's own refusals (400, 413, 431, 501) and an exception of the app before it started
  its answer (500) are glint's one-line JSON (glint.server.httperrors.error_body), ``Connection:
  close``;
- :meth:`run` serves until :meth:`close` (or an exception in the thread running it: SIGTERM as
  glint.commands.serve raises it); ``effective_port`` is the bound port (port 0 picks one).
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import sys
import threading
import time
from email.utils import formatdate
from typing import Any

from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser
from waitress.task import rename_headers

from glint.server.conncap import _Counts, _host_of
from glint.server.httperrors import error_body

_log = logging.getLogger(__name__)

DRAIN_S = 1.0              # how long a refused connection is read from before it is closed (the client's
                           # close ends it sooner; a slot and a thread are held meanwhile)
DRAIN_BYTES = 1 << 16      # ... and how much of it
_NO_BODY = (204, 304)

# The common request, parsed without waitress's parser (about 60 us of Python a request): a head of
# at most SIMPLE_HEAD_MAX bytes in the strict subset below, its whole body (Content-Length) in the
# same buffer. Anything else (percent-encoded or absolute targets, obs-text, folded, duplicate or
# underscored headers, Transfer-Encoding, Expect, a body still on its way) goes to waitress's
# parser, so every refusal is waitress's; the subset gives exactly the request waitress's parser
# gives (tests/host/server/test_engine.py compares the two).
SIMPLE_HEAD_MAX = 8192
_SIMPLE_LINE = re.compile(rb"([A-Z]+) (/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)(?:\?([A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*))?"
                          rb" HTTP/1\.([01])")
_SIMPLE_HEADER = re.compile(rb"([A-Za-z0-9!#$%&'*+\-.^`|~]+):[ \t]*((?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?)[ \t]*")
_DIGITS = re.compile(rb"[0-9]{1,9}")
NEED_MORE = object()


class SimpleRequest:
    """A request of the strict subset (SIMPLE_HEAD_MAX), with the attributes the engine reads of a
    waitress parser."""

    completed = headers_finished = True
    empty = expect_continue = False
    error = None
    url_scheme = "http"

    def __init__(self, command: str, target: str, path: str, query: str, version: str, headers: dict, body: bytes):
        self.command, self.request_uri, self.path, self.query = command, target, path, query
        self.version, self.headers, self.body = version, headers, body

    def get_body_stream(self):
        return io.BytesIO(self.body)

    def close(self) -> None:
        pass


def parse_simple(buf: bytes):
    """(SimpleRequest, bytes used) for a request of the strict subset at the start of ``buf``;
    NEED_MORE when its head may still be coming; None for waitress's parser."""
    end = buf.find(b"\r\n\r\n", 0, SIMPLE_HEAD_MAX)
    if end < 0:
        return NEED_MORE if len(buf) < SIMPLE_HEAD_MAX and not buf.startswith((b"\r", b"\n")) else None
    lines = buf[:end].split(b"\r\n")
    m = _SIMPLE_LINE.fullmatch(lines[0])
    if m is None:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        h = _SIMPLE_HEADER.fullmatch(line)
        if h is None:
            return None
        key = h[1].upper().replace(b"-", b"_").decode("ascii")
        if key in headers or key in ("TRANSFER_ENCODING", "EXPECT"):
            return None
        headers[key] = h[2].decode("ascii")
    n = 0
    cl = headers.get("CONTENT_LENGTH")
    if cl is not None:
        if not _DIGITS.fullmatch(cl.encode()):
            return None
        n = int(cl)
    used = end + 4 + n
    if len(buf) < used:
        return None
    path = m[2].decode("ascii")
    query = (m[3] or b"").decode("ascii")
    target = path + "?" + query if m[3] is not None else path
    return SimpleRequest(m[1].decode("ascii"), target, path, query, "1." + m[4].decode("ascii"), headers,
                         bytes(buf[end + 4:used])), used


def _head(version: str, status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/{version} {status}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_answer(status: str, body: bytes) -> bytes:
    return _head("1.1", status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                 ("Connection", "close")]) + body


class ThreadedServer:
    """An HTTP/1.1 server for one WSGI app (module docstring). ``run()`` it; ``close()`` it."""

    def __init__(self, app, host: str, port: int, *, connection_limit: int, per_address: int,
                 channel_timeout: float, deadline_s: float, ident: str = "glint", backlog: int = 1024):
        if not deadline_s > 0:
            raise ValueError("the request deadline must be positive")
        self.app = app
        self.adj = Adjustments(host=host, port=port, ident=ident, channel_timeout=channel_timeout)
        self.ident = ident
        self.channel_timeout = float(channel_timeout)
        self.deadline_s = float(deadline_s)
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self.socket = socket.create_server(addr[:2], family=family, backlog=backlog)
        self.effective_host, self.effective_port = self.socket.getsockname()[:2]
        self.server_name = str(self.effective_host)
        self.counts = _Counts(int(per_address)) if per_address > 0 else None
        self.slots = threading.BoundedSemaphore(connection_limit)
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closing = False
        self._base = {"SERVER_PORT": str(self.effective_port), "SERVER_NAME": self.server_name,
                      "SERVER_SOFTWARE": ident, "SCRIPT_NAME": "", "wsgi.version": (1, 0),
                      "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
                      "wsgi.run_once": False, "wsgi.input_terminated": True}

    # -- the accept loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Accept connections until :meth:`close`; each is served by its own thread."""
        while not self.closing:
            self.slots.acquire()
            try:
                conn, addr = self.socket.accept()
            except OSError as e:
                self.slots.release()
                if self.closing:
                    return
                _log.warning("accept failed: %s", e)  # EMFILE and the like: wait a little, keep serving
                time.sleep(0.05)
                continue
            except BaseException:
                self.slots.release()
                raise
            try:
                threading.Thread(target=self._connection, args=(conn, addr), name="glint-conn", daemon=True).start()
            except RuntimeError as e:  # no thread to be had (memory, limits): drop this one, keep serving
                self.slots.release()
                conn.close()
                _log.warning("connection from %s dropped: %s", _host_of(addr), e)
                time.sleep(0.05)
            except BaseException:
                self.slots.release()
                conn.close()
                raise

    def close(self) -> None:
        """Stop accepting and close every open connection (their threads end)."""
        self.closing = True
        for stop in (lambda: self.socket.shutdown(socket.SHUT_RDWR), self.socket.close):
            try:  # shutdown wakes a thread blocked in accept (close alone does not, on Linux)
                stop()
            except OSError:
                pass
        with self.lock:
            conns = list(self.open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- one connection ---------------------------------------------------------------------------

    def _connection(self, conn: socket.socket, addr) -> None:
        host = _host_of(addr)
        held = self.counts.enter(host) if self.counts is not None else 0
        with self.lock:
            self.open.add(conn)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.channel_timeout)  # no send or receive waits longer (each recv sets its own)
            if self.counts is not None and held > self.counts.cap:
                self._refuse(conn, host, held)
            else:
                self._serve(conn, addr)
        except OSError:
            pass  # the client went away
        except Exception:  # a bug in this layer: log it, close the connection, keep serving the others
            _log.exception("connection from %s failed", host)
        finally:
            with self.lock:
                self.open.discard(conn)
            try:
                conn.close()
            finally:
                if self.counts is not None:
                    self.counts.leave(host)
                self.slots.release()

    def _refuse(self, conn: socket.socket, host: str, held: int) -> None:
        """Over the per-address cap: the 503 line, then drain what the client sends (closing on
        unread data would reset the connection before the client read the answer), never parse it."""
        assert self.counts is not None
        self.counts.note_refusal(host, held)
        body = (json.dumps({"error": f"too many connections from {host} (limit {self.counts.cap} per address)",
                            "hint": "reuse connections (keep-alive) or close idle ones"}) + "\n").encode()
        conn.sendall(_json_answer("503 Service Unavailable", body))
        conn.shutdown(socket.SHUT_WR)
        end = time.monotonic() + DRAIN_S
        drained = 0
        while drained < DRAIN_BYTES:
            left = end - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(left)
            try:
                data = conn.recv(8192)
            except socket.timeout:
                return
            if not data:
                return
            drained += len(data)

    def _serve(self, conn: socket.socket, addr) -> None:
        buf = b""
        while not self.closing:
            parser: Any = None  # a waitress HTTPRequestParser or a SimpleRequest
            started: float | None = None
            sent_continue = False
            while True:
                if buf:
                    if started is None:
                        started = time.monotonic()  # the first byte of this request
                    if parser is None:
                        simple = parse_simple(buf)
                        if simple is NEED_MORE:
                            more = self._more(conn, addr, buf, started)
                            if more is None:
                                return
                            buf = more
                            continue
                        if simple is not None:
                            parser, n = simple
                            buf = buf[n:]
                            break
                        parser = HTTPRequestParser(self.adj)
                    n = parser.received(buf)
                    buf = buf[n:]
                    if parser.expect_continue and parser.headers_finished and not sent_continue:
                        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                        sent_continue = True
                    if parser.completed:
                        break
                    if buf:
                        continue
                more = self._more(conn, addr, buf, started)
                if more is None:
                    return
                buf = more
            if parser.empty:
                continue
            if parser.error is not None:
                e = parser.error
                conn.sendall(_json_answer(f"{e.code} {e.reason}", error_body(e.code, e.reason, str(e.body or ""))))
                return
            try:
                keep = self._answer(conn, addr, parser)
            finally:
                parser.close()
            if not keep:
                return

    def _more(self, conn: socket.socket, addr, buf: bytes, started: float | None) -> bytes | None:
        """``buf`` and what the client sends next; None when the connection is to close (silent
        for channel_timeout, or the request's deadline passed: 408 sent, or the client left)."""
        if started is None:
            wait = self.channel_timeout
        else:
            left = self.deadline_s - (time.monotonic() - started)
            if left <= 0:
                self._time_out(conn, addr)
                return None
            wait = min(self.channel_timeout, left)
        conn.settimeout(wait)
        try:
            data = conn.recv(self.adj.recv_bytes)
        except socket.timeout:
            if started is not None and time.monotonic() - started >= self.deadline_s:
                self._time_out(conn, addr)
            return None  # silent for channel_timeout: closed, as waitress closes it
        if not data:
            return None
        return buf + data

    def _time_out(self, conn: socket.socket, addr) -> None:
        _log.warning("request from %s not complete within %.0f s of its first byte: closed", addr, self.deadline_s)
        body = json.dumps({"error": f"request not complete within {self.deadline_s:g} s of its first byte",
                           "hint": "send the whole request at once (headers and body)"}).encode()
        conn.sendall(_json_answer("408 Request Timeout", body))

    def _environ(self, parser: Any, addr) -> dict:
        path = parser.path
        if path.startswith("/"):
            path = "/" + path.lstrip("/")
        environ = dict(self._base)
        environ.update({"REMOTE_ADDR": addr[0], "REMOTE_HOST": addr[0], "REMOTE_PORT": str(addr[1]),
                        "REQUEST_METHOD": parser.command.upper(), "SERVER_PROTOCOL": f"HTTP/{parser.version}",
                        "PATH_INFO": path, "REQUEST_URI": parser.request_uri, "QUERY_STRING": parser.query,
                        "wsgi.url_scheme": parser.url_scheme, "wsgi.input": parser.get_body_stream()})
        for key, value in parser.headers.items():
            k = rename_headers.get(key) or "HTTP_" + key
            if k not in environ:
                environ[k] = value
        return environ

    def _answer(self, conn: socket.socket, addr, parser: Any) -> bool:
        """Run the app for one request and send its answer; whether the connection stays open."""
        version = parser.version if parser.version in ("1.0", "1.1") else "1.0"
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]  # nothing is sent before the app returns: a later call replaces it
            return chunks.append

        chunks: list[bytes] = []
        try:
            result = self.app(self._environ(parser, addr), start_response)
            try:
                for chunk in result:
                    if chunk:
                        chunks.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if not started:
                raise RuntimeError("the app returned without calling start_response")
        except Exception:
            _log.exception("Exception while serving %s", parser.path)
            body = error_body(500, "Internal Server Error", "The server encountered an unexpected internal server error")
            conn.sendall(_json_answer("500 Internal Server Error", body))
            return False
        status, app_headers = started
        body = b"".join(chunks)
        code = int(status.split(" ", 1)[0])
        has_body = not (code < 200 or code in _NO_BODY)
        connection = parser.headers.get("CONNECTION", "").lower()
        headers: list[tuple[str, str]] = []
        length = server = date = None
        app_close = False
        for name, value in app_headers:
            name = "-".join(x.capitalize() for x in name.split("-"))
            if name == "Content-Length":
                if not has_body:
                    continue
                length = value
            elif name == "Server":
                server = value
            elif name == "Date":
                date = value
            elif name == "Connection" and value.lower() == "close":
                app_close = True
            headers.append((name, value))
        if length is None and has_body:
            length = str(len(body))
            headers.append(("Content-Length", length))
        if version == "1.0":
            keep = connection == "keep-alive" and not app_close
            if keep:
                headers.append(("Connection", "Keep-Alive"))
        else:
            keep = connection != "close" and not app_close
        if not keep and not app_close:
            headers.append(("Connection", "close"))
        headers.append(("Via", self.ident) if server else ("Server", self.ident))
        if not date:
            headers.append(("Date", formatdate(usegmt=True)))
        headers.sort(key=lambda h: h[0])
        if parser.command.upper() == "HEAD" or not has_body:
            body = b""
        elif length is not None and int(length) != len(body):
            _log.error("the app answered %d bytes for Content-Length %s (%s): closed", len(body), length, parser.path)
            keep = False
        send(conn, _head(version, status, headers) + body)
        return keep


def send(conn: socket.socket, data: bytes) -> None:
    """One answer, headers and body, in one call (tests record it)."""
    conn.sendall(data)
