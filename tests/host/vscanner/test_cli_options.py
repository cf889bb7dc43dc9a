"""glint virtual-scanner's defaults: the flash under the glint home, the heap of a board, the runtime."""

from __future__ import annotations

import pytest

from glint.commands.virtual_scanner import default_flash, heap_of
from glint.errors import UsageError
from glint.vscanner.server import RUNTIME_NAMES, RUNTIMES, default_runtime


def test_flash_defaults_under_an_existing_home(tmp_path):
    assert default_flash(tmp_path) == tmp_path / "virtual-scanner" / "flash"
    with pytest.raises(UsageError, match="no glint home"):
        default_flash(tmp_path / "missing")


def test_heap_is_bytes_or_a_board_budget():
    from glint.fw.build import load_board

    assert heap_of(None) is None and heap_of("65536") == 65536
    assert heap_of("nicla_vision") == load_board("nicla_vision")["heap_bytes"]
    with pytest.raises(UsageError):
        heap_of("no_such_board")


def test_every_runtime_has_a_name_and_the_default_is_micropython_where_installed():
    from glint.mpy import available_runtimes

    assert set(RUNTIME_NAMES) == set(RUNTIMES)
    found = available_runtimes()
    assert default_runtime() == (found[0] if found else "cpython")
    assert "not MicroPython" in RUNTIME_NAMES["cpython"]  # the CPython fallback says so in one line
