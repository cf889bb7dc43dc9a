"""A per-address connection cap for waitress: one client address may hold at most N connections.

waitress's ``connection_limit`` (glint.server.CONNECTION_LIMIT) is one pool for every client:
a single address opening connection after connection (half-sent requests, idle keep-alives)
could fill it and lock everybody else out. A channel of :class:`CappedChannel` counts the
open connections of its client address; a connection beyond the cap is answered at once
with one line of JSON (``503``, ``Connection: close``) and closed, without reading a request
from it, and the refusal is logged with the address (at most once per LOG_EVERY_S per
address, with the number refused meanwhile). Closing a connection frees its slot.

The cap is ``[limits] connections_per_address`` in ``<home>/config.toml`` (default
DEFAULT_PER_ADDRESS; 0: no cap). Behind a reverse proxy every connection comes from the
proxy's address, so ``glint serve --behind-tls-proxy`` applies no cap unless one is
configured (the proxy limits its clients).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from waitress.channel import HTTPChannel

_log = logging.getLogger(__name__)

# Generous for a mail-in bench behind NAT (a few hosts, each with a daemon, scanner threads
# and browsers of a few connections each), small beside the server's 1000 connections.
DEFAULT_PER_ADDRESS = 64
LOG_EVERY_S = 10.0


class _Counts:
    """Open connections per client address (shared by every channel of one server)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.open: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.logged: dict[str, float] = {}
        self.lock = threading.Lock()

    def enter(self, host: str) -> int:
        with self.lock:
            n = self.open.get(host, 0) + 1
            self.open[host] = n
            return n

    def leave(self, host: str) -> None:
        with self.lock:
            n = self.open.get(host, 0) - 1
            if n > 0:
                self.open[host] = n
            else:
                self.open.pop(host, None)

    def note_refusal(self, host: str, held: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.refused[host] = self.refused.get(host, 0) + 1
            if now - self.logged.get(host, -LOG_EVERY_S) < LOG_EVERY_S:
                return
            self.logged[host] = now
            if len(self.logged) > 10000:  # an address sweep: forget the oldest marks
                self.logged.clear()
            n = self.refused.pop(host)
        _log.warning("connection from %s refused: it holds %d connections (limit %d per address, [limits] "
                     "connections_per_address); %d refused since the last note", host, held - 1, self.cap, n)


def _always() -> bool:
    return True


def _host_of(addr) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)


class CappedChannel(HTTPChannel):
    """A waitress channel counted against its client address (module docstring). Mixed in
    before the server's other channel class by :func:`with_cap`."""

    counts: _Counts
    _glint_host: str | None = None
    _glint_refused = False

    def __init__(self, server, sock, addr, adj, map=None):
        host = _host_of(addr)
        held = self.counts.enter(host)
        self._glint_host = host
        try:
            super().__init__(server, sock, addr, adj, map=map)
        except BaseException:
            self._leave()
            raise
        if held > self.counts.cap:
            self._refuse(held)

    def _refuse(self, held: int) -> None:
        self._glint_refused = True
        self.counts.note_refusal(self._glint_host or "?", held)
        body = (json.dumps({"error": f"too many connections from {self._glint_host} (limit {self.counts.cap} "
                                     "per address)", "hint": "reuse connections (keep-alive) or close idle ones"})
                + "\n").encode()
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                "\r\nConnection: close\r\n\r\n").encode("ascii")
        with self.outbuf_lock:
            self.outbufs[-1].append(head + body)
            self.current_outbuf_count += len(head) + len(body)
            self.total_outbufs_len += len(head) + len(body)
        self.close_when_flushed = True
        # Drain what the client sends (closing on unread data would reset the connection before the
        # client read the 503), never parse it. On this channel only: every other channel keeps
        # waitress's own readable(), which the event loop asks of every channel on every turn.
        self.readable = _always

    def received(self, data):
        if self._glint_refused:
            return len(data)
        return super().received(data)

    def del_channel(self, map=None):
        super().del_channel(map)
        self._leave()

    def _leave(self) -> None:
        host, self._glint_host = self._glint_host, None
        if host is not None:  # once per connection, however often the channel is closed
            self.counts.leave(host)


def with_cap(channel: type[HTTPChannel], cap: int) -> type[HTTPChannel]:
    """``channel`` with a cap of ``cap`` open connections per client address (0: ``channel`` itself)."""
    if cap <= 0:
        return channel
    return type("CappedChannel", (CappedChannel, channel), {"counts": _Counts(int(cap))})
