from __future__ import annotations

import pytest

from glintcore import cbor, cose, descriptor as D, p256
from glintcore.errors import DecodeError


def sample(n_spots=64, nonce=b"N" * 16):
    recs = [(((i * 37) % 600) * 32 + i % 32, ((i * 53) % 460) * 32, 255 - i * 2) for i in range(n_spots)]
    return D.make(b"\x10\x20\x30\x40\x50\x60\x70\x80", 123456, "0.1.0", "xiao_esp32s3_sense", 640, 480,
                  {D.Q_SPOTS: 80, D.Q_SNR: 400, D.Q_FOCUS: 1200, D.Q_SATURATION: 2, D.Q_MEAN: 40,
                   D.Q_BACKGROUND: 30, D.Q_NOISE: 40},
                  D.pack_spots(recs), 0, nonce=nonce)


def test_roundtrip_and_spots():
    d = sample()
    b = D.encode(d)
    out = D.decode(b)
    assert out == d
    assert D.spots_list(out[D.K_SPOTS])[0] == (0, 0, 255)
    assert D.pack_spots(D.spots_list(out[D.K_SPOTS])) == out[D.K_SPOTS]


def test_signed_scan_size_target():
    """A signed scan of 64 spots fits the 512-byte target (issue: firmware imaging)."""
    d = sample(64)
    k = p256.private_key_from_entropy(b"k" * 32)
    signed = cose.sign1(D.encode(d), k, kid=d[D.K_DEVICE])
    assert len(signed) <= 512, len(signed)


def test_offline_scan_has_no_nonce():
    d = sample(nonce=None)
    assert D.K_NONCE not in D.decode(D.encode(d))


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.update({D.K_VERSION: 2}), "version"),
    (lambda d: d.update({D.K_DEVICE: b"short"}), "device id"),
    (lambda d: d.update({D.K_NONCE: b"x"}), "nonce"),
    (lambda d: d.update({D.K_COUNTER: -1}), "counter"),
    (lambda d: d.update({D.K_GEOM: [0, 10]}), "frame size"),
    (lambda d: d.update({D.K_SPOTS: b"\x00" * 7}), "records"),
    (lambda d: d.update({D.K_SPOTS: D.pack_spots([(700 * 32, 0, 1)])}), "outside"),
    (lambda d: d.update({D.K_SPOTS: D.pack_spots([(1, 1, 1), (2, 2, 9)])}), "sorted"),
    (lambda d: d.update({D.K_QUALITY: {0: -1}}), "quality"),
    (lambda d: d.update({42: 1}), "unknown"),
    (lambda d: d.pop(D.K_FW), "missing"),
])
def test_invalid_descriptors(mutate, msg):
    d = sample()
    mutate(d)
    with pytest.raises(DecodeError, match=msg):
        D.decode(cbor.dumps(d))


def test_non_deterministic_bytes_refused():
    b = bytearray(D.encode(sample()))
    # re-encode the counter non-preferred (uint32 -> uint64): same value, different bytes
    i = b.index(bytes.fromhex("021a0001e240"))
    b[i:i + 6] = bytes.fromhex("021b000000000001e240")
    with pytest.raises(DecodeError, match="deterministic"):
        D.decode(bytes(b))


def _loop_verdict(spots, w, h):
    """What the record-by-record check says of ``spots`` (None: valid, else the error text)."""
    try:
        D._check_spots(spots, w * D.SPOT_SCALE, h * D.SPOT_SCALE)
    except DecodeError as e:
        return str(e)
    return None


def test_spot_checks_from_high_bytes_agree_with_the_record_loop():
    """validate settles the common case from the records' high bytes and fluxes; whatever it says
    matches the record-by-record check (which names the spot when the short one cannot settle it),
    frame edges, sizes that are not a multiple of 8 pixels, unsorted and out-of-frame spots included."""
    import random

    rng = random.Random(15)
    for case in range(400):
        w, h = rng.choice([(640, 480), (641, 479), (1, 1), (2047, 2047), (100, 8), (7, 2000)])
        n = rng.randrange(0, 20)
        edge = case % 3 == 0
        recs = [(rng.randrange(w * 32 - 40, w * 32 + 3) if edge and w * 32 > 40 else rng.randrange(w * 32 + 2),
                 rng.randrange(h * 32 + 2), rng.randrange(256)) for _ in range(n)]
        recs = [(min(x, 0xFFFF), min(y, 0xFFFF), f) for x, y, f in recs]
        if case % 2:
            recs.sort(key=lambda r: -r[2])
        spots = D.pack_spots(recs)
        d = sample()
        d[D.K_GEOM], d[D.K_SPOTS] = [w, h], spots
        want = _loop_verdict(spots, w, h)
        if want is None:
            assert D.validate(d) is d
        else:
            with pytest.raises(DecodeError) as got:
                D.validate(d)
            assert str(got.value) == want


def _decoded(data):
    """What ``D.decode`` says of ``data``: the map, or the error's type and text."""
    try:
        return D.decode(data)
    except DecodeError as e:
        return type(e), str(e)


def _head_respellings(b: bytes) -> list[bytes]:
    """``b`` with each head in turn written one size longer than its shortest form, or indefinite
    (maps, arrays, strings): the same values, bytes glint never signs."""
    out = []
    i = 0
    while i < len(b):
        major, ai = b[i] >> 5, b[i] & 0x1F
        if major == 7:
            i += 1
            continue
        arg, width = (ai, 0) if ai < 24 else (int.from_bytes(b[i + 1:i + 1 + (1 << (ai - 24))], "big"), 1 << (ai - 24))
        longer = (24, 1) if width == 0 else ((25, 2) if width == 1 else ((26, 4) if width == 2 else (27, 8)))
        if width < 8:
            out.append(b[:i] + bytes([(major << 5) | longer[0]]) + arg.to_bytes(longer[1], "big") + b[i + 1 + width:])
        body = i + 1 + width
        if major in (2, 3):  # a string as one chunk of an indefinite-length string
            out.append(b[:i] + bytes([(major << 5) | 31]) + b[i:body + arg] + b"\xff" + b[body + arg:])
            i = body + arg
        else:
            i = body
    return out


def test_decode_reads_the_scanner_layout_exactly_as_the_general_decoder(monkeypatch):
    """decode reads the one layout a scanner writes without the general decoder (D._layout); over
    nonce and no nonce, every integer width, 0-128 spots, text, head respellings (one size longer,
    indefinite lengths), keys out of order or twice, and random byte flips, truncations and
    extensions, it says exactly what the general decoder and its re-encoding check say: the same
    map, or the same error."""
    import random

    rng = random.Random(8949)
    inputs = []
    for counter in (0, 23, 24, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63):
        for nonce in (b"N" * 16, None, b"n" * 8, b"x" * 32):
            d = sample(rng.choice((0, 1, 4, 64, 128)), nonce)
            d[D.K_COUNTER] = counter
            d[D.K_QUALITY] = {q: rng.choice((0, 23, 24, 255, 256, 70000, 1 << 40)) for q in rng.sample(range(30), 4)}
            d[D.K_FW] = rng.choice(("0.4.0", "é-1", "x" * 32, "x" * 33, ""))
            d[D.K_GUIDANCE] = rng.choice((0, 3, 24, 300))
            inputs.append(cbor.dumps(d))
    base = D.encode(sample())
    inputs += [base, base[:-1], base + b"\x00", base[1:], b"", b"\xa9", b"\xaa\x00"]
    inputs += _head_respellings(base)
    raw = cbor.loads(base)
    for k in raw:  # one key moved to the end (out of order), one key written twice
        rest = {x: v for x, v in raw.items() if x != k}
        moved = bytes([0xA0 | len(raw)]) + b"".join(cbor.dumps(x) + cbor.dumps(v) for x, v in [*rest.items(), (k, raw[k])])
        twice = bytes([0xA1 + len(raw)]) + base[1:] + cbor.dumps(k) + cbor.dumps(raw[k])
        inputs += [moved, twice]
    bad_utf8 = base.replace(b"\x650.1.0", b"\x65\xff.1.0")
    assert bad_utf8 != base
    inputs.append(bad_utf8)
    for _ in range(1500):
        b = bytearray(rng.choice(inputs[:44] + [base]))
        for _ in range(rng.randrange(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        inputs.append(bytes(b))
    with monkeypatch.context() as m:
        m.setattr(D, "_layout", lambda data: None)
        general = [_decoded(b) for b in inputs]
    fast = 0
    for b, want in zip(inputs, general):
        fast += D._layout(b) is not None
        assert _decoded(b) == want, b.hex()
    assert fast >= 44  # the fast path was taken (every well-formed descriptor at least)
