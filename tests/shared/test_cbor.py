"""Deterministic CBOR: RFC 8949 appendix A, deterministic rules, ill-formed input, fuzzing, cbor2 parity."""

from __future__ import annotations

import json
import math

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glintcore import cbor
from glintcore.errors import DecodeError

from glinttest import CBOR_ILL_FORMED as ILL_FORMED, vector_params


def appendix_a():
    return vector_params(lambda v: json.loads((v / "cbor_rfc8949_appendix_a.json").read_text()), ids=lambda v: v["hex"])


def _same(a, b):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return a == b and type(a) is type(b) or (isinstance(a, float) and isinstance(b, (int, float)) and a == b)


@pytest.mark.parametrize("vec", appendix_a())
def test_appendix_a(vec):
    data = bytes.fromhex(vec["hex"])
    value = cbor.loads(data)
    if "decoded" in vec:
        exp = vec["decoded"]
        if isinstance(exp, float) and math.isnan(exp):
            assert math.isnan(value)
        else:
            assert value == exp
    if vec["roundtrip"]:
        assert cbor.dumps(value) == data
    # cbor2 (independent implementation) agrees on the decoded value
    other = cbor2.loads(data)
    semantic = isinstance(value, (cbor.Tag, cbor.Simple)) or value is cbor.undefined  # cbor2 maps tags to types
    if not semantic:
        if isinstance(other, float) and math.isnan(other):
            assert math.isnan(value)
        else:
            assert value == other




@pytest.mark.parametrize("name", sorted(ILL_FORMED))
def test_ill_formed_rejected(name):
    with pytest.raises(DecodeError) as e:
        cbor.loads(bytes.fromhex(ILL_FORMED[name]))
    assert str(e.value).startswith("cbor: ")


def test_nesting_limit():
    deep = b"\x81" * 40 + b"\x00"
    with pytest.raises(DecodeError, match="nesting"):
        cbor.loads(deep)
    assert cbor.loads(b"\x81" * 10 + b"\x00", max_depth=16) == [[[[[[[[[[0]]]]]]]]]]


def test_deterministic_map_key_order():
    # keys sort by their encoded bytes: shorter encodings first, then bytewise
    # (RFC 8949 section 4.2.1). cbor2's canonical=True uses RFC 7049's length-first order,
    # which differs: there -1 (0x20) sorts before 100 (0x18 0x64).
    d = {"aa": 1, 100: 2, -1: 3, "b": 4, 10: 5, b"x": 6}
    enc = cbor.dumps(d)
    assert list(cbor.loads(enc)) == [10, 100, -1, b"x", "b", "aa"]
    assert enc[1:4] == bytes([0x0A, 0x05, 0x18])
    assert cbor2.loads(enc) == d


def test_preferred_lengths_and_floats():
    assert cbor.dumps(23) == b"\x17"
    assert cbor.dumps(24) == b"\x18\x18"
    assert cbor.dumps(2**32) == bytes.fromhex("1b0000000100000000")
    assert cbor.dumps(1.5) == bytes.fromhex("f93e00")
    assert cbor.dumps(100000.0) == bytes.fromhex("fa47c35000")
    assert cbor.dumps(1.1) == bytes.fromhex("fb3ff199999999999a")
    assert cbor.dumps(-0.0) == bytes.fromhex("f98000")
    assert cbor.dumps(float("nan")) == bytes.fromhex("f97e00")
    assert cbor.dumps(2**64) == bytes.fromhex("c249010000000000000000")


def test_canonical_refuses_non_preferred():
    assert cbor.canonical(bytes.fromhex("a201020304")) == {1: 2, 3: 4}
    for hx in ("1817", "a203040102", "9f01ff", "f93c00"[:0] + "fa3f800000"):
        with pytest.raises(DecodeError, match="deterministic"):
            cbor.canonical(bytes.fromhex(hx))


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.binary(max_size=40) | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.integers(-1000, 1000) | st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(json_like)
def test_roundtrip_matches_cbor2_canonical(value):
    enc = cbor.dumps(value)
    assert cbor.loads(enc) == value
    assert cbor.canonical(enc) == value
    assert cbor2.loads(enc) == value
    if not _has_map(value):  # map order differs from cbor2's RFC 7049 order, see above
        assert enc == cbor2.dumps(value, canonical=True)


def _has_map(v):
    if isinstance(v, dict):
        return True
    return isinstance(v, list) and any(_has_map(x) for x in v)


FUZZ_EXAMPLES = 10_000


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=64))
def test_fuzz_decoder_random_bytes(data):
    try:
        cbor.loads(data)
    except DecodeError:
        pass


def _valid_pool(n=300, seed=1234):
    """Deterministic valid encodings of varied shape to mutate (cheap to draw from)."""
    import random

    rnd = random.Random(seed)

    def gen(depth):
        k = rnd.randrange(9 if depth < 3 else 6)
        if k == 0:
            return rnd.randrange(-(2**66), 2**66) >> rnd.randrange(66)
        if k == 1:
            return rnd.randbytes(rnd.randrange(30))
        if k == 2:
            return "".join(rnd.choice("ab\u00e9\u20ac\U0001f600") for _ in range(rnd.randrange(8)))
        if k == 3:
            return rnd.choice([None, True, False, 1.5, -0.0, 1e300, float("inf")])
        if k == 4:
            return cbor.Tag(rnd.randrange(30), rnd.randrange(1000))
        if k == 5:
            return rnd.random()
        if k in (6, 7):
            return [gen(depth + 1) for _ in range(rnd.randrange(5))]
        return {rnd.randrange(-50, 50): gen(depth + 1) for _ in range(rnd.randrange(5))}

    return [cbor.dumps(gen(0)) for _ in range(n)]


VALID_POOL = _valid_pool()


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(VALID_POOL), st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255))
def test_fuzz_decoder_mutated_valid(valid, op, pos, byte):
    enc = bytearray(valid)
    i = pos % len(enc)
    if op == 0:
        enc[i] ^= 1 << (byte & 7)
    elif op == 1:
        del enc[i:]
    elif op == 2:
        enc.insert(i, byte)
    else:
        enc[i] = (0x1C, 0x1F, 0x5F, 0x9F, 0xBF, 0xFF, 0xF8, 0x1B, 0x9B)[byte % 9]
    try:
        out = cbor.loads(bytes(enc))
    except DecodeError:
        return
    cbor.dumps(out)  # whatever decoded is a real value that encodes again


@pytest.mark.parametrize("hexdata", ["a2f97e0001f97e0002", "a1f97e0001", "a1fb7ff8000000000000f6"])
def test_nan_map_keys_are_decode_errors(hexdata):
    # NaN != NaN: two NaN keys would pass a duplicate check and then break re-encoding (ValueError).
    with pytest.raises(DecodeError, match="NaN"):
        cbor.loads(bytes.fromhex(hexdata))
    with pytest.raises(DecodeError):
        cbor.canonical(bytes.fromhex(hexdata))


def test_canonical_raises_only_decode_error_on_keys_that_collide_when_encoded():
    # {1: 1, 1.5: 2} is fine; a Tag key whose content is unhashable-by-value must still end as DecodeError
    assert cbor.canonical(cbor.dumps({1: 1, 1.5: 2})) == {1: 1, 1.5: 2}
    with pytest.raises(DecodeError):
        cbor.canonical(bytes.fromhex("a2c1f93c0001c1f93c0002"))  # Tag(1, 1.0) twice (hashes by repr): duplicate
