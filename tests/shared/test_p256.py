"""ECDSA P-256 (glintcore.p256): RFC 6979 and Wycheproof vectors, python-ecdsa parity, CPython == MicroPython."""

from __future__ import annotations

import hashlib
import hmac
import json

import ecdsa
import pytest
from ecdsa.util import sigdecode_string, sigencode_string
from hypothesis import given, settings
from hypothesis import strategies as st

from glintcore import hmac256, p256, p256_gen, p256_table
from glintcore.errors import CryptoError

from glinttest import load_vector, vector_params

# The P-256 key of RFC 6979 appendix A.2.5, from the RFC's text (the vector file in ../shared
# carries it too, and test_rfc6979_vectors checks that they agree).
RFC_D = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
RFC_PUB = bytes.fromhex("04" "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
                        "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")
MAX_TABLE_BYTES = 16 * 1024  # the budget for precomputed data on a microcontroller
RFC6979_FILE = "rfc6979_p256_sha256.json"
WYCHEPROOF_FILE = "wycheproof_ecdsa_p256_sha256_p1363.json"


def wycheproof_cases(wycheproof):
    for g in wycheproof["testGroups"]:
        assert g["sha"] == "SHA-256"
        for t in g["tests"]:
            yield g["publicKey"]["uncompressed"], t


def _json(folder, name):
    return json.loads((folder / name).read_text())


def ref_key(d: int) -> ecdsa.SigningKey:
    return ecdsa.SigningKey.from_secret_exponent(d, curve=ecdsa.NIST256p, hashfunc=hashlib.sha256)


def ref_point(k: int, x: int = p256.GX, y: int = p256.GY) -> tuple[int, int]:
    return p256_gen.affine_mul(k, (x, y))


# ---- vectors on CPython ----


@pytest.mark.parametrize("case", vector_params(lambda v: _json(v, RFC6979_FILE)["cases"], ids=lambda c: c["message"]))
def test_rfc6979_vectors(case):
    rfc = load_vector(RFC6979_FILE)
    assert int(rfc["private_key"], 16) == RFC_D
    assert bytes.fromhex("04" + rfc["public_key"]["x"] + rfc["public_key"]["y"]) == RFC_PUB
    assert p256.public_key(RFC_D) == RFC_PUB
    h = hashlib.sha256(case["message"].encode()).digest()
    assert p256.rfc6979_k(RFC_D, h) == int(case["k"], 16)
    sig = p256.sign(RFC_D, case["message"].encode())
    assert sig == bytes.fromhex(case["r"] + case["s"])
    assert p256.sign_digest(RFC_D, h) == sig
    assert p256.verify(RFC_PUB, case["message"].encode(), sig)


@pytest.mark.parametrize("pub,case", vector_params(lambda v: wycheproof_cases(_json(v, WYCHEPROOF_FILE)), 2,
                                                   ids=lambda c: str(c[1]["tcId"])))
def test_wycheproof(pub, case):
    assert case["result"] in ("valid", "invalid")  # no "acceptable" cases in this file
    ok = p256.verify(bytes.fromhex(pub), bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
    assert ok is (case["result"] == "valid"), case["comment"]


def test_table_is_the_generated_one_and_fits_the_budget():
    assert p256_table.COMB == p256_gen.build_table(p256_table.TEETH)
    assert len(p256_table.COMB) <= MAX_TABLE_BYTES


# ---- python-ecdsa parity ----


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, p256.N - 1), msg=st.binary(max_size=200))
def test_matches_python_ecdsa(d, msg):
    sk = ref_key(d)
    pub = p256.public_key(d)
    assert pub == b"\x04" + sk.get_verifying_key().to_string()
    sig = p256.sign(d, msg)
    # python-ecdsa implements RFC 6979 too: same nonce, same (r, s), no low-s normalisation.
    assert sig == sk.sign_deterministic(msg, hashfunc=hashlib.sha256, sigencode=sigencode_string)
    assert sk.get_verifying_key().verify(sig, msg, hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
    theirs = sk.sign(msg, hashfunc=hashlib.sha256, sigencode=sigencode_string)  # random k
    assert p256.verify(pub, msg, theirs)
    assert not p256.verify(pub, msg + b"x", theirs)


def test_edge_scalars_match_reference():
    x, y = ref_point(0xC0FFEE)
    n = p256.N
    for k in (1, 2, 3, 0xFF, 2**128, 2**255 % n, n - 1, n - 2, (n - 1) // 2, n // 3):
        assert p256._to_affine(*p256._mul_g(k)) == ref_point(k), k
        assert p256._to_affine(*p256._mul_var(k, x, y)) == ref_point(k, x, y), k
        assert p256._to_affine(*p256._mul_complete(k, x, y)) == ref_point(k, x, y), k


def test_euclid_inverse_used_on_micropython():
    for m in (p256.P, p256.N):
        for a in (1, 2, m - 1, 0xC0FFEE, m // 3, 2**255 % m):
            assert p256._inv_euclid(a, m) * a % m == 1
            assert p256._inv_euclid(a + m, m) == pow(a, -1, m)


def test_complete_addition_handles_doubling_and_opposites():
    x, y = ref_point(7)
    J = (x * 4 % p256.P, y * 8 % p256.P, 2)  # same point, Z = 2
    assert p256._to_affine(*p256._jadd(x, y, 1, *J)) == ref_point(14)
    assert p256._jadd(x, y, 1, x, p256.P - y, 1)[2] == 0
    assert p256._jadd(*p256._INF, x, y, 1) == (x, y, 1)


def degenerate_comb_scalars():
    """Scalars whose comb hits an addition of equal points (found among k = 2*entry)."""
    found = []
    teeth, sp = p256_table.TEETH, p256_table.SPACING
    for u in range(1 << (teeth - 1)):
        c = 1 << ((teeth - 1) * sp)
        for i in range(teeth - 1):
            c += (1 if (u >> i) & 1 else -1) << (i * sp)
        k = (2 * (c << (teeth * sp))) % p256.N
        if p256._comb(k) is None:
            found.append(k)
    return found


def test_comb_degenerate_additions_fall_back_to_complete_formulas():
    ks = degenerate_comb_scalars()
    assert ks, "no degenerate scalar in the searched family for this table layout"
    for k in ks:
        assert p256._to_affine(*p256._mul_g(k)) == ref_point(k)
        assert p256.public_key(k) == b"\x04" + ref_key(k).get_verifying_key().to_string()


def crafted_signature(d: int, k: int, u1: int) -> tuple[bytes, bytes]:
    """(digest, sig) of a valid signature with nonce k whose verification computes u1*G."""
    n = p256.N
    r = ref_point(k)[0] % n
    e = u1 * r * d * pow(k - u1, -1, n) % n  # u1 = e/s with s = (e + r*d)/k
    s = pow(k, -1, n) * (e + r * d) % n
    return e.to_bytes(32, "big"), r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_verify_survives_degenerate_comb_and_doubling():
    d = 0x1234567
    pub = p256.public_key(d)
    h, sig = crafted_signature(d, 0xABCDEF, degenerate_comb_scalars()[0])
    assert p256.verify_digest(pub, h, sig)
    assert ref_key(d).get_verifying_key().verify_digest(sig, h, sigdecode=sigdecode_string)
    # Key G (d = 1) and e == r: u1*G == u2*Q, so the final addition is a doubling.
    k = 0x5EED
    r = ref_point(k)[0] % p256.N
    s = pow(k, -1, p256.N) * 2 * r % p256.N
    g_pub = p256.public_key(1)
    h = r.to_bytes(32, "big")
    assert p256.verify_digest(g_pub, h, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    # e == -r: u1*G == -u2*Q, the sum is the point at infinity: must fail, not crash.
    h = (p256.N - r).to_bytes(32, "big")
    assert not p256.verify_digest(g_pub, h, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


# ---- keys, points, fail-closed checks ----


def small_x_point() -> tuple[int, int]:
    """A curve point with x < 2^32, so x + p still fits 32 bytes (tests the range check)."""
    p = p256.P
    x = 0
    while True:
        rhs = (x**3 - 3 * x + p256.B) % p
        y = pow(rhs, (p + 1) // 4, p)  # p = 3 mod 4
        if y * y % p == rhs:
            return x, y
        x += 1


def test_decode_point_rejects_bad_keys():
    x, y = p256.decode_point(RFC_PUB)
    assert p256.encode_point(x, y) == RFC_PUB
    sx, sy = small_x_point()
    assert p256.decode_point(p256.encode_point(sx, sy)) == (sx, sy)
    bad = [
        RFC_PUB[:-1], RFC_PUB + b"\x00", b"\x02" + RFC_PUB[1:], b"\x00" * 65, b"\x00",
        b"\x04" + bytes(64),  # (0, 0): the usual stand-in for the point at infinity
        p256.encode_point(sx + p256.P, sy),  # on the curve mod p, but x >= p
        RFC_PUB[:64] + bytes([RFC_PUB[64] ^ 1]),
        b"\x04" + b"\xff" * 64,  # both coordinates >= p
        "04" + RFC_PUB.hex(),
    ]
    for pub in bad:
        with pytest.raises(CryptoError) as exc:
            p256.decode_point(pub)
        assert "\n" not in str(exc.value)
        assert p256.verify(pub, b"sample", p256.sign(RFC_D, b"sample")) is False


def test_verify_fails_closed():
    sig = p256.sign(RFC_D, b"sample")
    n = p256.N
    assert p256.verify(RFC_PUB, b"sample", sig)
    assert p256.verify(RFC_PUB, bytearray(b"sample"), bytearray(sig))
    r, s = sig[:32], sig[32:]
    for bad in (sig[:-1], sig + b"\x00", b"", bytes(64), bytes(32) + s, r + bytes(32),
                n.to_bytes(32, "big") + s, r + n.to_bytes(32, "big"), b"\xff" * 64, sig.hex()):
        assert p256.verify(RFC_PUB, b"sample", bad) is False
    # ECDSA itself accepts (r, n - s); glint does not enforce low-s (RFC 6979 vectors have high s).
    assert p256.verify(RFC_PUB, b"sample", r + (n - int.from_bytes(s, "big")).to_bytes(32, "big"))
    assert p256.verify(RFC_PUB, b"Sample", sig) is False
    assert p256.verify(RFC_PUB, "sample", sig) is False
    assert p256.verify_digest(RFC_PUB, b"", sig) is False
    assert p256.verify_digest(RFC_PUB, None, sig) is False
    assert p256.verify(None, b"sample", sig) is False
    assert p256.verify(p256.public_key(RFC_D + 1), b"sample", sig) is False


def test_private_keys():
    seed = bytes(range(32))
    d = p256.private_key_from_entropy(seed)
    assert 0 < d < p256.N
    assert d == p256.private_key_from_entropy(seed)
    assert d != p256.private_key_from_entropy(bytes(range(1, 33)))
    assert p256.private_key_from_bytes(p256.private_key_to_bytes(d)) == d
    assert len(p256.private_key_to_bytes(1)) == 32
    with pytest.raises(CryptoError):
        p256.private_key_from_entropy(bytes(31))
    for bad in (bytes(32), p256.N.to_bytes(32, "big"), b"\xff" * 32, bytes(31), bytes(33)):
        with pytest.raises(CryptoError):
            p256.private_key_from_bytes(bad)
    for bad in (0, p256.N, -1, "1"):
        with pytest.raises(CryptoError):
            p256.sign(bad, b"m")
        with pytest.raises(CryptoError):
            p256.public_key(bad)


@settings(max_examples=50, deadline=None)
@given(key=st.binary(max_size=150), msg=st.binary(max_size=300))
def test_hmac_matches_cpython(key, msg):
    assert hmac256.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


# ---- the same on the real MicroPython ----


def _mp_json(mpy, code, expr):
    return mpy.eval_json("from glintcore import p256, hmac256\nimport hashlib\n" + code, expr)


def test_micropython_rfc6979_vectors(mpy):
    rfc6979 = load_vector(RFC6979_FILE)
    cases = [c["message"] for c in rfc6979["cases"]]
    code = ("d = %d\npub = p256.public_key(d)\nres = [pub.hex()]\n"
            "for m in %r:\n"
            "    m = m.encode()\n"
            "    sig = p256.sign(d, m)\n"
            "    k = p256.rfc6979_k(d, hashlib.sha256(m).digest())\n"
            "    res.append(['%%064x' %% k, sig.hex(), p256.verify(pub, m, sig)])\n" % (RFC_D, cases))
    out = _mp_json(mpy, code, "res")
    assert bytes.fromhex(out[0]) == RFC_PUB
    for case, (k, sig, ok) in zip(rfc6979["cases"], out[1:]):
        assert int(k, 16) == int(case["k"], 16)
        assert bytes.fromhex(sig) == bytes.fromhex(case["r"] + case["s"])
        assert ok is True


def test_micropython_wycheproof_all(mpy):
    wp_cases = list(wycheproof_cases(load_vector(WYCHEPROOF_FILE)))
    pubs = sorted({pub for pub, _ in wp_cases})
    cases = [[pubs.index(pub), t["msg"], t["sig"]] for pub, t in wp_cases]
    code = ("import json, binascii\nu = binascii.unhexlify\npubs = [u(p) for p in json.loads(%r)]\n"
            "res = [p256.verify(pubs[i], u(m), u(s)) for i, m, s in json.loads(%r)]\n"
            % (json.dumps(pubs), json.dumps(cases)))
    res = _mp_json(mpy, code, "res")
    expected = [t["result"] == "valid" for _, t in wp_cases]
    wrong = [t["tcId"] for (_, t), got, exp in zip(wp_cases, res, expected) if got != exp]
    assert not wrong


def test_micropython_signatures_byte_identical(mpy):
    keys = [p256.private_key_from_entropy(hashlib.sha256(b"key %d" % i).digest()) for i in range(6)]
    keys += [1, 2, p256.N - 1, degenerate_comb_scalars()[0]]
    msgs = [b"", b"glint", bytes(range(256)), b"\xff" * 1000]
    code = ("keys = %r\nmsgs = %r\nres = []\n"
            "for d in keys:\n"
            "    res.append([p256.public_key(d).hex()] + [p256.sign(d, m).hex() for m in msgs])\n"
            "seedkey = p256.private_key_from_entropy(bytes(range(40)))\n"
            "macs = [hmac256.hmac_sha256(b'k' * n, b'msg').hex() for n in (0, 32, 64, 65, 200)]\n"
            % (keys, msgs))
    res = _mp_json(mpy, code, "[res, seedkey, macs]")
    for d, row in zip(keys, res[0]):
        assert row == [p256.public_key(d).hex()] + [p256.sign(d, m).hex() for m in msgs]
    assert res[1] == p256.private_key_from_entropy(bytes(range(40)))
    assert res[2] == [hmac.new(b"k" * n, b"msg", hashlib.sha256).hexdigest() for n in (0, 32, 64, 65, 200)]


def test_micropython_fails_closed_and_cross_verifies(mpy):
    d = 0x1234567
    h, crafted = crafted_signature(d, 0xABCDEF, degenerate_comb_scalars()[0])
    theirs = ref_key(RFC_D).sign(b"sample", hashfunc=hashlib.sha256, sigencode=sigencode_string)
    bad_pubs = [RFC_PUB[:-1], b"\x04" + bytes(64), RFC_PUB[:64] + bytes([RFC_PUB[64] ^ 1]), b"\x03" + RFC_PUB[1:]]
    code = ("from glintcore.errors import CryptoError\n"
            "res = [p256.verify(%r, b'sample', %r), p256.verify_digest(p256.public_key(%d), %r, %r)]\n"
            "sig = p256.sign(%d, b'sample')\n"
            "res += [p256.verify(%r, b'sample', sig[:63]), p256.verify(%r, b'sample', bytes(64))]\n"
            "for pub in %r:\n"
            "    try:\n"
            "        p256.decode_point(pub)\n"
            "        res.append('accepted')\n"
            "    except CryptoError as e:\n"
            "        res.append(p256.verify(pub, b'sample', sig))\n"
            % (RFC_PUB, theirs, d, h, crafted, RFC_D, RFC_PUB, RFC_PUB, bad_pubs))
    assert _mp_json(mpy, code, "res") == [True, True, False, False] + [False] * len(bad_pubs)
