"""glint fw deploy end to end: install, confirm the running version, self-test, incremental re-deploy."""

from __future__ import annotations

import json
import time

from glint.fw.build import build, source_version


def test_deploy_reports_the_version_and_passes_the_selftest(deployed):
    r = deployed.first_deploy
    b = build(deployed.board)
    assert r["running"] == {"fw": source_version(), "board": deployed.board}
    assert r["build"] == b.build_id
    assert r["selftest_ok"] is True
    st = r["selftest"]
    assert st["camera"]["ok"] and st["frame"]["ok"] and st["storage"]["ok"]
    if deployed.kind == "virtual":  # a blank board: everything was copied
        assert sorted(r["copied"]) == sorted(b.files)
    print(f"\nfirst deploy to {deployed.url}: {len(r['copied'])} files in {deployed.first_deploy_s:.1f} s "
          f"(phases {r['seconds']})")


def test_second_deploy_copies_nothing_and_says_so(deployed):
    t0 = time.monotonic()
    r = deployed.glint("fw", "deploy", "-p", deployed.url, "--board", deployed.board)
    dt = time.monotonic() - t0
    assert "no change: nothing copied" in r.stdout
    assert "copied  " not in r.stdout
    assert f"running: {deployed.board} fw {source_version()}" in r.stdout
    print(f"\nno-change deploy: {dt:.1f} s")


def test_verify_finds_a_file_changed_on_the_device(deployed):
    """The manifest is trusted by default; --verify hashes the device's files and repairs them."""
    from glint.fw import mpremote
    from glint.fw.deploy import unlock_for_repl
    from glint.keys import maintainer_key

    # provisioned by test_bringup, the scanner is locked: the engineer's maintainer key opens the REPL
    key = maintainer_key(deployed.home, create=False)
    if key is not None:
        unlock_for_repl(deployed.url, key)
    # a module this board never imports, so the damaged copy cannot stop the firmware
    victim = "lib/glintfw/" + ("cam_openmv.mpy" if build(deployed.board).port == "esp32" else "cam_esp32.mpy")
    mpremote.run(mpremote.Command(deployed.url).add(
        "exec", f"f = open({victim!r}, 'wb')\nf.write(b'damaged')\nf.close()").add("reset"))
    trusting = json.loads(deployed.glint("fw", "deploy", "-p", deployed.url, "--board", deployed.board, "--json").stdout)
    assert trusting["copied"] == []
    r = json.loads(deployed.glint("fw", "deploy", "-p", deployed.url, "--board", deployed.board, "--verify", "--json").stdout)
    assert r["copied"] == ["/" + victim]
    assert r["running"]["fw"] == source_version()
