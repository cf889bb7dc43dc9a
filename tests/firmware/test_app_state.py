"""Persistent device state on CPython: records, the counter across power cuts, the spool, config."""

from __future__ import annotations

import os

import pytest

import glintcore  # noqa: F401  (const() shim)
from glintfw import store
from glintfw.config import Config, ConfigError
from glintfw.counter import BLOCK, Counter
from glintfw.spool import Spool, SpoolFull


def test_record_roundtrip_and_corruption(tmp_path):
    p = str(tmp_path / "rec")
    store.write_record(p, b"hello")
    assert store.read_record(p) == b"hello"
    raw = bytearray(open(p, "rb").read())
    raw[0] ^= 1
    open(p, "wb").write(raw)
    assert store.read_record(p) is None  # a torn/corrupt record is never trusted


def test_record_recovers_from_tmp_after_fat_style_cut(tmp_path):
    p = str(tmp_path / "rec")
    store.write_record(p, b"old")
    # FAT path: new tmp complete, old removed, power cut before the rename
    store.write_record(p + ".x", b"new")
    os.replace(p + ".x", p + store.TMP_SUFFIX)
    os.remove(p)
    assert store.read_record(p) == b"new"


def test_counter_never_repeats_across_cuts(tmp_path):
    p = str(tmp_path / "counter")
    seen = []
    for boot in range(5):
        c = Counter(p)
        for _ in range(boot * 7 + 1):  # a cut at an arbitrary point in the block
            seen.append(c.next())
    assert seen == sorted(set(seen))
    assert seen[-1] - seen[0] < len(seen) + 5 * BLOCK  # at most one block skipped per boot


def test_counter_floor_from_spool(tmp_path):
    c = Counter(str(tmp_path / "counter"), floor=500)
    assert c.next() == 500


def test_spool_bounded_and_ack_only(tmp_path):
    d = str(tmp_path / "spool")
    s = Spool(d, capacity=2)
    s.put(3, b"a")
    s.put(4, b"b")
    assert s.full and s.free == 0
    with pytest.raises(SpoolFull):
        s.put(5, b"c")
    open(os.path.join(d, "0000000009.scn.tmp"), "wb").write(b"partial")
    s2 = Spool(d, capacity=2)  # reboot: entries survive, torn leftovers are cleaned
    assert s2.entries() == [3, 4] and s2.get(4) == b"b"
    assert not any(n.endswith(".tmp") for n in os.listdir(d))
    assert s2.ack(3) and not s2.ack(3) and s2.entries() == [4]


def test_config_validation_and_persistence(tmp_path):
    p = str(tmp_path / "config")
    c = Config(p)
    c.set("gain", 4)
    with pytest.raises(ConfigError):
        c.set("gain", 65)
    with pytest.raises(ConfigError):
        c.set("accept_poor", 1)
    assert Config(p).get("gain") == 4
