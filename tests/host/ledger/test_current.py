"""Ledger.current: the writer's cached item state, what an upload's pre-checks read (glint.server.uploads'
organization check replayed the item's whole history per upload: 5 ms an upload at 250 events)."""

from __future__ import annotations

import pytest

from glint.errors import UsageError
from glint.ledger import Keys, Ledger


def test_current_is_the_writers_state_without_a_replay(tmp_path):
    led = Ledger.open(tmp_path / "ledger.db", keys=Keys.load(tmp_path, create=True), durable=False)
    try:
        led.register_item("acme:C-1", "ACME")
        reads: list[str] = []
        item_leaves = led.store.item_leaves

        def counted(item):
            reads.append(item)
            return item_leaves(item)

        led.store.item_leaves = counted  # type: ignore[method-assign]
        for i in range(5):
            led.service("acme:C-1", f"clean {i}")
            st = led.current("acme:C-1")
            assert st is not None and st.events[-1].seq == i + 1
        assert reads == []  # neither the appends nor current() read the item's history
        full = led.item("acme:C-1")
        assert (st.org, st.state, st.owner) == (full.org, full.state, full.owner) and reads == ["acme:C-1"]
        assert led.current("acme:NOPE") is None
        with pytest.raises(UsageError):
            led.current("not an id\n")
    finally:
        led.close()
