"""The HTTP ledger API of a glint host (server) and its urllib client.

Server: ``serve(home, host, port)`` runs the Flask app of :mod:`glint.server.app` under
waitress (a pure-Python production WSGI server) until interrupted.
Client: :class:`glint.server.client.RemoteLedger` (stdlib urllib only).
The API is documented in docs/api.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

_log = logging.getLogger(__name__)

SERVER_THREADS = 4          # request threads; ledger work itself is serialised on one thread
CHANNEL_TIMEOUT_S = 30      # idle keep-alive connections are closed after this


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port) with a one-line UsageError on bad input."""
    from glint.errors import UsageError

    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"bad listen address {listen!r}", "use HOST:PORT, e.g. 127.0.0.1:8750")
    return host.strip("[]"), int(port)


def make_server(home: str | Path, host: str, port: int, ledger_path: str | Path | None = None):
    """A waitress server bound to (host, port) serving the ledger of ``home``; call ``.run()``.

    ``server.effective_port`` is the bound port (useful with port 0). Call
    ``server.glint_close()`` after it stops to release the ledger.
    """
    from waitress.server import create_server

    from glint.server.app import create_app

    app = create_app(home, ledger_path)
    server = create_server(app, host=host, port=port, threads=SERVER_THREADS,
                           channel_timeout=CHANNEL_TIMEOUT_S, ident="glint")
    server.glint_close = app.glint_close
    return server
