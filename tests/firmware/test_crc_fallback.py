"""The CRC-32 fallback for ports without binascii.crc32: the store's records and the frames share it."""

from __future__ import annotations

import binascii
import os

from glintcore import frame
from glintfw import store


def test_the_soft_crc_is_binascii_crc32():
    for n in (0, 1, 3, 255, 1000):
        data = os.urandom(n)
        assert frame.crc32_soft(data) == binascii.crc32(data) == frame.crc32_of(data) == store.crc32(data)


def test_records_and_frames_work_without_binascii_crc32(tmp_path, monkeypatch):
    monkeypatch.setattr(frame, "crc32", None)  # a port built without binascii.crc32
    path = str(tmp_path / "rec")
    store.write_record(path, b"glint")
    assert store.read_record(path) == b"glint"
    assert frame.Deframer().feed(frame.encode_frame(b"payload")) == [b"payload"]
    monkeypatch.undo()
    assert store.read_record(path) == b"glint"  # and they agree with binascii's


def test_soft_crc_on_micropython(mpy):
    data = bytes(range(256)) * 3
    res = mpy.eval_json(f"""
from glintcore import frame
res = [frame.crc32_soft({data!r}), frame.crc32_of({data!r})]
""", "res")
    assert res == [binascii.crc32(data)] * 2
