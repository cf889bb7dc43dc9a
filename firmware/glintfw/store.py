"""Power-loss-safe records on the device filesystem (littlefs, FAT, or a host directory).

A record is ``data || crc32(data)`` (u32 little-endian). ``write_record`` writes
``path.tmp``, flushes and syncs it, closes it, then renames it over ``path``:
on littlefs the rename is atomic, so after a power cut ``path`` holds either the
old or the new record. On FAT, where rename cannot replace a file, the old file
is removed first; ``read_record`` then falls back to the complete ``path.tmp``.
A torn or corrupt file fails its CRC and is ignored, never trusted.
"""

import os

from glintcore.frame import crc32_of as crc32  # binascii.crc32, or the bitwise fallback where a port lacks it

TMP_SUFFIX = ".tmp"


def _sync():
    s = getattr(os, "sync", None)
    if s is not None:
        try:
            s()
        except OSError:  # pragma: no cover - some VFS have no sync
            pass


def _fsync(f):
    """Push ``f`` to the medium: os.fsync where it exists (CPython), else os.sync (MicroPython)."""
    fsync = getattr(os, "fsync", None)
    fileno = getattr(f, "fileno", None)
    if fsync is not None and fileno is not None:
        fsync(fileno())
    else:
        _sync()


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path):
    """Delete ``path`` if present; True if something was removed."""
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def makedirs(path):
    """Create ``path`` and its parents (like mkdir -p)."""
    cur = ""
    for part in path.split("/"):
        if not part:
            if not cur:
                cur = "/" if path.startswith("/") else ""
            continue
        cur = cur + part if (cur == "" or cur.endswith("/")) else cur + "/" + part
        if not exists(cur):
            os.mkdir(cur)


def join(a, b):
    if not a or a.endswith("/"):
        return a + b
    return a + "/" + b


def write_file_atomic(path, data):
    """Replace ``path`` with ``data`` so that a power cut leaves the old or the new content."""
    tmp = path + TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        _fsync(f)
    try:
        os.rename(tmp, path)
    except OSError:  # FAT: rename cannot overwrite; read_record() recovers from tmp
        remove(path)
        os.rename(tmp, path)
    if getattr(os, "fsync", None) is None:
        _sync()
    else:
        _fsync_dir(path)


def _fsync_dir(path):
    """CPython: make the rename itself durable by syncing the directory entry."""
    i = path.rfind("/")
    d = path[:i] if i > 0 else "/" if i == 0 else "."
    try:
        fd = os.open(d, os.O_RDONLY)
    except (OSError, AttributeError):
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_record(path, data):
    """Atomically store ``data`` with its CRC-32 at ``path``."""
    buf = bytearray(data)
    buf.extend(crc32(data).to_bytes(4, "little"))
    write_file_atomic(path, buf)


def _read_checked(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if len(raw) < 4:
        return None
    data = raw[:-4]
    if crc32(data) != int.from_bytes(raw[-4:], "little"):
        return None
    return data


def read_record(path):
    """The data of the record at ``path`` (or its complete ``.tmp`` twin), or None if absent/corrupt."""
    data = _read_checked(path)
    if data is None:
        data = _read_checked(path + TMP_SUFFIX)
    return data


def delete_record(path):
    remove(path + TMP_SUFFIX)
    return remove(path)


def free_bytes(path):
    """Free space on the filesystem holding ``path`` (None where statvfs is missing)."""
    try:
        st = os.statvfs(path)
        return st[0] * st[3]
    except (OSError, AttributeError):
        return None
