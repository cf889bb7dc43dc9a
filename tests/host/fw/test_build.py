"""glint.fw.build: what each board gets, compiled for its architecture, reproducibly and incrementally."""

from __future__ import annotations

import shutil

import pytest
from glinttest import REPO

from glint.errors import UsageError
from glint.fw import build as fwbuild
from glint.fw.build import ARCH_CODES, build, has_native_code, list_boards, source_version


def _tree(tmp_path):
    """A private copy of the sources a build reads (so tests may edit them)."""
    root = tmp_path / "src"
    for rel in ("boards", "firmware", "shared/glintcore"):
        shutil.copytree(REPO / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("board", list_boards())
def test_every_board_builds_for_its_arch(board, tmp_path):
    b = build(board, out_dir=tmp_path / "out")
    dests = set(b.files)
    assert {"/board.py", "/board.json", "/main.py", "/lib/glintcore/cbor.mpy", "/lib/glintfw/app.mpy"} <= dests
    assert "/lib/glintcore/p256_gen.mpy" not in dests  # host-only generator
    assert b.version == source_version()
    for a in b.artifacts:
        data = a.path.read_bytes()
        assert a.size == len(data) and a.path.is_file()
        if a.dest.endswith(".mpy"):
            assert data[:2] == b"M\x06"  # .mpy v6: MicroPython 1.22+
            if has_native_code(data):  # native code carries the board's architecture
                assert data[2] >> 2 == ARCH_CODES[b.arch]
    # boards with a native emitter get the viper kernels; the sim (WebAssembly) does not
    viper = "/lib/glintfw/detect_viper.mpy" in dests
    assert viper == (b.port in fwbuild.NATIVE_PORTS)


def test_hashes_do_not_depend_on_the_checkout_path(tmp_path):
    a = build("xiao_esp32s3_sense", out_dir=tmp_path / "a")
    b = build("xiao_esp32s3_sense", out_dir=tmp_path / "b", root=_tree(tmp_path))
    assert a.files == b.files and a.build_id == b.build_id


def test_rebuild_is_cached_and_follows_edits(tmp_path):
    root = _tree(tmp_path)
    out = tmp_path / "out"
    first = build("sim", out_dir=out, root=root)
    assert first.compiled == len([d for d in first.files if d.startswith("/lib/")]) + 1  # + detect_viper (skipped)
    again = build("sim", out_dir=out, root=root)
    assert again.compiled == 0 and again.files == first.files
    cbor = root / "shared/glintcore/cbor.py"
    cbor.write_text(cbor.read_text() + "\n_EDITED = 1\n")
    edited = build("sim", out_dir=out, root=root)
    assert edited.compiled == 1
    changed = {d for d in first.files if first.files[d] != edited.files[d]}
    assert changed == {"/lib/glintcore/cbor.mpy"} and edited.build_id != first.build_id
    # a deleted source disappears from the staged tree too
    (root / "firmware/glintfw/pgm.py").unlink()
    pruned = build("sim", out_dir=out, root=root)
    assert "/lib/glintfw/pgm.mpy" not in pruned.files
    assert not (out / "mpy/lib/glintfw/pgm.mpy").exists()


def test_py_and_frozen_modes(tmp_path):
    py = build("sim", "py", out_dir=tmp_path)
    assert "/lib/glintfw/app.py" in py.files and not any(d.endswith(".mpy") for d in py.files)
    assert py.files["/lib/glintfw/app.py"] == fwbuild._sha((REPO / "firmware/glintfw/app.py").read_bytes())
    frozen = build("esp32_cam", "frozen", out_dir=tmp_path)
    assert set(frozen.files) == {"/board.py", "/board.json", "/main.py"}
    assert frozen.manifest()["mode"] == "frozen"


def test_bad_board_and_mode_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown board 'nope'") as e:
        build("nope", out_dir=tmp_path)
    assert "sim" in e.value.hint
    with pytest.raises(UsageError, match="unknown build mode"):
        build("sim", "elf", out_dir=tmp_path)


def test_compile_error_names_the_file(tmp_path):
    root = _tree(tmp_path)
    (root / "firmware/glintfw/broken.py").write_text("def f(:\n")
    from glint.errors import ToolError

    with pytest.raises(ToolError, match="broken.py"):
        build("sim", out_dir=tmp_path / "out", root=root)
