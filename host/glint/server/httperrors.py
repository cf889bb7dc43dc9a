"""glint's JSON error body for the answers waitress gives before the app runs.

waitress answers some requests itself, without calling the WSGI app: a request line it
cannot parse or a URI it refuses ("Bad URI": a raw byte >= 0x80, a malformed target), a
header section over its limit (431), a body over ``max_request_body_size`` or a broken
chunked encoding (413 / 400), a transfer encoding it does not implement (501), and an
exception in the app before any header was written (500). Its own body for these is plain
text. A channel class of :func:`with_json_errors` answers them as every glint error is
answered: ``Content-Type: application/json`` and one line ``{"error": ..., "hint": ...}``
(the message escaped as glint.textsafe escapes it: a request's bytes are never echoed
raw), with waitress's own status line and ``Connection: close``.
"""

from __future__ import annotations

import json

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

HINTS = {400: "send a well-formed HTTP/1.1 request (RFC 9112); percent-encode the target (RFC 3986)",
         413: "send a smaller body",
         431: "send fewer or shorter headers",
         501: "send the body with Content-Length (no other transfer encoding)",
         500: "this is a bug in glint serve"}


def error_body(code: int, reason: str, detail: str) -> bytes:
    """The JSON line of one waitress-made error (``reason``: its status text, ``detail``: why)."""
    from glint.textsafe import clean

    msg = f"{reason}: {detail}" if detail else reason
    return (json.dumps({"error": clean(msg)[:500], "hint": HINTS.get(code)}) + "\n").encode()


class JsonErrorTask(ErrorTask):
    """waitress's ErrorTask with glint's JSON body (module docstring)."""

    def execute(self):
        e = self.request.error
        code = int(getattr(e, "code", 500))
        body = error_body(code, str(getattr(e, "reason", "Internal Server Error")), str(getattr(e, "body", "") or ""))
        self.status = f"{code} {e.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def with_json_errors(channel: type[HTTPChannel]) -> type[HTTPChannel]:
    """``channel`` answering waitress's own errors with glint's JSON body."""
    return type(channel.__name__, (channel,), {"error_task_class": JsonErrorTask})
