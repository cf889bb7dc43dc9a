"""`glint serve` runs on one CPU by default (`--cpus`, glint.server.pin_cpus): its threads take
turns on one GIL, and handing them from core to core on every turn doubled its CPU per request
(docs/api.md). The process's affinity is read back from /proc, as the kernel sees it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                                reason="needs Linux CPU affinity and at least 2 usable CPUs")


def _serve(tmp_path, *extra):
    env = dict(os.environ, GLINT_HOME=str(tmp_path))
    return subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _threads_cpus(pid: int) -> set[str]:
    """Cpus_allowed_list of every thread of ``pid`` (the ledger and fsync threads included)."""
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                out.add(line.split(":", 1)[1].strip())
    return out


@pytest.mark.parametrize("extra, pinned", [((), True), (("--cpus", "0"), False)])
def test_serve_threads_run_on_one_cpu_unless_told(tmp_path, extra, pinned):
    proc = _serve(tmp_path, *extra)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read()
        cpus = _threads_cpus(proc.pid)
        assert len(cpus) == 1, cpus  # every thread alike
        allowed = sorted(os.sched_getaffinity(0))
        want = str(allowed[-1]) if pinned else None
        if pinned:
            assert cpus == {want}
        else:
            assert cpus != {str(allowed[-1])} and cpus != {str(allowed[0])}
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_negative_cpus(tmp_path):
    proc = _serve(tmp_path, "--cpus", "-1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, (out, err)
    assert "--cpus -1 is negative" in err and len(err.strip().splitlines()) <= 2, err
