"""schemathesis against the served OpenAPI document on a real `glint serve`, with a key of every role, plus
mutated real certificates and signed uploads over HTTP (tools/fuzz_api.py): only glint's JSON errors, no 500,
no answer outside the document. A bench run: `pytest -m bench tests/e2e/test_fuzz_api.py`
(GLINT_FUZZ_SECONDS per role, default 60; GLINT_FUZZ_MUTATIONS, default 20000)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_schemathesis_and_mutations_find_nothing(tmp_path):
    seconds = os.environ.get("GLINT_FUZZ_SECONDS", "60")
    n = os.environ.get("GLINT_FUZZ_MUTATIONS", "20000")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz_api.py"), "--seconds", seconds, "--mutations", n,
                        "--keep", str(tmp_path), "--json"], capture_output=True, text=True, timeout=7200)
    out = json.loads(r.stdout)
    print(json.dumps({k: v for k, v in out.items() if k != "failed_outputs"}, indent=1))
    assert r.returncode == 0, out["failed_outputs"] or out["mutations"]["findings"] or out["server_internal_errors"]
    assert all(s["cases"] > 0 for s in out["schemathesis"]), out["schemathesis"]


@pytest.mark.bench
def test_in_process_fuzz_of_every_route_finds_nothing():
    """tools/fuzz_api_wsgi.py: schemathesis in process and mutated valid requests of every route, through
    the WSGI app (GLINT_FUZZ_INPUTS, default 20000; the 10^6 run: --inputs 1000000, docs/security.md)."""
    n = os.environ.get("GLINT_FUZZ_INPUTS", "20000")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz_api_wsgi.py"), "--inputs", n, "--workers", "2",
                        "--examples", "3", "--json"], capture_output=True, text=True, timeout=7200)
    out = json.loads(r.stdout)
    print(json.dumps({k: v for k, v in out.items() if k != "statuses"}, indent=1))
    assert r.returncode == 0, out["failures"] or out["findings"] or out["internal_errors"]
    assert out["inputs"] >= int(n) and out["schemathesis_cases"] > 0
