"""Which files are images: the leading bytes of the formats glint reads (no OpenCV import).

An input file is an image when it starts with one of ``IMAGE_MAGIC`` (PNG, binary PGM, JPEG) and a
signed scan otherwise; ``glint.imaging.load_image`` reads the images.
"""

from __future__ import annotations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PGM_MAGIC = b"P5"
JPEG_MAGIC = b"\xff\xd8\xff"
IMAGE_MAGIC = (PNG_MAGIC, PGM_MAGIC, JPEG_MAGIC)
HEAD_BYTES = max(len(m) for m in IMAGE_MAGIC)   # what to read of a file to tell


def is_image(head: bytes) -> bool:
    """Whether a file starting with ``head`` (at least HEAD_BYTES of it) is an image glint reads."""
    return head.startswith(IMAGE_MAGIC)


def is_jpeg(head: bytes) -> bool:
    return head.startswith(JPEG_MAGIC)
