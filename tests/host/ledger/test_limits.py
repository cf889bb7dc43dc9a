"""Appends enforce every limit reads enforce (issue 15): a leaf the readers would refuse, a time
they cannot show, a fap a certificate cannot carry are refused before anything is stored."""

from __future__ import annotations

import pytest

from glint.errors import UsageError
from glint.ledger import events as ev


@pytest.mark.parametrize("kind, data, t, words", [
    ("service", {"action": "clean", "note": "x" * 200_000}, None, "at most"),
    ("service", {"action": "clean"}, 10 ** 23, "Unix seconds"),
    ("service", {"action": "clean"}, -1, "Unix seconds"),
    ("service", {"action": "clean"}, 1.5e9, "Unix seconds"),
    ("verify", {"res": "pass", "fap": "1e-70"}, None, "fap must be a number"),
    ("verify", {"res": "pass", "fap": float("nan")}, None, "fap must be a number"),
    ("verify", {"res": "pass", "fap": 2.0}, None, "fap must be a number"),
    ("service", {"action": "clean", "by": {"a": [[[[[1]]]]]}}, None, "nested"),
    ("service", {"action": "clean", "note": float("nan")}, None, "NaN"),
    ("service", {"action": "clean", "note": 1 << 70}, None, "out of range"),
])
def test_refused_before_anything_is_stored(ledger, kind, data, t, words):
    ledger.register_item("acme:L-1", "ACME")
    size = ledger.size
    with pytest.raises(UsageError, match=words):
        ledger.append_event(kind, "acme:L-1", data, time=t)
    assert ledger.size == size
    assert ledger.verify().ok and len(ledger.item("acme:L-1").events) == 1


def test_a_leaf_over_the_read_limit_is_refused(ledger):
    ledger.register_item("acme:L-2", "ACME")
    parts = {f"p{i}": "y" * 1000 for i in range(70)}  # each field allowed, the leaf too large
    with pytest.raises(UsageError, match="larger than a leaf may be"):
        ledger.append_event("passport", "acme:L-2", {"set": parts, "aud": "public"})  # public: in the leaf
    with pytest.raises(UsageError, match="sealed values .* larger than"):
        ledger.append_event("passport", "acme:L-2", {"set": parts})  # sealed: beside the leaf, the same limit
    assert ledger.verify().ok
    assert ev.MAX_LEAF_BYTES == 64 * 1024
