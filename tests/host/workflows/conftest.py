import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "link"))  # peer.py: the firmware App behind a socket

from peer import Peer  # noqa: E402


@pytest.fixture
def peer(tmp_path):
    p = Peer(tmp_path / "device")
    yield p
    p.close()

