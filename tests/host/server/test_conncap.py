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
