"""The HTTP ledger API of a glint host (server) and its urllib client.

Server: :func:`make_server` serves the Flask app of :mod:`glint.server.app` (``glint serve``)
on glint's own HTTP engine (:mod:`glint.server.engine`: a thread per connection, waitress's
request parser; the default) or on waitress (``engine="waitress"``, ``glint serve --engine
waitress``: its event loop and request threads, with glint.server.conncap, .deadline,
.httperrors and .sendonce around it). Both keep the same protections (docs/api.md, docs/security.md).
Client: :class:`glint.server.client.RemoteLedger` (stdlib urllib only).
The API is documented in docs/api.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from glint.address import parse_listen as parse_listen  # re-exported: the one HOST:PORT parser

_log = logging.getLogger(__name__)

SERVER_THREADS = 16         # waitress engine: request threads (parse, authenticate, wait for the group commit);
                            # ledger work is one thread. The threads engine has one thread per connection
CHANNEL_TIMEOUT_S = 10      # a connection silent this long is closed (idle keep-alive, half-sent requests)
CONNECTION_LIMIT = 1000     # open connections before new ones wait (waitress's default of 100 let 150
                            # half-sent requests lock every other client out)
CLEANUP_INTERVAL_S = 1      # how often silent connections and request deadlines are looked at
# A request (headers and body) must arrive within this many seconds of its first byte, else 408 and
# closed: a client trickling a byte every few seconds is never silent for CHANNEL_TIMEOUT_S
# (glint.server.deadline). 1 MiB (the largest body) at ~35 KB/s; an event with its scan is a few KB.
REQUEST_DEADLINE_S = 30.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")


SERVER_CPUS = 1             # CPUs the server process runs on (glint serve --cpus; 0: all it may use)
# How long a thread holds the GIL before one waiting is let in (sys.setswitchinterval; Python's default
# 5 ms). The server's threads wait on sockets, the group commit and each other: at 5 ms a woken thread
# could wait a whole interval behind the ledger thread. 0.5 ms: server CPU per upload 0.53-0.58 ->
# 0.395-0.425 ms, events/s 660-1,087 -> 874-1,227 (interleaved, load 18; 0.2 ms was worse; docs/api.md).
SWITCH_INTERVAL_S = 0.0005


def pin_cpus(n: int) -> list[int] | None:
    """Run this process's threads from now on on ``n`` of the CPUs it may use (0: leave them all).

    The server is one Python process whose threads take turns on the GIL; on an idle 2-core
    machine they were handed from core to core on every turn, which doubled its CPU per request
    and gave 40 ms stalls (8 clients, single-event uploads: 430 events/s on both cores, 1,340-1,600
    pinned to one; docs/api.md). Threads started after the call inherit it, so call it before
    make_server. Returns the CPUs in use, or None where the platform cannot pin (not Linux)."""
    import os

    if n < 0:
        raise ValueError(f"cpus {n} is negative")
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if n == 0 or n >= len(allowed):
        return allowed
    os.sched_setaffinity(0, allowed[-n:])
    _log.info("serving on CPU(s) %s of %s", allowed[-n:], allowed)
    return allowed[-n:]


def is_loopback(host: str) -> bool:
    import ipaddress

    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, behind_proxy: bool) -> None:
    """Refuse a non-loopback address unless a TLS-terminating proxy is in front (API keys travel in headers)."""
    from glint.errors import UsageError

    if not is_loopback(host) and not behind_proxy:
        raise UsageError(f"refusing to serve on {host} without TLS: API keys and scans would travel in clear",
                         "listen on 127.0.0.1 behind a TLS reverse proxy, or pass --behind-tls-proxy "
                         "when one terminates TLS in front of this address")


ENGINES = ("threads", "waitress")
DEFAULT_ENGINE = "threads"


def make_server(home: str | Path, host: str, port: int, ledger_path: str | Path | None = None,
                request_deadline_s: float = REQUEST_DEADLINE_S, behind_proxy: bool = False,
                engine: str = DEFAULT_ENGINE):
    """A server bound to (host, port) serving the ledger of ``home``; call ``.run()``.

    ``engine``: ``threads`` (glint.server.engine.ThreadedServer, the default) or ``waitress``.
    ``request_deadline_s``: a request's headers and body must all arrive within this long of
    its first byte (glint.server.deadline), else 408 and the connection is closed.
    Connections per client address are capped (glint.server.conncap: ``[limits]
    connections_per_address``, default 64; none ``behind_proxy`` unless configured).

    ``server.effective_port`` is the bound port (useful with port 0). Call
    ``server.glint_close()`` after it stops to release the ledger.
    """
    from waitress.server import create_server

    from glint.home import Home
    from glint.server.app import create_app
    from glint.server.conncap import DEFAULT_PER_ADDRESS, with_cap
    from glint.server.deadline import check_deadlines, with_deadline
    from glint.server.httperrors import with_json_errors
    from glint.server.limits import connections_per_address
    from glint.server.sendonce import with_one_send

    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    cap = connections_per_address(Home(home).section("limits"))
    if cap is None:
        cap = 0 if behind_proxy else DEFAULT_PER_ADDRESS
    if engine == "threads":
        from glint.server.engine import ThreadedServer

        if not request_deadline_s > 0:
            raise ValueError("the request deadline must be positive")
        app = create_app(home, ledger_path)
        try:
            server = ThreadedServer(app, host, port, connection_limit=CONNECTION_LIMIT, per_address=cap,
                                    channel_timeout=CHANNEL_TIMEOUT_S, deadline_s=request_deadline_s, ident="glint")
        except BaseException:
            app.glint_close()
            raise
        server.glint_close = app.glint_close  # type: ignore[attr-defined]
        return server
    channel = with_one_send(with_json_errors(with_cap(with_deadline(request_deadline_s), cap)))
    app = create_app(home, ledger_path)
    server = create_server(app, host=host, port=port, threads=SERVER_THREADS,
                           channel_timeout=CHANNEL_TIMEOUT_S, connection_limit=CONNECTION_LIMIT,
                           cleanup_interval=CLEANUP_INTERVAL_S, ident="glint")
    server.channel_class = channel  # every connection: the whole-request deadline, the cap, JSON errors, one send
    check_deadlines(server)  # the deadline, checked in waitress's once-a-second sweep (glint.server.deadline)
    server.glint_close = app.glint_close
    return server
