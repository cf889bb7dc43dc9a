"""Leaf encoding: the fast encoder is byte-identical to glintcore.cbor (deterministic CBOR)."""

from __future__ import annotations

from glintcore import cbor
from hypothesis import given, settings
from hypothesis import strategies as st

from glint.ledger.events import decode_leaf, dumps, encode_leaf

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=30), st.binary(max_size=40))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.text(max_size=30), inner, max_size=5),
    st.dictionaries(st.one_of(st.integers(-300, 300), st.text(max_size=3)), inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(values)
def test_dumps_matches_reference(obj):
    assert dumps(obj) == cbor.dumps(obj)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**63), st.text(min_size=1, max_size=40), st.integers(0, 2**40),
       st.one_of(st.none(), st.binary(min_size=32, max_size=32)), st.integers(0, 2**40),
       st.dictionaries(st.text(max_size=8), scalars, max_size=5))
def test_encode_leaf_matches_reference(index, item, seq, prev, t, data):
    raw = encode_leaf(index, "verify", item, seq, prev, t, data)
    assert raw == cbor.dumps({"v": 1, "i": index, "k": "verify", "item": item, "n": seq,
                              "prev": prev, "t": t, "d": data})
    if (seq == 0) == (prev is None) and seq != 0:
        assert decode_leaf(raw).raw == raw
