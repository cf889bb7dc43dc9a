import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # peer.py, shared with tests/host/workflows

from peer import Peer  # noqa: E402


@pytest.fixture
def peer(tmp_path):
    p = Peer(tmp_path / "device")
    yield p
    p.close()


@pytest.fixture(scope="module")
def coating_images():
    """Two captures of one simulated coating and one of another (a counterfeit), 320x240."""
    from glint import sim

    c = sim.make_coating(seed=7, profile="bench")
    other = sim.make_coating(seed=8, profile="bench")
    return {"a1": sim.capture(c, profile="bench", seed=1).image,
            "a2": sim.capture(c, profile="bench", seed=2).image,
            "b": sim.capture(other, profile="bench", seed=3).image}
