"""glint fw / glint bringup command lines that need no device: build, dry run, freeze, version, errors."""

from __future__ import annotations

import json

from glinttest import REPO, glint_cli

from glint.fw.build import build, source_version


def glint(*args):
    return glint_cli(*args, cwd=REPO)


def test_build_json():
    r = glint("fw", "build", "--board", "openmv_rt1062", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    b = build("openmv_rt1062")
    assert out["build"] == b.build_id and out["fw"] == source_version() and out["files"] == b.files


def test_dry_run_prints_the_mpremote_commands_and_touches_nothing():
    # port 9 on localhost: nothing listens there, so any device contact would fail
    r = glint("fw", "deploy", "-p", "socket://127.0.0.1:9", "--board", "xiao_esp32s3_sense", "--dry-run")
    assert r.returncode == 0, r.stderr
    cmds = [ln for ln in r.stdout.splitlines() if ln.startswith("mpremote connect socket://127.0.0.1:9 ")]
    assert len(cmds) == 2  # the state query, then the install chain
    install = r.stdout[r.stdout.index(cmds[1]):]
    assert "fs cp " in install and ":lib/glintcore/" in install and ":lib/glintfw/" in install
    assert f"+ reset\ndry run: {len(build('xiao_esp32s3_sense').files)} files" in install
    assert "detect_viper.mpy" in install  # the ESP32-S3 gets the viper kernels


def test_freeze_and_version(tmp_path):
    r = glint("fw", "freeze", "--board", "esp32s3_eye", "-o", str(tmp_path))
    assert r.returncode == 0 and (tmp_path / "manifest.py").is_file()
    assert 'include("$(PORT_DIR)/boards/manifest.py")' in (tmp_path / "manifest.py").read_text()
    r = glint("fw", "version", "--json")
    out = json.loads(r.stdout)
    assert out["source"] == source_version() and set(out["builds"]) >= {"sim", "esp32_cam"}


def test_errors_are_one_line():
    r = glint("fw", "build", "--board", "nope")
    assert r.returncode == 2 and r.stderr.startswith("glint: unknown board 'nope'")
    r = glint("fw", "deploy", "-p", "socket://127.0.0.1:9", "--board", "sim")
    assert r.returncode == 2 and r.stderr.startswith("glint: mpremote cannot use socket://127.0.0.1:9")
    r = glint("bringup", "stats")
    assert r.returncode == 2 and "no scanner found on USB" in r.stderr


def test_stats_of_an_image_file(tmp_path):
    from glint.bringup.frames import save_png
    from glint.sim import capture, make_coating

    img = capture(make_coating(2, "bench"), "bench", seed=0).image
    path = save_png(img, tmp_path / "x.png")
    r = glint("bringup", "stats", "--image", str(path), "--json")
    st = json.loads(r.stdout)
    assert st["width"] == img.shape[1] and st["guidance_text"] == "good capture"
