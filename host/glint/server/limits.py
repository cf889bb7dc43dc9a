"""Service limits of the HTTP API: per-key request rate and disk quota.

- Rate: a token bucket per key (``rate_per_s`` sustained, DEFAULT_BURST at once); an
  empty bucket answers 429 with ``Retry-After``. Anonymous requests share one bucket
  per client address (PUBLIC_RATE_PER_S), so public reads cannot starve uploads.
- Quota: every appended leaf and scan is charged to the key that uploaded it
  (``api_keys.bytes_used``); an upload that would pass ``quota_bytes`` is refused with
  507 before anything is written. A full disk (SQLite "database or disk is full") is a
  503 JSON answer, not a 500 page.
- Slow clients (slowloris): see glint.server (channel timeout and connection limit) and
  the whole-request deadline (glint.server.engine; on waitress, glint.server.deadline).

The anonymous rate and the certificate-check rate can be set per deployment in
``<home>/config.toml`` (read when the server starts)::

    [limits]
    public_rate_per_s = 50      # per client address, burst public_burst (100)
    verify_rate_per_s = 20      # POST /v1/certificates/verify per caller, burst verify_burst (40)
    connections_per_address = 64  # open connections per client address (0: no cap; glint.server.conncap)
"""

from __future__ import annotations

import threading
import time as _time

from glint.errors import UsageError

PUBLIC_RATE_PER_S = 50.0
PUBLIC_BURST = 100
MAX_BUCKETS = 10000  # distinct clients remembered; the oldest are forgotten beyond this


DEFAULTS = {"public_rate_per_s": PUBLIC_RATE_PER_S, "public_burst": float(PUBLIC_BURST),
            "verify_rate_per_s": 20.0, "verify_burst": 40.0}
COUNTS = ("connections_per_address",)  # whole numbers, 0 allowed (no cap); None: the server's default


def connections_per_address(section: dict) -> int | None:
    """``[limits] connections_per_address`` (an integer >= 0; 0: no cap), or None when not set."""
    v = section.get("connections_per_address")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1_000_000:
        raise UsageError(f"[limits] connections_per_address must be a whole number >= 0 (0: no cap), not {v!r}")
    return v


def configured(section: dict) -> dict[str, float]:
    """The ``[limits]`` table of a home's config.toml over DEFAULTS (positive numbers only)."""
    out = dict(DEFAULTS)
    for name, v in section.items():
        if name in COUNTS:
            continue  # read by the server (connections_per_address)
        if name not in DEFAULTS:
            raise UsageError(f"[limits] {name} is not a limit", "one of " + ", ".join((*DEFAULTS, *COUNTS)))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e9:
            raise UsageError(f"[limits] {name} must be a positive number, not {v!r}")
        out[name] = float(v)
    return out


class RateLimited(UsageError):
    """Too many requests (HTTP 429); ``retry_after`` in seconds."""

    def __init__(self, msg, retry_after: float):
        super().__init__(msg, f"retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class QuotaExceeded(UsageError):
    """The key's disk quota would be exceeded (HTTP 507)."""


class RateLimiter:
    """Token buckets keyed by a string (key id or client address); thread-safe."""

    def __init__(self, clock=_time.monotonic):
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, who: str, rate: float, burst: float, n: int = 1) -> None:
        """Spend ``n`` tokens of ``who``'s bucket (one per request; a batch upload one per event
        beyond its request's) or raise RateLimited."""
        now = self._clock()
        with self._lock:
            b = self._buckets.get(who)
            if b is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._buckets.clear()
                b = self._buckets[who] = [float(burst), now]
            tokens = min(float(burst), b[0] + (now - b[1]) * rate)
            b[1] = now
            if tokens < n:
                b[0] = tokens
                raise RateLimited(f"rate limit of {rate:g} requests/s for {who} reached", (n - tokens) / rate)
            b[0] = tokens - n


def check_quota(key, nbytes: int) -> None:
    """Refuse (QuotaExceeded) when ``nbytes`` more would pass the key's quota."""
    if key.bytes_used + nbytes > key.quota_bytes:
        raise QuotaExceeded(f"API key {key.key_id} has used {key.bytes_used} of its {key.quota_bytes} bytes; "
                            f"this upload needs {nbytes} more", "ask the server's operator to raise the quota")
