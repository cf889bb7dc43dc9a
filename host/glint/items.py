"""The one item-id rule: what the ledger, the matcher database and every command accept as an item.

An item id is 1..128 characters of ``A-Z a-z 0-9 . _ : @ / + -`` starting with a letter or a
digit: a brand serial such as ``acme:BAG-000123``, or a GS1 Digital Link URI
``https://<host>/01/<GTIN>/21/<serial>`` (GTIN check digit verified, serial required: a twin is
one physical object). The whole string must match (no trailing newline slips through).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from glint.errors import UsageError

MAX_ITEM_ID = 128
ITEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,%d}" % (MAX_ITEM_ID - 1))
ITEM_HINT = f"1-{MAX_ITEM_ID} characters of A-Z a-z 0-9 . _ : @ / + -, starting with a letter or digit"
_GTIN_RE = re.compile(r"[0-9]{8}|[0-9]{12,14}")


def gs1_check_digit_ok(gtin: str) -> bool:
    """GS1 mod-10 check digit of a GTIN-8/12/13/14."""
    digits = [int(c) for c in gtin]
    body, check = digits[:-1], digits[-1]
    total = sum(x * (3 if i % 2 == 0 else 1) for i, x in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def check_item_id(item: str) -> str:
    """Validate an item identifier (the rule above); return it unchanged, else a one-line UsageError."""
    if not isinstance(item, str) or not ITEM_RE.fullmatch(item):
        raise UsageError(f"bad item id {str(item)[:80]!r}", hint=ITEM_HINT)
    if item.startswith(("http://", "https://")):
        segs = urlsplit(item).path.strip("/").split("/")
        try:
            i = segs.index("01")
        except ValueError:
            raise UsageError(f"GS1 Digital Link {item!r} has no /01/<GTIN> segment") from None
        if i + 1 >= len(segs) or not _GTIN_RE.fullmatch(segs[i + 1]):
            raise UsageError(f"GS1 Digital Link {item!r} has no valid GTIN after /01/")
        if not gs1_check_digit_ok(segs[i + 1]):
            raise UsageError(f"GTIN {segs[i + 1]} has a wrong check digit")
        if segs[i + 2:i + 3] != ["21"] or len(segs) < i + 4 or not segs[i + 3]:
            raise UsageError(f"GS1 Digital Link {item!r} has no /21/<serial>: a twin is one object")
    return item


__all__ = ["check_item_id", "gs1_check_digit_ok", "MAX_ITEM_ID", "ITEM_RE", "ITEM_HINT"]
