"""Fixtures for the HTTP API tests: a served home with a provisioned soft device and API keys."""

from __future__ import annotations

import pytest
from softdevice import Api, SoftDevice, sim_coating


@pytest.fixture(scope="session")
def coating():
    return sim_coating(7)


@pytest.fixture(scope="session")
def other_coating():
    return sim_coating(8)


@pytest.fixture
def device():
    return SoftDevice(1)


@pytest.fixture
def api(request, tmp_path, device):
    """A served home; ``@pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)``
    runs a test on both backends (on PostgreSQL the home's config.toml names a fresh database)."""
    home = tmp_path / "hq"
    home.mkdir()
    if getattr(request, "param", "sqlite") == "postgres":
        (home / "config.toml").write_text(f'database = "{request.getfixturevalue("pg_url")}"\n')
    device.provision(home)
    a = Api(home)
    yield a
    a.close()
