"""Deterministic CBOR: RFC 8949 appendix A, deterministic rules, ill-formed input, fuzzing, cbor2 parity."""

from __future__ import annotations

import json
import math
import random

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


# Property tests run twice over: hypothesis (edge-biased draws, shrinking) and a seeded plain loop over
# many more inputs, because hypothesis costs a few ms an example and the code under test microseconds.
# The default run keeps a tenth of the hypothesis examples (the full count under -m slow) and gains
# the loop, so it checks more inputs than before, in a fraction of the time.
FUZZ_EXAMPLES = 1_000  # hypothesis examples of each fuzz test in the default run
FUZZ_EXAMPLES_SLOW = 10_000  # ... under -m slow
FUZZ_SEEDED = 20_000  # seeded inputs of each fuzz loop
ROUNDTRIP_EXAMPLES, ROUNDTRIP_EXAMPLES_SLOW, ROUNDTRIP_SEEDED = 150, 600, 2_000
_FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck))


def _roundtrip(value):
    enc = cbor.dumps(value)
    assert cbor.loads(enc) == value
    assert cbor.canonical(enc) == value
    assert cbor2.loads(enc) == value
    if not _has_map(value) and not _has_half_max(value):  # map order differs from cbor2's RFC 7049 order, see above
        assert enc == cbor2.dumps(value, canonical=True)


def _has_half_max(v):
    """cbor2's canonical encoder writes +-65504.0, the largest half float, as a single (fa477fe000);
    RFC 8949 appendix A has f97bff, which glint writes (test_appendix_a)."""
    if isinstance(v, float):
        return abs(v) == 65504.0
    return isinstance(v, list) and any(_has_half_max(x) for x in v)


@settings(max_examples=ROUNDTRIP_EXAMPLES, deadline=None)
@given(json_like)
def test_roundtrip_matches_cbor2_canonical(value):
    _roundtrip(value)


@pytest.mark.slow
@settings(max_examples=ROUNDTRIP_EXAMPLES_SLOW, deadline=None)
@given(json_like)
def test_roundtrip_matches_cbor2_canonical_long(value):
    _roundtrip(value)


def _json_like(rnd, depth=0):
    """A value of json_like's kinds (its sizes and key types), drawn from ``rnd``."""
    k = rnd.randrange(8 if depth < 3 else 6)
    if k == 0:
        return rnd.choice([None, True, False])
    if k == 1:
        return rnd.randrange(-(2**70), 2**70 + 1) >> rnd.randrange(71)
    if k == 2:
        return rnd.randbytes(rnd.randrange(41))
    if k == 3:
        return "".join(rnd.choice("az\x00\x7f\u00e9\u07ff\u20ac\uffff\U0001f600") for _ in range(rnd.randrange(21)))
    if k == 4:
        return rnd.choice([0.0, -0.0, 1.5, 65504.0, 1e-300, 1e300, float("inf"), -float("inf"), rnd.uniform(-1e9, 1e9)])
    if k == 5:
        return rnd.uniform(-1, 1) * 10.0 ** rnd.randrange(-320, 308)
    if k == 6:
        return [_json_like(rnd, depth + 1) for _ in range(rnd.randrange(6))]
    keys = [rnd.randrange(-1000, 1001) if rnd.random() < 0.5 else "".join(rnd.choice("ab\u00e9") for _ in range(
        rnd.randrange(9))) for _ in range(rnd.randrange(6))]
    return {key: _json_like(rnd, depth + 1) for key in keys}


def test_roundtrip_matches_cbor2_canonical_seeded():
    rnd = random.Random(8949)
    for _ in range(ROUNDTRIP_SEEDED):
        value = _json_like(rnd)
        try:
            _roundtrip(value)
        except Exception as e:
            raise AssertionError("value %r" % (value,)) from e


def _has_map(v):
    if isinstance(v, dict):
        return True
    return isinstance(v, list) and any(_has_map(x) for x in v)


def _decode_any(data):
    """Any bytes decode or raise DecodeError, nothing else."""
    try:
        cbor.loads(data)
    except DecodeError:
        pass


def _seeded(rnd, n, make, check):
    """``n`` inputs from ``make(rnd)`` through ``check``; a failure names its input."""
    for _ in range(n):
        args = make(rnd)
        try:
            check(*args)
        except Exception as e:
            raise AssertionError("input %r" % (args,)) from e


# initial bytes at every major type's boundaries (ai 0, 23, 24..27, reserved 28, indefinite 31), break, floats
EDGE_BYTES = bytes(sorted({mt << 5 | ai for mt in range(8) for ai in (0, 23, 24, 25, 26, 27, 28, 31)}))


def _random_bytes(rnd):
    n = rnd.randrange(rnd.choice((3, 10, 65)))  # mostly short, up to 64 bytes as the hypothesis test
    return (bytes(rnd.choice(EDGE_BYTES) if rnd.random() < 0.3 else rnd.randrange(256) for _ in range(n)),)


@settings(max_examples=FUZZ_EXAMPLES, **_FUZZ)
@given(st.binary(max_size=64))
def test_fuzz_decoder_random_bytes(data):
    _decode_any(data)


@pytest.mark.slow
@settings(max_examples=FUZZ_EXAMPLES_SLOW, **_FUZZ)
@given(st.binary(max_size=64))
def test_fuzz_decoder_random_bytes_long(data):
    _decode_any(data)


def test_fuzz_decoder_random_bytes_seeded():
    _seeded(random.Random(64), FUZZ_SEEDED, _random_bytes, _decode_any)


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


def _mutated_decodes(valid, op, pos, byte):
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


_MUTATION = (st.sampled_from(VALID_POOL), st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255))


@settings(max_examples=FUZZ_EXAMPLES, **_FUZZ)
@given(*_MUTATION)
def test_fuzz_decoder_mutated_valid(valid, op, pos, byte):
    _mutated_decodes(valid, op, pos, byte)


@pytest.mark.slow
@settings(max_examples=FUZZ_EXAMPLES_SLOW, **_FUZZ)
@given(*_MUTATION)
def test_fuzz_decoder_mutated_valid_long(valid, op, pos, byte):
    _mutated_decodes(valid, op, pos, byte)


def test_fuzz_decoder_mutated_valid_seeded():
    _seeded(random.Random(8949), FUZZ_SEEDED,
            lambda r: (r.choice(VALID_POOL), r.randrange(4), r.randrange(10_001), r.randrange(256)), _mutated_decodes)


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
