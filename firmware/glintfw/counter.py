"""Monotonic scan counter that never repeats across reboots, power loss or a damaged record.

Values are handed out from a block reserved ahead of use: the end of the block is
persisted (store.write_record: write, flush, rename) *before* any value in it is used.
After a reboot counting resumes at the persisted end, so at most one block of values is
skipped per boot and none is ever issued twice. One flash write per BLOCK scans.

The reservation is written alternately to two records (``counter`` and ``counter.b``),
so one damaged record never rewinds the counter:

- both intact: resume at the larger;
- one damaged (a flipped byte, a torn write): resume at the intact one + BLOCK, which
  is past anything the damaged one may have reserved (it was at most one block ahead);
- both damaged while the device has signed before: fail closed. ``next()`` raises
  CounterError (no scan is signed) until the host re-provisions the device
  (``reset_after_damage``, called on re-keying) - never a rewind to 1.
"""

from micropython import const

from glintfw import store

BLOCK = const(32)
FIRST = const(1)
_MAX = 0xFFFFFFFFFFFF  # 48 bits: far beyond any device lifetime


class CounterError(Exception):
    pass


def _value(data):
    return int.from_bytes(data, "big") if data is not None and len(data) == 8 else None


class Counter:
    """``next()`` returns the next counter value; persists a new reservation when a block runs out."""

    def __init__(self, path, block=BLOCK, floor=FIRST):
        self.path = path
        self.paths = (path, path + ".b")
        self.block = block
        present = [store.exists(p) or store.exists(p + store.TMP_SUFFIX) for p in self.paths]
        values = [_value(store.read_record(p)) for p in self.paths]
        good = [v for v in values if v is not None]
        self.damaged = False
        if len(good) == 2:
            start = max(good)
        elif len(good) == 1:
            # The other record is absent (first blocks of a new device) or damaged; if damaged it
            # was at most one block ahead of this one.
            start = good[0] + (block if any(present[i] and values[i] is None for i in range(2)) else 0)
        elif any(present):
            self.damaged = True  # every record is unreadable: refuse to sign rather than reuse values
            start = FIRST
        else:
            start = FIRST
        # ``floor`` lets the caller push past values seen elsewhere (e.g. in the spool).
        if floor > start:
            start = floor
        self._next = start
        self._reserved = start  # nothing reserved yet in this boot
        self._slot = 0 if values[0] is None or (values[1] is not None and values[1] > values[0]) else 1

    @property
    def peek(self):
        """The value the next call to next() will return (not persisted)."""
        return self._next

    @property
    def reserved(self):
        return self._reserved

    def reset_after_damage(self, floor):
        """Re-provisioning of a device whose counter records were both damaged: resume past ``floor``."""
        self.damaged = False
        if floor > self._next:
            self._next = floor
            self._reserved = floor

    def next(self):
        if self.damaged:
            raise CounterError("counter records are damaged: refusing to sign until the device is re-provisioned")
        n = self._next
        if n >= self._reserved:
            end = n + self.block
            if end > _MAX:
                raise CounterError("scan counter exhausted")
            store.write_record(self.paths[self._slot], end.to_bytes(8, "big"))
            self._slot ^= 1
            self._reserved = end
        self._next = n + 1
        return n
