"""Matcher benchmark (opt-in: pytest -m bench): the 1:1 latency target, checked by the benchmark
tool itself; 1:N at 1e4..1e6 is `python tools/bench_match.py --sizes 10000,100000,1000000`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[3] / "tools" / "bench_match.py"


@pytest.mark.bench
def test_bench_verify_latency(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(TOOL), "--sizes", "", "--json", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    one = res["one_to_one"]
    print(one)
    assert one["verify_genuine_accept"] == 1.0
    assert one["verify_ms_median"] <= 2.0  # the target, median of 300 calls
