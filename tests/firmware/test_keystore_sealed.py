"""The sealed key store (OpenMV boards, whose storage is the USB drive any PC reads)."""

from __future__ import annotations

import os

import pytest

from glintcore import p256
from glintfw import store
from glintfw.keystore import KeyStore


def _ks(d, uid):
    return KeyStore(str(d), os.urandom, "sealed", uid=uid)


def test_the_drive_holds_only_ciphertext_and_the_chip_id_opens_it(tmp_path):
    a = _ks(tmp_path, b"chip-0001")
    pub = a.generate()
    raw = (tmp_path / "key").read_bytes()
    scalar = p256.private_key_to_bytes(a.private_key())
    assert scalar not in raw and raw.startswith(b"GLS1")  # what a PC copying the drive gets
    assert _ks(tmp_path, b"chip-0001").public_key() == pub  # the same chip unseals it after a reboot
    assert _ks(tmp_path, b"chip-0002").has_key() is False  # the file copied to another board is useless


def test_a_tampered_file_reads_as_no_key(tmp_path):
    _ks(tmp_path, b"chip").generate()
    data = bytearray(store.read_record(str(tmp_path / "key")))
    data[10] ^= 1
    store.write_record(str(tmp_path / "key"), bytes(data))
    assert _ks(tmp_path, b"chip").has_key() is False


def test_a_plaintext_key_from_an_earlier_firmware_is_sealed_in_place(tmp_path):
    plain = KeyStore(str(tmp_path), os.urandom, "file")
    pub = plain.generate()
    s = _ks(tmp_path, b"chip")
    assert s.public_key() == pub
    assert store.read_record(str(tmp_path / "key")).startswith(b"GLS1")
    assert _ks(tmp_path, b"chip").public_key() == pub


def test_no_chip_id_is_refused_with_a_reason(tmp_path):
    with pytest.raises(OSError, match="no chip unique id"):
        KeyStore(str(tmp_path), os.urandom, "sealed", uid=b"")


def test_sealed_store_on_micropython(mpy):
    res = mpy.eval_json("""
import os
try:
    os.mkdir('/sealtest')
except OSError:
    pass
from glintfw.keystore import KeyStore
from glintfw import store
ent = lambda n: bytes((7 * i + 1) % 256 for i in range(n))  # no os.urandom on every port
ks = KeyStore('/sealtest', ent, 'sealed', uid=b'chip-mp')
ks.generate(force=True)
pub = ks.public_key()
again = KeyStore('/sealtest', ent, 'sealed', uid=b'chip-mp').public_key()
other = KeyStore('/sealtest', ent, 'sealed', uid=b'other').has_key()
raw = store.read_record('/sealtest/key')
res = [pub == again, other, raw[:4] == b'GLS1', len(raw)]
""", "res")
    assert res == [True, False, True, 4 + 16 + 32 + 16]
