"""glint.pgcluster without a server: stop()'s removal of the cluster's directory (the session's cluster in
tests/conftest.py stops with remove_in_background=True)."""

import time
from pathlib import Path

from glint.pgcluster import Cluster


def _stopped_cluster(root: Path) -> Cluster:
    (root / "base" / "1").mkdir(parents=True)
    for i in range(50):
        (root / "base" / "1" / str(i)).write_bytes(b"x" * 100)
    return Cluster(root, Path("/nonexistent/bin"), None)  # no data/: stop() has no server to stop


def test_stop_removes_the_directory_before_returning(tmp_path):
    root = tmp_path / "glint-pg-a"
    _stopped_cluster(root).stop()
    assert not root.exists()


def test_stop_can_leave_the_removal_to_a_detached_rm(tmp_path):
    root = tmp_path / "glint-pg-b"
    _stopped_cluster(root).stop(remove_in_background=True)
    assert not root.exists()  # renamed away at once: the watchdog sees no data directory left
    deadline = time.monotonic() + 60
    while any(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []
