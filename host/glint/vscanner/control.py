"""The virtual scanner's control port: JSON lines in, one answer line each (docs/simulator.md).

    {"lens": "item", "item_seed": 7, "capture_seed": 3}   {"lens": "counterfeit", "item_seed": 7}
    {"lens": "empty"}   {"lens": "frames", "frames": "DIR"}   {"cmd": "button"}   {"cmd": "status"}
    {"cmd": "reset"}

    srv = serve_control(vs, "127.0.0.1:0"); srv.server_address; srv.shutdown()
"""

from __future__ import annotations

import json
import socketserver
import threading

from glint.address import parse_listen
from glint.errors import GlintError, UsageError
from glint.vscanner.lens import LensSpec
from glint.vscanner.server import VirtualScanner

MAX_LINE = 64 * 1024  # a control request is a few dozen bytes; longer lines are refused, not buffered


def handle_control(vs: VirtualScanner, line: str) -> dict:
    """One control request -> its answer (errors become {"ok": false, "error": ...})."""
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise UsageError("control request must be a JSON object")
        if "lens" in req:
            vs.set_lens(LensSpec.from_dict(req))
            return {"ok": True, "lens": req["lens"]}
        cmd = req.get("cmd")
        if cmd in ("button", "status", "reset", "ping"):
            return vs.request(cmd)
        raise UsageError(f"unknown control request {line.strip()[:80]!r}")
    except (ValueError, RecursionError) as e:
        return {"ok": False, "error": f"bad JSON: {e}"}
    except GlintError as e:
        return {"ok": False, "error": e.oneline()}


class ControlServer(socketserver.ThreadingTCPServer):
    """The control port's TCP server (address reuse for this server only, not the stdlib class)."""

    allow_reuse_address = True
    daemon_threads = True


def serve_control(vs: VirtualScanner, listen: str) -> ControlServer:
    """Serve the control port of ``vs`` on ``listen`` (HOST:PORT) in a background thread."""
    host, port = parse_listen(listen, "--control address")

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            while True:
                raw = self.rfile.readline(MAX_LINE + 1)
                if not raw:
                    return
                if len(raw) > MAX_LINE:
                    self.wfile.write(b'{"ok": false, "error": "control line too long"}\n')
                    return
                line = raw.decode("utf-8", "replace")
                if line.strip():
                    self.wfile.write((json.dumps(handle_control(vs, line)) + "\n").encode())

    try:
        srv = ControlServer((host, port), Handler)
    except OSError as e:
        raise UsageError(f"cannot listen on {listen}: {e.strerror or e}",
                         hint="is another program on that port? choose another --control (port 0 picks a free one)") from None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


__all__ = ["handle_control", "serve_control", "ControlServer"]
