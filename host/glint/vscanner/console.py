"""The virtual scanner's USB console on TCP, shared by its runtimes (Unix port and CPython).

One client at a time, as on a real USB port: a new connection replaces the old one (mpremote
after glint, or glint after mpremote), and the old socket is closed.
"""

from __future__ import annotations

import socket
import threading
from typing import Protocol


class ConsoleOwner(Protocol):
    client: socket.socket | None

    def read_loop(self, conn: socket.socket) -> None: ...


def accept_clients(srv: socket.socket, owner: ConsoleOwner) -> None:
    """Accept console clients on ``srv`` in a daemon thread; each one's bytes go to ``owner.read_loop``."""

    def loop() -> None:
        while True:
            conn, _ = srv.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            old, owner.client = owner.client, conn
            if old is not None:
                old.close()
            threading.Thread(target=owner.read_loop, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
