"""Ledger benchmark (opt-in: pytest -m bench); the full figures come from tools/bench_ledger.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[3] / "tools" / "bench_ledger.py"


@pytest.mark.bench
def test_bench_ledger_small(tmp_path):
    r = subprocess.run([sys.executable, str(TOOL), "--size", "20000", "--batched", "5000", "--single", "200",
                        "--group", "800", "--repeat", "1", "--fsyncs", "100", "--proofs", "300", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    print(res)
    assert res["inclusion_proof_ms_median"] < 5 and res["bytes_per_event"] > 0
    assert res["group_appends_per_s"] > 0 and res["fsync_per_s"] > 0
