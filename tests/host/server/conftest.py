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
def api(tmp_path, device):
    home = tmp_path / "hq"
    home.mkdir()
    device.provision(home)
    a = Api(home)
    yield a
    a.close()
