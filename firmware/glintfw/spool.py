"""Offline spool: signed scans taken without a host, kept until the host acknowledges them.

One file per scan, ``<dir>/<counter as 10 decimal digits>.scn``, written as a
CRC-checked record with write-flush-rename (store.py), so a power cut leaves a
scan either absent or complete. Leftover ``.tmp`` files (a cut mid-write) are
removed at start-up. The spool is bounded: ``put`` refuses with SpoolFull once
``capacity`` entries are waiting; an entry is deleted only by ``ack``.
"""

import os

from micropython import const

from glintfw import store

SUFFIX = ".scn"
_DIGITS = const(10)
DEFAULT_CAPACITY = const(64)


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, directory, capacity=DEFAULT_CAPACITY):
        self.dir = directory
        self.capacity = capacity
        store.makedirs(directory)
        self._entries = []
        for name in os.listdir(directory):
            if name.endswith(store.TMP_SUFFIX):
                store.remove(store.join(directory, name))
            elif name.endswith(SUFFIX):
                try:
                    self._entries.append(int(name[: -len(SUFFIX)]))
                except ValueError:
                    pass
        self._entries.sort()

    def _path(self, counter):
        s = str(counter)
        return store.join(self.dir, "0" * (_DIGITS - len(s)) + s + SUFFIX)

    def entries(self):
        """Counters of the waiting scans, oldest first."""
        return list(self._entries)

    def __len__(self):
        return len(self._entries)

    @property
    def full(self):
        return len(self._entries) >= self.capacity

    @property
    def free(self):
        return max(0, self.capacity - len(self._entries))

    def max_counter(self):
        return self._entries[-1] if self._entries else 0

    def put(self, counter, scan):
        if self.full:
            raise SpoolFull("spool full (%d scans): sync with a host" % len(self._entries))
        store.write_record(self._path(counter), scan)
        if counter not in self._entries:
            self._entries.append(counter)
            self._entries.sort()

    def get(self, counter):
        """The signed scan bytes, or None if there is no such (intact) entry."""
        if counter not in self._entries:
            return None
        return store.read_record(self._path(counter))

    def ack(self, counter):
        """Delete an entry the host has stored; False if there was none."""
        if counter not in self._entries:
            return False
        store.delete_record(self._path(counter))
        self._entries.remove(counter)
        return True
