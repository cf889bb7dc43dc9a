"""Monotonic scan counter that never repeats across reboots or power loss.

Values are handed out from a block reserved ahead of use: the end of the block
is persisted (store.write_record: write, flush, rename) *before* any value in it
is used. After a reboot counting resumes at the persisted end, so at most one
block of values is skipped per boot and none is ever issued twice. One flash
write per BLOCK scans keeps wear low.
"""

from micropython import const

from glintfw import store

BLOCK = const(32)
FIRST = const(1)
_MAX = 0xFFFFFFFFFFFF  # 48 bits: far beyond any device lifetime


class CounterError(Exception):
    pass


class Counter:
    """``next()`` returns the next counter value; persists a new reservation when a block runs out."""

    def __init__(self, path, block=BLOCK, floor=FIRST):
        self.path = path
        self.block = block
        data = store.read_record(path)
        if data is not None and len(data) == 8:
            start = int.from_bytes(data, "big")
        else:
            start = FIRST
        # ``floor`` lets the caller push past values seen elsewhere (e.g. in the spool)
        # if the counter record was ever lost.
        if floor > start:
            start = floor
        self._next = start
        self._reserved = start  # nothing reserved yet in this boot

    @property
    def peek(self):
        """The value the next call to next() will return (not persisted)."""
        return self._next

    @property
    def reserved(self):
        return self._reserved

    def next(self):
        n = self._next
        if n >= self._reserved:
            end = n + self.block
            if end > _MAX:
                raise CounterError("scan counter exhausted")
            store.write_record(self.path, end.to_bytes(8, "big"))
            self._reserved = end
        self._next = n + 1
        return n
