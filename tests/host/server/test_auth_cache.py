"""The server's cache of verified API keys (glint.server.auth.KeyStore.authenticate): a revocation
takes effect on the next request, however soon after a look-up it comes."""

from __future__ import annotations

import pytest

from glint.server import auth
from glint.server.auth import AuthError, KeyStore


@pytest.fixture
def stores(tmp_path):
    """The server's KeyStore and the CLI's (another connection, as `glint api-key revoke` opens)."""
    db = tmp_path / "glint.db"
    server, cli = KeyStore(db), KeyStore(db)
    yield server, cli
    server.close()
    cli.close()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_key_revoked_by_the_cli_is_refused_at_once(stores):
    server, cli = stores
    rec, token = cli.create("bench", "host-a")
    for _ in range(3):  # looked up, then answered from the cache
        assert server.authenticate(bearer(token)).key_id == rec.key_id
    cli.revoke(rec.key_id)
    with pytest.raises(AuthError, match="revoked"):
        server.authenticate(bearer(token))


def test_revocations_in_quick_succession_each_take_effect(stores):
    """Two revocations within the file system's timestamp granularity: the stamp is a new file
    each time (its inode changes), so the second is not missed."""
    server, cli = stores
    keys = [cli.create("bench", f"host-{i}") for i in range(4)]
    for rec, token in keys:
        server.authenticate(bearer(token))
        cli.revoke(rec.key_id)
        with pytest.raises(AuthError, match="revoked"):
            server.authenticate(bearer(token))


def test_the_cache_is_keyed_by_the_whole_key(stores):
    server, cli = stores
    rec, token = cli.create("brand", "host-a")
    server.authenticate(bearer(token))
    with pytest.raises(AuthError, match="unknown API key"):
        server.authenticate(bearer(token[:-2] + ("AA" if not token.endswith("AA") else "BB")))


def test_a_key_revoked_by_hand_in_sql_is_refused_within_the_ttl(stores, monkeypatch):
    import time

    server, cli = stores
    monkeypatch.setattr(auth, "CACHE_TTL_S", 0.05)
    rec, token = cli.create("bench", "host-a")
    server.authenticate(bearer(token))
    cli._conn().execute("UPDATE api_keys SET revoked_at=1 WHERE key_id=?", (rec.key_id,))  # no stamp
    time.sleep(0.06)
    with pytest.raises(AuthError, match="revoked"):
        server.authenticate(bearer(token))


def test_a_revocation_while_a_row_is_read_is_not_cached(stores, monkeypatch):
    """Request 1 reads its key's row (valid); the key is revoked and request 2 (another thread)
    sees the new stamp and empties the cache; request 1 then must not cache what it read before
    the revocation, else the revoked key would be answered from the cache from then on."""
    server, cli = stores
    rec, token = cli.create("bench", "host-a")
    _other, other_token = cli.create("bench", "host-b")
    look_up = server._look_up
    raced = []

    def racing(tok):
        key = look_up(tok)                # valid when read ...
        if not raced:
            raced.append(1)
            cli.revoke(rec.key_id)        # ... revoked before it is cached,
            server.authenticate(bearer(other_token))  # and another request moves the cache on
        return key

    monkeypatch.setattr(server, "_look_up", racing)
    server.authenticate(bearer(token))    # request 1 raced the revocation (answered as before it)
    with pytest.raises(AuthError, match="revoked"):
        server.authenticate(bearer(token))
