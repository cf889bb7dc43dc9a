"""The outbox uploads through POST /v1/events/batch, and one event per request to a remote without
that route (the real app behind a real HTTP socket, the batch route hidden as on an older server)."""

from __future__ import annotations

import json
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from glint.ledger import Keys, Ledger
from glint.outbox import Outbox, open_host_db
from glint.server.app import create_app
from glint.server.auth import KeyStore
from glint.server.client import RemoteLedger

NOW = int(time.time())


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_outbox_sends_batches_and_falls_back_to_single_uploads(tmp_path):
    remote_home, local = tmp_path / "remote", tmp_path / "local"
    remote_home.mkdir()
    ks = KeyStore(remote_home / "glint.db")
    key = ks.create("brand", "field-1")[1]
    ks.close()
    app = create_app(remote_home)
    seen: list[str] = []
    hide = [False]

    def server(environ, start_response):  # the real app; as an older server when ``hide``
        seen.append(environ["PATH_INFO"])
        if hide[0] and environ["PATH_INFO"] == "/v1/events/batch":
            body = json.dumps({"error": "no such endpoint", "hint": None}).encode()
            start_response("404 NOT FOUND", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    httpd = make_server("127.0.0.1", 0, server, handler_class=_Quiet)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        led = Ledger.open(local / "ledger.db", keys=Keys.load(local, create=True), durable=False)
        led.register_item("acme:B-1", "ACME", time=NOW - 100)
        for i in range(4):
            led.append_event("service", "acme:B-1", {"action": f"clean {i}"}, time=NOW - 90 + i)
        box = Outbox(open_host_db(local))
        assert box.collect(led) == 5
        url = f"http://127.0.0.1:{httpd.server_port}"
        rep = box.upload(RemoteLedger(url, api_key=key))
        assert (rep.sent, rep.duplicates, rep.pending, rep.failed) == (5, 0, 0, 0)
        assert seen == ["/v1/events/batch"]  # the register and its services in one request, in order
        # lost acknowledgements, and the remote is an older server: one request per event, all duplicates
        box.db.execute("UPDATE outbox SET state='pending', next_try=0")
        hide[0] = True
        seen.clear()
        remote = RemoteLedger(url, api_key=key)
        rep = box.upload(remote)
        assert (rep.sent, rep.duplicates, rep.pending) == (5, 5, 0)
        assert seen == ["/v1/events/batch"] + ["/v1/events"] * 5 and remote.batch is False
        led.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.glint_close()
