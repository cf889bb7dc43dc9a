"""Concurrency and faults on a PostgreSQL ledger (slow): tools/pg_faults.py, 3 rounds of 4 writer
processes appending at once while a fifth is SIGKILLed mid-append; 20 rounds: run the tool."""

import subprocess
import sys

import pytest

from glinttest import REPO


@pytest.mark.slow
def test_four_writers_and_a_sigkilled_one_lose_and_duplicate_nothing(pg_cluster):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "pg_faults.py"), "--rounds", "3", "--seconds", "1.5",
                        "--url", pg_cluster.url()], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert "lost 0, duplicated 0, rounds with a problem: 0" in last, r.stdout
    assert " 0 acknowledged" not in last, r.stdout
