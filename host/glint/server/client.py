"""Client of the HTTP ledger API (stdlib urllib only): what the outbox uploads with.

``RemoteLedger(url)`` talks to ``glint serve``. Failures raise :class:`RemoteError`
with ``transient`` telling the caller whether retrying can help: network errors,
timeouts, 5xx, 408 and 429 are transient; other 4xx mean the remote refuses this
request as it is (bad event, unknown item, idempotency key reused) and are not.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from glint.errors import GlintError, UsageError

HTTP_TIMEOUT_S = 10.0
API_KEY_ENV = "GLINT_API_KEY"
API_KEY_FILE = "remote.key"   # <home>/remote.key: this host's key for the remote ledger (mode 0600)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_ERROR_TEXT = 300
BATCH_TIMEOUT_FACTOR = 6      # a batch request may take this many single uploads' timeouts


class RemoteError(GlintError):
    """The remote ledger did not take a request; ``status`` (HTTP or None) and ``transient``."""

    def __init__(self, msg, hint=None, status=None, transient=True):
        super().__init__(msg, hint)
        self.status = status
        self.transient = transient


class RemoteLedger:
    """The ledger API of another glint host at ``url`` (e.g. ``http://127.0.0.1:8750``)."""

    def __init__(self, url: str, timeout: float = HTTP_TIMEOUT_S, api_key: str | None = None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"bad remote ledger URL {url!r}", "use http://HOST:PORT")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._api_key = api_key
        self.batch = True  # POST /v1/events/batch is tried (the outbox turns this off on a remote without it)

    def __repr__(self) -> str:  # never shows the key
        return f"RemoteLedger({self.url!r})"

    # --- requests
    def _request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
                 timeout: float | None = None):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if self._api_key:
            req.add_header("Authorization", f"Bearer {self._api_key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout if timeout is None else timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read()[:MAX_ERROR_TEXT * 4]
            try:
                msg = json.loads(text).get("error") or ""
            except (ValueError, AttributeError):
                msg = text.decode("utf-8", "replace")
            raise RemoteError(f"{self.url} answered {e.code} to {method} {path}: {msg[:MAX_ERROR_TEXT]}",
                              status=e.code, transient=e.code in TRANSIENT_STATUS) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise RemoteError(f"remote ledger {self.url} unreachable: {reason}",
                              "it is retried later; check 'glint status'", transient=True) from None

    def post_event(self, key: str, body: dict) -> tuple[dict, bool]:
        """POST /v1/events once; return (result, duplicate). Same key + same body = same result."""
        _status, out = self._request("POST", "/v1/events", body, {"Idempotency-Key": key})
        return out, bool(out.get("duplicate"))

    def post_events(self, uploads: list[tuple[str, dict]]) -> list:
        """POST /v1/events/batch once with several (key, body); one outcome each, in order:
        (result, duplicate), or the RemoteError refusing that event (``transient`` as for one
        upload). A failure of the request as a whole raises RemoteError (404/405: the remote
        has no batch route; 400: it refused the batch as such, e.g. more events than the key's burst)."""
        path = "/v1/events/batch"
        # The server checks every event before it answers (a verify's scan and match): allow what
        # several single uploads would have had, up to BATCH_TIMEOUT_FACTOR of them.
        _status, out = self._request("POST", path, {"events": [{"key": k, "event": b} for k, b in uploads]},
                                     timeout=self.timeout * min(len(uploads), BATCH_TIMEOUT_FACTOR))
        results = out.get("results") if isinstance(out, dict) else None
        if not isinstance(results, list) or len(results) != len(uploads) or not all(isinstance(r, dict) for r in results):
            raise RemoteError(f"{self.url} answered a batch of {len(uploads)} events without one result each",
                              status=None, transient=True)
        outs: list = []
        for (key, _body), r in zip(uploads, results):
            st = r.get("status")
            if st in (200, 201):
                outs.append((r, st == 200))
                continue
            msg = str(r.get("error") or "")[:MAX_ERROR_TEXT]
            outs.append(RemoteError(f"{self.url} answered {st} to event {key[:16]} of POST {path}: {msg}", status=st,
                                    transient=st in TRANSIENT_STATUS or not isinstance(st, int)))
        return outs

    def nonce(self, device: str) -> bytes:
        """A fresh nonce the remote issued for a live scan by ``device`` (hex id)."""
        return bytes.fromhex(self._request("POST", "/v1/nonces", {"device": device})[1]["nonce"])

    def certificate(self, index: int) -> bytes:
        import base64

        return base64.b64decode(self._request("GET", f"/v1/certificates/{int(index)}")[1]["cert"])

    def checkpoint(self) -> dict:
        return self._request("GET", "/v1/checkpoint")[1]

    def inclusion(self, index: int, size: int | None = None) -> dict:
        q = {"index": index} if size is None else {"index": index, "size": size}
        return self._request("GET", "/v1/proof/inclusion?" + urllib.parse.urlencode(q))[1]

    def consistency(self, size1: int, size2: int | None = None) -> dict:
        q = {"from": size1} if size2 is None else {"from": size1, "to": size2}
        return self._request("GET", "/v1/proof/consistency?" + urllib.parse.urlencode(q))[1]

    def item(self, item: str) -> dict:
        return self._request("GET", "/v1/items/" + urllib.parse.quote(item, safe=""))[1]

    def history(self, item: str, before: int) -> list[bytes]:
        """The item's first ``before`` events as leaf bytes (to check a certificate against its chain head)."""
        import base64

        q = urllib.parse.urlencode({"before": int(before)})
        body = self._request("GET", "/v1/history/" + urllib.parse.quote(item, safe="") + "?" + q)[1]
        leaves = body.get("leaves") if isinstance(body, dict) else None
        if not isinstance(leaves, list) or not all(isinstance(x, str) for x in leaves):
            raise RemoteError(f"{self.url} answered no history for {item}", transient=False)
        return [base64.b64decode(x) for x in leaves]

    def certificate_status(self, index: int) -> dict:
        """The current status of the certificate of verify event ``index`` (voided, item retired, suspect)."""
        body = self._request("GET", f"/v1/certificates/{int(index)}/status")[1]
        if not isinstance(body, dict) or body.get("status") not in ("current", "voided", "retired", "suspect"):
            raise RemoteError(f"{self.url} answered no certificate status for event {index}", transient=False)
        return body


def load_api_key(home) -> str | None:
    """This host's API key for the remote ledger: $GLINT_API_KEY, else <home>/remote.key (mode 0600).

    A key file readable by group or others is refused (UsageError): it is a credential.
    """
    import os
    import stat
    from pathlib import Path

    env = os.environ.get(API_KEY_ENV)
    if env:
        return env.strip()
    path = Path(home) / API_KEY_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{path} is readable by other users", f"chmod 600 {path}")
    return path.read_text().strip() or None
