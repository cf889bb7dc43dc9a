"""glint.fw.manifest: the deploy plan, and the device-side scripts run on a real MicroPython."""

from __future__ import annotations

import json

import pytest

from glint.fw.build import MANIFEST_PATH, build
from glint.fw.manifest import DeviceState, make_plan, prepare_script, shadow_candidates, state_script
from glint.fw.mpremote import MARKER, Command


@pytest.fixture(scope="module")
def sim_build(tmp_path_factory):
    return build("sim", out_dir=tmp_path_factory.mktemp("fw"))


def _state(manifest=None, **kw):
    return DeviceState(mpy=774, manifest=manifest, **kw)


def test_blank_device_gets_everything(sim_build):
    plan = make_plan(sim_build, _state())
    assert [a.dest for a in plan.copy] == [a.dest for a in sim_build.artifacts]
    assert plan.remove == [] and plan.changed and "no manifest" in plan.trusted
    assert plan.dirs == ["/lib", "/lib/glintcore", "/lib/glintfw"]  # parents first


def test_same_build_copies_nothing(sim_build):
    plan = make_plan(sim_build, _state(sim_build.manifest()))
    assert plan.copy == [] and plan.remove == [] and not plan.changed and plan.dirs == []
    assert len(plan.unchanged) == len(sim_build.artifacts)


def test_changed_and_stale_files(sim_build):
    m = sim_build.manifest()
    m["files"] = dict(m["files"])
    m["files"]["/lib/glintcore/cbor.mpy"] = "0" * 64  # changed since
    m["files"]["/lib/glintfw/old_module.mpy"] = "1" * 64  # a module this build no longer has
    plan = make_plan(sim_build, _state(m))
    assert [a.dest for a in plan.copy] == ["/lib/glintcore/cbor.mpy"]
    assert plan.remove == ["/lib/glintfw/old_module.mpy"]
    assert plan.dirs == ["/lib", "/lib/glintcore"]
    interim = plan.interim_manifest()  # written before copying: never vouches for cbor.mpy
    assert "/lib/glintcore/cbor.mpy" not in interim["files"] and interim["build"] == "partial"


def test_device_hashes_beat_the_manifest_and_force_copies_all(sim_build):
    hashes = dict(sim_build.files)
    hashes["/lib/glintfw/app.mpy"] = None  # deleted behind glint's back
    plan = make_plan(sim_build, _state(sim_build.manifest(), hashes=hashes))
    assert [a.dest for a in plan.copy] == ["/lib/glintfw/app.mpy"] and plan.trusted == "device hashes"
    assert len(make_plan(sim_build, _state(sim_build.manifest()), force=True).copy) == len(sim_build.artifacts)


def test_source_files_that_shadow_mpy_are_removed(sim_build):
    plan = make_plan(sim_build, _state(sim_build.manifest(), shadows=["/lib/glintfw/app.py"]))
    assert plan.remove == ["/lib/glintfw/app.py"] and plan.copy == []
    assert "/lib/glintfw/app.py" in shadow_candidates(sim_build)


def test_mpy_abi_checks(sim_build):
    assert _state().mpy_problem(sim_build) is None
    old = DeviceState(mpy=5, version=[1, 19, 1])
    assert "1.19.1" in old.mpy_problem(sim_build)
    assert DeviceState(mpy=6 | (3 << 8) | (10 << 10)).native_ok(build("esp32_cam"))
    assert not _state().native_ok(build("esp32_cam"))  # the WebAssembly port has no native arch


def test_dry_run_command_is_mpremote_syntax():
    cmd = Command("socket://127.0.0.1:1").add("exec", "print(1)").add("fs", "cp", "a b.mpy", ":lib/")
    assert str(cmd) == "mpremote connect socket://127.0.0.1:1 exec 'print(1)' + fs cp 'a b.mpy' :lib/"


def test_device_scripts_on_micropython(sim_build, tmp_path):
    """prepare_script then state_script on the real MicroPython (WebAssembly): folders, removals, manifest, hashes."""
    from glint.mpy import MicroPython, micropython_available

    if not micropython_available():
        pytest.skip("MicroPython WebAssembly port not installed")
    dev = tmp_path / "dev"
    (dev / "lib" / "glintfw").mkdir(parents=True)
    (dev / "lib" / "glintfw" / "app.py").write_text("stale source\n")
    (dev / "lib" / "glintfw" / "pgm.mpy").write_bytes((sim_build.out_dir / "lib/glintfw/pgm.mpy").read_bytes())
    blank = make_plan(sim_build, _state(shadows=["/lib/glintfw/app.py"]))
    with MicroPython(mounts=[(dev, "/dev0")]) as mp:
        mp.run("import os\nos.chdir('/dev0')")
        mp.run(prepare_script(blank.dirs, blank.remove, blank.interim_manifest()))
        out = mp.run(state_script(["/lib/glintfw/pgm.mpy", "/lib/glintfw/none.mpy"], shadow_candidates(sim_build)))
    line = [ln for ln in out.splitlines() if ln.startswith(MARKER)][0]
    st = DeviceState.from_json(json.loads(line[len(MARKER):]))
    assert st.cwd == "/dev0" and st.mpy & 0xFF == 6 and st.platform == "webassembly"
    assert st.manifest["build"] == "partial" and st.manifest["files"] == {}
    assert st.shadows == []  # the stale app.py was removed
    assert st.hashes == {"/lib/glintfw/pgm.mpy": sim_build.files["/lib/glintfw/pgm.mpy"], "/lib/glintfw/none.mpy": None}
    assert MANIFEST_PATH.startswith("/") and not MANIFEST_PATH[1:].startswith(".")
