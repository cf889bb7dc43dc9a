"""Benchmark of glintcore.p256 (run with `pytest -m bench`): median ES256 sign/verify times.

The issue's budget: ES256 sign <= 5 ms median under the MicroPython WebAssembly port,
with <= 16 KB of precomputed table. The figures are printed (pytest -s to see them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SIGN_BUDGET_MS = 5.0
TABLE_BUDGET_BYTES = 16 * 1024
TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_p256.py"


def _tool():
    spec = importlib.util.spec_from_file_location("bench_p256", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.bench
def test_bench_p256_micropython(mpy):
    res = _tool().bench_micropython(runs=40)
    print("\nMicroPython WASM p256: sign %.2f ms, verify %.2f ms (median), %d bytes allocated per sign, "
          "table %d bytes" % (res["sign_ms"], res["verify_ms"], res["alloc_per_sign"], res["table_bytes"]))
    assert res["ok"]
    assert res["table_bytes"] <= TABLE_BUDGET_BYTES
    assert res["sign_ms"] <= SIGN_BUDGET_MS


@pytest.mark.bench
def test_bench_p256_cpython():
    res = _tool().bench_cpython(runs=100)
    print("\nCPython p256: sign %.3f ms, verify %.3f ms (median)" % (res["sign_ms"], res["verify_ms"]))
    assert res["ok"]
