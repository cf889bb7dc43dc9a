"""One send per small response: waitress's task writes the status line and headers, then the body,
as two socket sends (two system calls, two TCP segments, two wake-ups of the client). A
channel class of :func:`with_one_send` uses :class:`OneSendTask`, which sends the headers and
the body together when the whole body comes in one write of the declared Content-Length (every
JSON answer of glint serve); any other response is written exactly as waitress writes it.
"""

from __future__ import annotations

from waitress.channel import HTTPChannel
from waitress.task import WSGITask


class OneSendTask(WSGITask):
    """waitress's WSGITask, headers and a whole body in one write (module docstring)."""

    def write(self, data):
        if self.complete and not self.wrote_header:
            head = self.build_response_header()  # sets chunked_response and the like
            self.wrote_header = True
            if (data and self.has_body and not self.chunked_response and self.content_bytes_written == 0
                    and self.content_length == len(data)):
                self.content_bytes_written = len(data)
                self.channel.write_soon(head + data)
                return
            self.channel.write_soon(head)
        super().write(data)


def with_one_send(channel: type[HTTPChannel]) -> type[HTTPChannel]:
    """``channel`` writing each response's headers and whole body in one send."""
    return type(channel.__name__, (channel,), {"task_class": OneSendTask})
