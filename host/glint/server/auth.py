"""API keys of the HTTP ledger API: per-host bearer keys with a role, stored hashed.

Why keys and not mutual TLS: glint hosts are benches and field laptops that an operator
sets up by hand; a key is created, listed and revoked with one command on the server
(``glint api-key create/list/revoke``), needs no certificate authority, survives a
TLS-terminating reverse proxy (mTLS would end at the proxy), and revocation takes
effect on the next request. The transport must still be TLS off loopback: ``glint
serve`` refuses a non-loopback address unless told a TLS proxy is in front.

A key is ``glk_<id>_<secret>``: ``id`` (8 hex digits) names the row, ``secret`` is 32
random bytes (base64url). Only SHA-256 of the secret is stored: a 256-bit random secret
needs no slow password hash, and the comparison is constant-time (hmac.compare_digest).

Verified keys are cached by the server (a SQLite glint.db only): the row look-up was a
tenth of a millisecond of every request. The cache holds a key only after its secret
was checked against the stored hash, keyed by SHA-256 of the whole key; revocation
still takes effect at once: ``KeyStore.revoke`` replaces a stamp file beside glint.db
(``glint.db-revoked``) after its commit, every request stats it (a couple of microseconds)
and a changed stamp empties the cache before the key is looked at; an entry is
added only if the stamp did not change while its row was read. A key revoked some other
way (SQL by hand) is refused within CACHE_TTL_S. With PostgreSQL (keys shared by several
hosts, revoked from any) nothing is cached: every request reads its row.

Roles (what each may do, docs/api.md):

- ``bench``, ``field``: upload scans and their events (register, enroll, verify), ask nonces
- ``brand``: register items, enroll coatings, passports, transfers, service, rentals, retire;
  shipments, sharing grants and voids of its organization's items (glint.orgs)
- ``auditor``: read everything of its organization (full item pages; see organizations below)
- ``owner``: bound to one owner identity (``--owner``); reads the passport fields of audience
  ``owner`` of the items that identity currently owns (the custody state: the last transfer's
  ``owner``), public fields of any other item; uploads nothing
- ``regulator``, ``recycler``: read the passport fields of their audience (and public ones) of
  every item; upload nothing
- public (no key): checkpoint, proofs, certificates, redacted item pages

Every key belongs to one organization (``org``; glint.orgs): a key created without ``--org``
belongs to ``default``, the deployment's own. Keys of the roles in ``ORG_SCOPED_ROLES`` act for
their organization: they read the non-public data of its items and of items shared with it,
and change only its items (a refusal is HTTP 403 with ``reason`` ``other-organization`` or
``not-shared``). Owner, regulator and recycler keys read across organizations, as their
passport audience allows.

Every key also carries its service limits: requests per second (token bucket) and a
disk quota (bytes of leaves and scans it may add); see glint.server.limits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from glint.errors import UsageError

ROLES = ("bench", "field", "brand", "auditor", "owner", "regulator", "recycler")
PUBLIC = "public"
KEY_PREFIX = "glk_"
DEFAULT_RATE_PER_S = 1000.0          # sustained requests per second per key (burst: twice that)
DEFAULT_QUOTA_BYTES = 1 << 30        # 1 GiB of leaves and scans per key
LOOKUP_CONNECTIONS = 16              # database connections the key look-ups of a server share (KeyStore._look_up)
CACHE_TTL_S = 1.0                    # a cached verified key is looked up again after this long
MAX_CACHED_KEYS = 10_000

# Event kinds each role may upload (POST /v1/events).
UPLOAD_KINDS = {
    "bench": frozenset({"register", "enroll", "verify"}),
    "field": frozenset({"register", "enroll", "verify"}),
    "brand": frozenset({"register", "enroll", "passport", "transfer", "service", "rental-out",
                        "rental-return", "suspect", "clear", "retire", "assembly", "derive", "bind",
                        "ship", "share", "void"}),
    "auditor": frozenset(),
    "owner": frozenset(),
    "regulator": frozenset(),
    "recycler": frozenset(),
}
NONCE_ROLES = frozenset({"bench", "field"})
ORG_SCOPED_ROLES = frozenset({"bench", "field", "brand", "auditor"})
FULL_READ_ROLES = frozenset({"brand", "auditor"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys(
    key_id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,      -- SHA-256 of the secret; the secret itself is never stored
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created REAL NOT NULL,
    revoked_at REAL,
    rate_per_s REAL NOT NULL,
    quota_bytes INTEGER NOT NULL,
    bytes_used INTEGER NOT NULL DEFAULT 0,
    last_used REAL,
    owner TEXT,                     -- the owner identity of an owner key (NULL for other roles)
    org TEXT);                      -- its organization (glint.orgs; NULL: the default organization)
"""
MAX_OWNER_LEN = 128


class AuthError(UsageError):
    """No key, an unknown or revoked key (HTTP 401)."""


class Forbidden(UsageError):
    """A valid key whose role may not do this (HTTP 403)."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    label: str
    created: float
    revoked_at: float | None
    rate_per_s: float
    quota_bytes: int
    bytes_used: int
    last_used: float | None
    owner: str | None = None    # an owner key's owner identity
    org: str | None = None      # its organization (None: the default one, glint.orgs.DEFAULT_ORG)

    @property
    def organization(self) -> str:
        return self.org or "default"

    def to_dict(self) -> dict:
        return {"id": self.key_id, "role": self.role, "label": self.label, "created": self.created,
                "revoked_at": self.revoked_at, "rate_per_s": self.rate_per_s, "quota_bytes": self.quota_bytes,
                "bytes_used": self.bytes_used, "last_used": self.last_used, "owner": self.owner,
                "org": self.organization}


_COLS = "key_id, role, label, created, revoked_at, rate_per_s, quota_bytes, bytes_used, last_used, owner, org"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse_key(token: str) -> tuple[str, str]:
    """``glk_<id>_<secret>`` -> (id, secret); AuthError when it has another shape."""
    if not isinstance(token, str) or not token.startswith(KEY_PREFIX) or len(token) > 100:
        raise AuthError("malformed API key", "keys look like glk_<id>_<secret> (glint api-key create)")
    key_id, sep, secret = token[len(KEY_PREFIX):].partition("_")
    if not sep or len(key_id) != 8 or not secret or not token.isascii():
        raise AuthError("malformed API key", "keys look like glk_<id>_<secret> (glint api-key create)")
    return key_id, secret


class KeyStore:
    """The api_keys table of a server's glint.db (thread-safe: one connection per thread)."""

    def __init__(self, path: str | Path):
        from glint.db import is_url

        self.path = path if is_url(path) else Path(path)
        self._local = threading.local()
        # verified keys (module docstring): sha256(key) -> (ApiKey, when cached); None: no cache
        self._cache: dict[bytes, tuple[ApiKey, float]] | None = None if is_url(path) else {}
        self._stamp_path = None if is_url(path) else Path(str(path) + "-revoked")
        self._cache_stamp: tuple | None = None
        self._cache_lock = threading.Lock()
        # look-ups on the server's request path borrow a connection (at most LOOKUP_CONNECTIONS at once)
        # instead of one per thread: glint serve runs a thread per client connection (glint.server.engine),
        # and a PostgreSQL connection per client connection would exhaust the database's
        self._pool: list = []
        self._pool_slots = threading.BoundedSemaphore(LOOKUP_CONNECTIONS)
        c = self._conn()
        c.executescript(SCHEMA)
        try:
            c.execute("SELECT owner FROM api_keys LIMIT 0")
        except sqlite3.DatabaseError:   # a home made before owner keys (PostgreSQL errors surface as these)
            c.execute("ALTER TABLE api_keys ADD COLUMN owner TEXT")
        try:
            c.execute("SELECT org FROM api_keys LIMIT 0")
        except sqlite3.DatabaseError:   # a home made before organizations
            c.execute("ALTER TABLE api_keys ADD COLUMN org TEXT")

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            from glint.registry import connect

            c = self._local.conn = connect(self.path)
        return c

    def create(self, role: str, label: str, rate_per_s: float = DEFAULT_RATE_PER_S,
               quota_bytes: int = DEFAULT_QUOTA_BYTES, owner: str | None = None,
               org: str | None = None) -> tuple[ApiKey, str]:
        """A new key; returns (record, the full key). The key is shown once and never stored.

        ``owner``: the owner identity an ``owner`` key reads for (required for that role, refused
        for the others), as transfers name it (``glint transfer ITEM --to OWNER``); ``org``: the
        organization the key belongs to (one of glint.orgs; None: the default one).
        """
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}", "one of " + ", ".join(ROLES))
        if role == "owner":
            if not isinstance(owner, str) or not 0 < len(owner) <= MAX_OWNER_LEN or not owner.isprintable():
                raise UsageError(f"an owner key needs its owner identity (1..{MAX_OWNER_LEN} printable characters)",
                                 "give --owner NAME, as transfers name the owner")
        elif owner is not None:
            raise UsageError(f"only an owner key is bound to an owner (not a {role} key)", "drop --owner")
        if not label or len(label) > 64 or not label.isprintable():
            raise UsageError("a key's label is 1..64 printable characters (the host it is for)")
        if not rate_per_s > 0 or quota_bytes < 0:
            raise UsageError("rate must be positive and quota not negative")
        if org is not None:
            from glint.orgs import DEFAULT_ORG, Orgs

            Orgs(self._conn()).require(org)
            org = None if org == DEFAULT_ORG else org
        key_id = secrets.token_hex(4)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        self._conn().execute("INSERT INTO api_keys(key_id, secret_hash, role, label, created, rate_per_s, "
                             "quota_bytes, owner, org) VALUES (?,?,?,?,?,?,?,?,?)",
                             (key_id, _hash(secret), role, label, _time.time(), float(rate_per_s), int(quota_bytes),
                              owner, org))
        rec = self.get(key_id)
        assert rec is not None  # just inserted
        return rec, f"{KEY_PREFIX}{key_id}_{secret}"

    def get(self, key_id: str) -> ApiKey | None:
        row = self._conn().execute(f"SELECT {_COLS} FROM api_keys WHERE key_id=?", (key_id,)).fetchone()
        return ApiKey(*row) if row else None

    def list(self) -> list[ApiKey]:
        return [ApiKey(*r) for r in self._conn().execute(f"SELECT {_COLS} FROM api_keys ORDER BY created")]

    def revoke(self, key_id: str) -> ApiKey:
        key_id = key_id[len(KEY_PREFIX):].partition("_")[0] if key_id.startswith(KEY_PREFIX) else key_id
        n = self._conn().execute("UPDATE api_keys SET revoked_at=? WHERE key_id=? AND revoked_at IS NULL",
                                 (_time.time(), key_id)).rowcount
        k = self.get(key_id)
        if k is None:
            raise UsageError(f"no API key {key_id!r}", "see 'glint api-key list'")
        if n == 0:
            raise UsageError(f"API key {key_id} was already revoked")
        self._touch_stamp()
        return k

    def _touch_stamp(self) -> None:
        """Tell every server on this glint.db that a key was revoked (after the commit): a new
        file each time (written aside, then renamed over), so its inode changes however soon
        the next revocation follows."""
        if self._stamp_path is None:
            return
        tmp = self._stamp_path.with_name(f"{self._stamp_path.name}.{secrets.token_hex(4)}")
        tmp.write_text(f"{_time.time()}\n")
        os.replace(tmp, self._stamp_path)
        with self._cache_lock:
            if self._cache is not None:
                self._cache.clear()

    def _stamp(self) -> tuple | None:
        try:
            st = os.stat(self._stamp_path) if self._stamp_path is not None else None
        except FileNotFoundError:
            return None
        return None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)

    def authenticate(self, header: str | None) -> ApiKey | None:
        """The key of an ``Authorization: Bearer ...`` header; None without one; AuthError if bad."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("Authorization must be 'Bearer <API key>'")
        token = token.strip()
        cache = self._cache
        if cache is None:
            return self._look_up(token)
        stamp = self._stamp()
        if stamp != self._cache_stamp:  # a revocation since: nothing cached before it counts
            with self._cache_lock:
                cache.clear()
                self._cache_stamp = stamp
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = _time.monotonic()
        hit = cache.get(digest)
        if hit is not None and now - hit[1] < CACHE_TTL_S:
            return hit[0]
        key = self._look_up(token)
        with self._cache_lock:
            if stamp == self._cache_stamp == self._stamp():  # no revocation while the row was read
                if len(cache) >= MAX_CACHED_KEYS:
                    cache.clear()
                cache[digest] = (key, now)
        return key

    def _look_up(self, token: str) -> ApiKey:
        """The key ``token`` names, checked against its stored hash and not revoked (AuthError)."""
        key_id, secret = parse_key(token)
        with self._pool_slots:
            try:
                c = self._pool.pop()
            except IndexError:
                from glint.registry import connect

                c = connect(self.path)
            try:
                row = c.execute(f"SELECT secret_hash, {_COLS} FROM api_keys WHERE key_id=?", (key_id,)).fetchone()
            except BaseException:
                c.close()
                raise
            self._pool.append(c)
        # Compare against a dummy for unknown ids as well: the answer time does not tell ids apart.
        stored = row[0] if row else b"\x00" * 32
        if not hmac.compare_digest(stored, _hash(secret)) or row is None:
            raise AuthError("unknown API key", "ask the server's operator for a key: glint api-key create")
        key = ApiKey(*row[1:])
        if key.revoked_at is not None:
            raise AuthError(f"API key {key_id} was revoked", "ask the server's operator for a new key")
        return key

    def charge_many(self, conn: sqlite3.Connection, charges: Iterable[tuple[str, int]]) -> None:
        """Add each (key id, bytes) to that key's usage, in one statement (on ``conn``, inside the
        caller's transaction)."""
        now = _time.time()
        conn.executemany("UPDATE api_keys SET bytes_used = bytes_used + ?, last_used=? WHERE key_id=?",
                         [(int(n), now, k) for k, n in charges])

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None
        while self._pool:
            self._pool.pop().close()


def org_scope(key: ApiKey | None) -> str | None:
    """The organization whose items ``key`` is limited to (None: the public, or a cross-org role)."""
    return key.organization if key is not None and key.role in ORG_SCOPED_ROLES else None


def may_claim_factory(key: ApiKey | None, data) -> None:
    """A factory enrollment is the brand's claim (issue 16): another role registers an item as ``later``.

    Raise Forbidden when ``data`` (a register event's fields) claims provenance ``factory`` and the
    key is not a brand key, as ``glint enroll --provenance factory`` needs the brand credential.
    """
    prov = data.get("prov") if isinstance(data, dict) else None
    if isinstance(prov, dict) and prov.get("class") == "factory" and (key is None or key.role != "brand"):
        role = "an anonymous" if key is None else f"a {key.role}"
        raise Forbidden(f"{role} key may not register a factory enrollment",
                        "the factory claim is the brand's: upload it with a brand key, or register it "
                        "with provenance class 'later' (who, when, why)")


def may_upload(key: ApiKey | None, kind: str) -> None:
    """Raise AuthError/Forbidden unless ``key`` may upload an event of ``kind``."""
    if key is None:
        raise AuthError("POST /v1/events needs an API key", "send 'Authorization: Bearer <key>'")
    if kind not in UPLOAD_KINDS.get(key.role, ()):
        allowed = ", ".join(sorted(UPLOAD_KINDS.get(key.role, ()))) or "none"
        raise Forbidden(f"a {key.role} key may not upload {kind!r} events", f"it may upload: {allowed}")
