"""Binary PGM (P5, 8-bit) reader that fills a preallocated frame buffer: the simulated camera's film.

``read_into(path, buf, width, height)`` parses the header from a small reusable
scratch buffer and ``readinto``s the pixels straight into ``buf``: nothing is
allocated that grows with the frame.
"""

from glintcore.errors import DecodeError

_HEADER_MAX = 128  # P5 header incl. a short comment
_scratch = bytearray(_HEADER_MAX)


def _is_space(c):
    return c == 32 or c == 9 or c == 10 or c == 13


def parse_header(head, n):
    """(width, height, maxval, data offset) from the first ``n`` bytes of a P5 file."""
    if n < 2 or head[0] != 80 or head[1] != 53:  # b"P5"
        raise DecodeError("not a binary PGM (P5) file")
    vals = [0, 0, 0]  # small, fixed: three header numbers
    k = 0
    i = 2
    while k < 3:
        while i < n and _is_space(head[i]):
            i += 1
        if i < n and head[i] == 35:  # '#': comment to end of line
            while i < n and head[i] != 10:
                i += 1
            continue
        if i >= n or head[i] < 48 or head[i] > 57:
            raise DecodeError("malformed PGM header")
        v = 0
        while i < n and 48 <= head[i] <= 57:
            v = v * 10 + head[i] - 48
            i += 1
        vals[k] = v
        k += 1
    if i >= n or not _is_space(head[i]):
        raise DecodeError("malformed PGM header")
    return vals[0], vals[1], vals[2], i + 1


def read_into(path, buf, width, height):
    """Fill ``buf`` (>= width*height bytes) with the pixels of the PGM at ``path``; sizes must match."""
    with open(path, "rb") as f:
        n = f.readinto(_scratch)
        w, h, maxval, off = parse_header(_scratch, n)
        if maxval != 255:
            raise DecodeError("PGM must be 8-bit (maxval 255), got %d" % maxval)
        if w != width or h != height:
            raise DecodeError("PGM is %dx%d, camera expects %dx%d" % (w, h, width, height))
        f.seek(off)
        got = f.readinto(memoryview(buf)[: w * h])
        if got != w * h:
            raise DecodeError("PGM pixel data truncated: %d of %d bytes" % (got or 0, w * h))
