"""Fixtures for the ledger tests: keys, a ledger in a temporary directory, a small populated log."""

from __future__ import annotations

import pytest

from glint.ledger import Keys, Ledger

ITEM = "https://id.example.com/01/09506000134352/21/ABC123"
T0 = 1_700_000_000


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys.generate("glint.test/ledger")


@pytest.fixture
def ledger_path(backend, tmp_path):
    """Where the test's ledger lives: a SQLite file, or a fresh PostgreSQL database (both backends)."""
    return backend or tmp_path / "ledger.db"


@pytest.fixture
def sqlite_ledger_path(tmp_path):
    """A SQLite ledger file, for what only the embedded backend has (its lock file, schema-1 upgrade)."""
    return tmp_path / "ledger.db"


def raw_db(target):
    """A direct autocommit connection to a ledger's tables, to tamper with them behind the ledger's
    back: sqlite3 on a file, glint.db's PostgreSQL connection (schema ``ledger``) on a URL."""
    if isinstance(target, str):
        from glint.db import connect

        return connect(target, schema="ledger")
    import sqlite3

    return sqlite3.connect(target, isolation_level=None)


@pytest.fixture
def ledger(ledger_path, keys):
    with Ledger.open(ledger_path, keys=keys, durable=False) as led:
        yield led


def populate(led: Ledger, n_items: int = 3, verifies: int = 2) -> list[str]:
    """Items with register, enroll and some verify events, interleaved across items."""
    items = [f"acme:BAG-{i:04d}" for i in range(n_items)]
    for i, it in enumerate(items):
        led.register_item(it, "ACME", passport={"origin": "IT"}, time=T0 + i)
    for it in items:
        led.add_coating(it, "c1", ref=bytes(32), time=T0 + 10)
    for v in range(verifies):
        for it in items:
            led.record_verify(it, "pass", fap=1e-9, device="a1b2c3d4", operator="ana", location="Paris",
                              scan=f"scan-{it}-{v}".encode(), time=T0 + 20 + v)
    return items
