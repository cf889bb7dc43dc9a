"""Text from the outside shown to a person: control characters escaped, so data cannot forge output.

Item ids, event data, device labels and alert details come from scanners, uploads and
old ledgers. Printed raw, an ESC sequence rewrites the terminal and a newline forges a
line of ``glint ledger log``. ``clean(s)`` shows every character that is not printable
(C0/C1 controls, DEL, line and paragraph separators, bidi overrides) as a Python escape
(``\\x1b``, ``\\n``, ``\\u202e``); printable text is unchanged. JSON output needs no
cleaning (its encoder escapes controls).
"""

from __future__ import annotations

_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(s) -> str:
    """``s`` (any value, str() of it) with every non-printable or bidi-control character escaped."""
    s = s if isinstance(s, str) else str(s)
    if s.isprintable() and not _BIDI.intersection(s):
        return s
    return "".join(ch if ch.isprintable() and ch not in _BIDI else ascii(ch)[1:-1] for ch in s)
