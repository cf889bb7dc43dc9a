"""End to end on PostgreSQL: two hosts' homes name one database; the virtual scanner (real
MicroPython) is provisioned and items enrolled on one, `glint scan` (the CLI, in a subprocess)
verifies and identifies on the other; the ledger verifies; no SQLite file is created."""

import os
import shutil
import subprocess
import sys

from e2e_support import E2E_TIMEOUTS, ITEMS, PROFILE, lens


def _glint(home, *args):
    env = dict(os.environ)
    env.pop("GLINT_DATABASE", None)  # each home's config.toml names the database
    return subprocess.run([sys.executable, "-m", "glint", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_two_hosts_share_registry_references_and_ledger(vscanner, pg_url, tmp_path):
    from glint.link import open_scanner
    from glint.vscanner import LensSpec
    from glint.workflows import HostSession, enroll_from_scanner, provision

    a, b = tmp_path / "host-a", tmp_path / "host-b"
    for h in (a, b):
        h.mkdir()
        (h / "config.toml").write_text(f'database = "{pg_url}"\n')
    host = HostSession(a, durable=False)
    with open_scanner(vscanner.url, E2E_TIMEOUTS) as sc:
        provision(host.registry, sc, label="pg-desk")
        for item, seed in ITEMS.items():
            enroll_from_scanner(host, sc, item, captures=3,
                                between=lambda i, s=seed: vscanner.set_lens(LensSpec("item", s, 10 + i, PROFILE)))
    host.close()
    shutil.copytree(a / "keys", b / "keys")  # one log: every host of a deployment signs with its keys

    lens(vscanner, "item", "e2e:ITEM-B", 57)
    r = _glint(b, "scan", "--port", vscanner.url, "--item", "e2e:ITEM-B")
    assert r.returncode == 0 and r.stdout.startswith("PASS e2e:ITEM-B") and "certificate" in r.stdout, r.stderr
    lens(vscanner, "item", "e2e:ITEM-A", 58)
    r = _glint(b, "scan", "--port", vscanner.url)  # 1:N identify from host b's index of the shared references
    assert r.returncode == 0 and "e2e:ITEM-A" in r.stdout, r.stdout + r.stderr
    r = _glint(a, "device", "list")
    assert "pg-desk" in r.stdout and "active" in r.stdout, r.stderr
    r = _glint(a, "ledger", "verify")
    assert r.returncode == 0 and r.stdout.startswith("ok: 6 events"), r.stdout + r.stderr
    for h in (a, b):
        assert not [p.name for p in h.iterdir() if p.name in ("glint.db", "ledger.db", "match")]
