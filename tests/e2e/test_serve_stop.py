"""`glint serve` stops on SIGTERM, also while it is busy reading requests.

waitress logs any Exception a dispatcher raises as a handler error and keeps serving, so a SIGTERM
that arrived while a request was being read used to be swallowed (the server ran on)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

STOP_TIMEOUT_S = 10.0
ROUNDS = 6


def _chatter(port: int, stop: threading.Event) -> None:
    """Keep the server's main loop inside its read handlers: request bodies streamed without pause."""
    socks = []
    chunk = b"x" * 65536
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 900000000\r\n\r\n")
            socks.append(s)
        while not stop.is_set():
            for s in socks:
                s.send(chunk)
    except OSError:
        return
    finally:
        for s in socks:
            s.close()


def test_sigterm_stops_serve_while_reading_requests(tmp_path):
    env = dict(os.environ, GLINT_HOME=str(tmp_path))
    for _ in range(ROUNDS):
        proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        try:
            line = proc.stdout.readline()
            assert "listening on" in line, proc.stderr.read()
            port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
            stop = threading.Event()
            t = threading.Thread(target=_chatter, args=(port, stop), daemon=True)
            t.start()
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=STOP_TIMEOUT_S)
            finally:
                stop.set()
                t.join(5)
            assert rc == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
