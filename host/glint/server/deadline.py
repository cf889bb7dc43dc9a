"""A whole-request deadline for waitress: headers and body within N seconds of the first byte.

waitress closes a connection that is silent for ``channel_timeout`` (glint.server), but a
client that trickles one byte every few seconds is never silent that long and could hold a
connection open indefinitely (1000 such connections exhaust the server). A channel of
:class:`DeadlineChannel` notes when the first byte of each request arrives; if the request
(headers and body) is not complete ``deadline_s`` later, it answers ``408`` with glint's
JSON error and closes the connection. The server's maintenance (:func:`check_deadlines`, run by
waitress every ``cleanup_interval``, glint.server.CLEANUP_INTERVAL_S = 1 s, beside its idle
timeout) looks at every channel, so the deadline holds to about a second. It is not checked in
the channel's ``readable()``: the event loop asks that of every open channel on every turn, a
few times per request, where the check cost more than the whole deadline needs.
Time spent running a request (the app, the ledger) does not count: only receiving it.
"""

from __future__ import annotations

import json
import logging
import time

from waitress.channel import HTTPChannel

from glint.server import REQUEST_DEADLINE_S

_log = logging.getLogger(__name__)


class DeadlineChannel(HTTPChannel):
    """waitress's HTTP channel with a receive deadline per request (module docstring)."""

    deadline_s = REQUEST_DEADLINE_S
    request_started: float | None = None

    def received(self, data):
        if data and self.request is None:
            self.request_started = time.monotonic()  # the first byte of a new request
        r = super().received(data)
        if self.request is None:
            self.request_started = None  # complete (or nothing pending)
        return r

    def check_deadline(self, now: float) -> None:
        """Answer 408 and close if the request being received started more than ``deadline_s`` ago."""
        started = self.request_started
        if (started is not None and not self.requests and not self.will_close and not self.close_when_flushed
                and now - started > self.deadline_s):
            self._time_out()

    def _time_out(self) -> None:
        _log.warning("request from %s not complete within %.0f s of its first byte: closed", self.addr, self.deadline_s)
        body = json.dumps({"error": f"request not complete within {self.deadline_s:g} s of its first byte",
                           "hint": "send the whole request at once (headers and body)"}).encode()
        head = (f"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode("ascii")
        with self.requests_lock:
            self.request = None
            self.request_started = None
        with self.outbuf_lock:
            self.outbufs[-1].append(head + body)
            self.current_outbuf_count += len(head) + len(body)
            self.total_outbufs_len += len(head) + len(body)
        self.close_when_flushed = True


def with_deadline(deadline_s: float) -> type[DeadlineChannel]:
    """A DeadlineChannel class with its own deadline (one per server)."""
    if not deadline_s > 0:
        raise ValueError("the request deadline must be positive")
    return type("DeadlineChannel", (DeadlineChannel,), {"deadline_s": float(deadline_s)})


def check_deadlines(server) -> None:
    """Make waitress's ``server.maintenance`` (its idle-connection sweep) check every channel's
    receive deadline too."""
    sweep = server.maintenance

    def maintenance(now):
        sweep(now)
        mono = time.monotonic()
        for channel in list(server.active_channels.values()):
            check = getattr(channel, "check_deadline", None)
            if check is not None:
                check(mono)

    server.maintenance = maintenance
