"""The per-address connection cap's configuration (the cap itself runs against a real `glint serve`
in tests/e2e/test_serve_limits.py::test_half_sent_requests_do_not_lock_out_other_clients)."""

from __future__ import annotations

import pytest

from glint.errors import UsageError
from glint.server import conncap, limits
from glint.server.deadline import with_deadline


def test_connections_per_address_is_a_whole_number_and_zero_means_no_cap():
    assert limits.connections_per_address({}) is None
    assert limits.connections_per_address({"connections_per_address": 0}) == 0
    assert limits.connections_per_address({"connections_per_address": 8}) == 8
    for bad in (-1, 2.5, True, "8"):
        with pytest.raises(UsageError, match="connections_per_address must be a whole number"):
            limits.connections_per_address({"connections_per_address": bad})
    assert limits.configured({"connections_per_address": 8}) == limits.DEFAULTS  # not a rate: read by the server
    with pytest.raises(UsageError, match="connection_cap is not a limit") as e:
        limits.configured({"connection_cap": 8})
    assert "connections_per_address" in e.value.hint  # named among the known limits
    channel = with_deadline(5)
    assert conncap.with_cap(channel, 0) is channel
    capped = conncap.with_cap(channel, 3)
    assert issubclass(capped, channel) and capped.counts.cap == 3
    assert conncap.with_cap(channel, 3).counts is not capped.counts  # one count per server


def test_counts_free_their_slots():
    c = conncap._Counts(2)
    assert [c.enter("a"), c.enter("a"), c.enter("b"), c.enter("a")] == [1, 2, 1, 3]
    c.leave("a")
    c.leave("a")
    c.leave("a")
    c.leave("b")
    assert c.open == {}


def test_the_deadline_is_checked_in_the_servers_sweep_and_no_channel_wraps_readable():
    """The event loop asks readable() of every channel on every turn: neither the deadline nor the cap
    wraps it (a refused connection alone drains); waitress's sweep (``maintenance``) answers 408."""
    import socket
    import time

    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel

    from glint.server.deadline import check_deadlines

    channel = conncap.with_cap(with_deadline(5), 1)
    assert channel.readable is HTTPChannel.readable

    class Server:
        active_channels: dict = {}
        swept: list = []

        def add_task(self, ch):
            pass

        def maintenance(self, now):
            self.swept.append(now)

    srv = Server()
    check_deadlines(srv)
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        ch = channel(srv, a, ("10.0.0.1", 1), Adjustments(), map={})
        over = channel(srv, c, ("10.0.0.2", 2), Adjustments(), map={})
        over2 = channel(srv, d, ("10.0.0.2", 3), Adjustments(), map={})  # the address's second: refused
        assert not over._glint_refused and over2._glint_refused and over2.readable() and not over.requests
        srv.active_channels.update({1: ch, 2: over})
        ch.received(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        srv.maintenance(1.0)
        assert srv.swept == [1.0] and not ch.close_when_flushed  # within its deadline
        ch.request_started = time.monotonic() - 6
        srv.maintenance(2.0)
        assert ch.close_when_flushed and not over.close_when_flushed
        assert bytes(ch.outbufs[-1].get()).startswith(b"HTTP/1.1 408 ")
    finally:
        for s in (a, b, c, d):
            s.close()
