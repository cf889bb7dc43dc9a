"""The HTTP ledger API of a glint host (server) and its urllib client.

Server: ``serve(home, host, port)`` runs the Flask app of :mod:`glint.server.app` under
waitress (a pure-Python production WSGI server) until interrupted.
Client: :class:`glint.server.client.RemoteLedger` (stdlib urllib only).
The API is documented in docs/api.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from glint.address import parse_listen as parse_listen  # re-exported: the one HOST:PORT parser

_log = logging.getLogger(__name__)

SERVER_THREADS = 4          # request threads; ledger work itself is serialised on one thread
CHANNEL_TIMEOUT_S = 30      # idle keep-alive connections are closed after this


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
