"""The upload hot path: POST /v1/events answered without Flask's per-request machinery.

Flask builds a request context, a URL adapter, request and response objects and runs
its hooks for every request: about half the server's CPU per upload (measured with
tools/bench_api.py; waitress's parsing is most of the rest). In front of the Flask app, a
well-formed upload (JSON body within the size limit, an Idempotency-Key, a valid API key
within its rate, a role that may upload the kind) is parsed, queued for the group
commit and answered here, with the same checks in the same order and the same answer
as the Flask route (glint.server.app ``post_event``). Everything else goes to Flask
unchanged: a request this path would refuse (it replays the body it read), and any
error of the upload itself, which is answered by Flask's error handlers (so every
error has one definition). Other routes never come here.
"""

from __future__ import annotations

import io
import json
import logging
import time as _time
from typing import Callable

from glint.errors import GlintError
from glint.server import auth

_log = logging.getLogger("glint.server.app")  # the route's log lines, from either path

_STATUS = {200: "200 OK", 201: "201 CREATED"}


def install(app, caller: Callable, uploads, path: str, max_body: int, max_key_len: int) -> None:
    """Put the fast path in front of ``app``'s WSGI callable (``app.wsgi_app``).

    ``caller(authorization, remote_addr)``: the API key after its rate limit (the app's
    before_request); ``uploads``: glint.server.uploads.Uploads."""
    flask_wsgi = app.wsgi_app

    def replay(environ, start_response, body: bytes):
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return flask_wsgi(environ, start_response)

    def refused(environ, start_response, body: bytes, key, exc: Exception):
        """The upload was refused (or failed): Flask's error handler for ``exc`` answers."""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        from flask import g

        with app.request_context(environ):
            g.api_key = key
            response = app.make_response(app.handle_user_exception(exc))
            return response(environ, start_response)

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") != path or environ.get("REQUEST_METHOD") != "POST":
            return flask_wsgi(environ, start_response)
        idem = environ.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        try:
            n = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            n = -1
        if (not idem or len(idem) > max_key_len or not idem.isprintable() or mimetype != "application/json"
                or not 0 < n <= max_body):
            return flask_wsgi(environ, start_response)
        body = environ["wsgi.input"].read(n)
        try:
            obj = json.loads(body) if len(body) == n else None
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            return replay(environ, start_response, body)
        kind = obj.get("kind")
        try:
            key = caller(environ.get("HTTP_AUTHORIZATION"), environ.get("REMOTE_ADDR"))
            auth.may_upload(key, kind if isinstance(kind, str) else "?")
        except GlintError:
            return replay(environ, start_response, body)  # Flask refuses it the same way
        t0 = _time.perf_counter()
        try:
            result, duplicate = uploads.append(key, idem, obj)
        except Exception as e:  # the upload's own refusal, or a storage error: the app's handlers answer
            return refused(environ, start_response, body, key, e)
        _log.info("event %s key=%s index=%s dup=%s (%.1f ms)", kind, idem, result["index"], duplicate,
                  1000 * (_time.perf_counter() - t0))
        payload = (json.dumps(dict(result, duplicate=duplicate), separators=(",", ":")) + "\n").encode()
        start_response(_STATUS[200 if duplicate else 201],
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    app.wsgi_app = wsgi
    app.glint_flask_wsgi = flask_wsgi  # the app without this path (tests compare the two)
