"""``python -m glint.fw.mpremote_main ARGS``: the official mpremote, with TCP_NODELAY on socket:// links.

pyserial's socket:// handler leaves Nagle's algorithm on, so each of mpremote's
short writes after another waits for a delayed ACK (~40 ms); a deploy to the
virtual scanner was bound by that. Serial ports are unaffected.
"""

import sys

from serial.urlhandler import protocol_socket

from glint.link.transport import tcp_nodelay

_open = protocol_socket.Serial.open


def _open_nodelay(self):
    _open(self)
    tcp_nodelay(self)


protocol_socket.Serial.open = _open_nodelay

if __name__ == "__main__":
    from mpremote.main import main

    sys.exit(main())
