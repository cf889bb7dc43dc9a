"""The firmware type-checks against the MicroPython stubs of every board's port (mypy, glint.fw.typecheck).

Catches a call the port's MicroPython does not have (a CPython-only function, a
machine/esp32 API of another port) before it reaches a board. Needs mypy and, once,
network access to fetch the pinned micropython-*-stubs into build/stubs/ (tools/fw_stubs.py).
"""

from __future__ import annotations

import ast
import os
import shutil

import pytest
from glinttest import REPO

from glint.errors import ToolError
from glint.fw.build import list_boards, load_board


def _check(board, root=None):
    from glint.fw import typecheck

    try:
        return typecheck.check(board, root)
    except ToolError as e:
        if os.environ.get("GLINT_REQUIRE_TYPECHECK") == "1":
            raise
        pytest.skip(f"type check unavailable: {e.oneline()}")


def _flavour(board):
    from glint.fw.typecheck import flavour

    return flavour(load_board(board))


def _code(board):
    """board.py without its docstring: what mypy checks of the board itself."""
    tree = ast.parse((REPO / "boards" / board / "board.py").read_text())
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) else tree.body
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def _representatives():
    """The first board of each stub flavour: the others of that flavour are the same check (below)."""
    first = {}
    for b in list_boards():
        first.setdefault(_flavour(b), b)
    return set(first.values())


# mypy's verdict depends on the flavour's stubs, the glintfw files the port ships and board.py's code.
# One board per flavour runs in the default run; the rest (identical code, asserted below) under -m slow.
@pytest.mark.parametrize("board", [b if b in _representatives() else pytest.param(b, marks=pytest.mark.slow)
                                   for b in list_boards()])
def test_firmware_typechecks_against_the_port_stubs(board):
    findings = _check(board)
    assert not findings, "\n".join(str(f) for f in findings)


def test_boards_of_one_flavour_are_one_type_check():
    """Every board's board.py is its flavour representative's code, on the same port: the same mypy run."""
    reps = {_flavour(b): b for b in _representatives()}
    for b in list_boards():
        rep = reps[_flavour(b)]
        assert load_board(b)["port"] == load_board(rep)["port"], b
        assert _code(b) == _code(rep), f"{b}: board.py differs from {rep}'s; type-check it in the default run"


def test_a_call_the_port_lacks_is_found(tmp_path):
    root = tmp_path / "src"
    for rel in ("boards/esp32_cam", "boards/sim", "firmware", "shared/glintcore"):
        shutil.copytree(REPO / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "firmware/glintfw/bad.py").write_text(
        "import os\nimport time\n\n\ndef f():\n    time.sleep_ms(1)\n    return time.perf_counter(), os.urandom(4)\n")
    esp32 = {(f.path, f.code) for f in _check("esp32_cam", root)}
    assert esp32 == {("firmware/glintfw/bad.py", "attr-defined")}  # no time.perf_counter on MicroPython
    sim = [f for f in _check("sim", root) if f.path.endswith("bad.py")]
    assert [f.message.split('"')[-2] for f in sim] == ["perf_counter"]
