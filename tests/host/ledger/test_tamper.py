"""Tampering with stored rows: `glint ledger verify` fails and names the row."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest

from glint.ledger import Ledger

from .conftest import populate, raw_db


@pytest.fixture
def filled(ledger_path, keys):
    """A ledger of 3 items x (register, enroll, 2 verifies) = 12 rows, checkpoint at 9, then 3 more."""
    with Ledger.open(ledger_path, keys=keys, durable=False) as led:
        items = populate(led, 3, 1)
        led.checkpoint()
        for it in items:
            led.record_verify(it, "pass", fap=1e-9)
        assert led.verify().ok
    return ledger_path


def _sql(path, *stmts):
    db = raw_db(path)
    for s in stmts:
        db.execute(*s) if isinstance(s, tuple) else db.execute(s)
    db.close()


def _verify_cli(path, tmp_path, subprocess_run: bool = False):
    """`glint ledger verify --ledger PATH|URL`: its exit code and output (in this process: the
    command's main(), which a subprocess runs the same; once per backend in a real subprocess)."""
    if subprocess_run:
        env = dict(os.environ, GLINT_HOME=str(tmp_path / "home"))
        env.pop("GLINT_DATABASE", None)
        r = subprocess.run([sys.executable, "-m", "glint", "ledger", "verify", "--ledger", str(path)],
                           capture_output=True, text=True, env=env, timeout=60)
        return r.returncode, (r.stdout + r.stderr).strip()
    from glint.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main(["--home", str(tmp_path), "ledger", "verify", "--ledger", str(path)])
    return rc, out.getvalue().strip()


def _leaf(path, idx):
    db = raw_db(path)
    (leaf,) = db.execute("SELECT leaf FROM leaves WHERE idx = ?", (idx,)).fetchone()
    db.close()
    return leaf


def _edited(leaf: bytes) -> bytes:
    # Same length, one character of a text value changed (brand, coating id or result).
    i = max(leaf.find(b"ACME"), leaf.find(b"pass"), leaf.find(b"bc1"))
    assert i > 0
    return leaf[:i] + b"X" + leaf[i + 1:]


def test_clean_ledger_verifies_in_a_subprocess(filled, tmp_path):
    rc, out = _verify_cli(filled, tmp_path, subprocess_run=True)
    assert rc == 0 and out.startswith("ok: 12 events"), out


def test_edited_leaf_is_named(filled, tmp_path):
    _sql(filled, ("UPDATE leaves SET leaf = ? WHERE idx = 4", (_edited(_leaf(filled, 4)),)))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 4 was edited" in out, out
    assert out.count("\n") == 0


def test_edit_is_named_by_the_chain(filled, tmp_path):
    new = _edited(_leaf(filled, 1))  # item 1's register event; its enroll (row 4) links to it
    _sql(filled, ("UPDATE leaves SET leaf = ? WHERE idx = 1", (new,)))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 1 was edited" in out, out


def test_edit_of_last_event_is_named_by_the_chain_head(filled, tmp_path):
    new = _edited(_leaf(filled, 11))  # nothing links to it: only the item's chain head names it
    _sql(filled, ("UPDATE leaves SET leaf = ? WHERE idx = 11", (new,)))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 11" in out, out


def test_edit_of_last_event_and_its_head_is_caught_by_the_cache(filled, tmp_path):
    from glint.ledger.merkle import leaf_hash

    new = _edited(_leaf(filled, 11))
    _sql(filled, ("UPDATE leaves SET leaf = ? WHERE idx = 11", (new,)),
         ("UPDATE items SET head = ? WHERE idx = 11", (leaf_hash(new),)))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "rows 8..11" in out, out


def test_deleted_row_is_named(filled, tmp_path):
    _sql(filled, "DELETE FROM leaves WHERE idx = 5")
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 5 is missing" in out, out


def test_deleted_last_row_is_named(filled, tmp_path):
    _sql(filled, "DELETE FROM leaves WHERE idx = 11", "UPDATE meta SET value = '11' WHERE key = 'size'")
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 11" in out, out


def test_reordered_rows_are_named(filled, tmp_path):
    a, b = _leaf(filled, 6), _leaf(filled, 7)
    _sql(filled, ("UPDATE leaves SET leaf = ? WHERE idx = 6", (b,)), ("UPDATE leaves SET leaf = ? WHERE idx = 7", (a,)))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 6 holds the event logged at index 7" in out, out


def test_reordered_whole_rows_are_named(filled, tmp_path):
    # Swap entire rows (index column included): the leaf still knows its index.
    _sql(filled, "UPDATE leaves SET idx = -1 WHERE idx = 2", "UPDATE leaves SET idx = 2 WHERE idx = 3",
         "UPDATE leaves SET idx = 3 WHERE idx = -1")
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "row 2 holds the event logged at index 3" in out, out


def test_edited_scan_bytes_are_named(filled, tmp_path):
    db = raw_db(filled)
    (idx,) = db.execute("SELECT idx FROM leaves WHERE scan IS NOT NULL LIMIT 1").fetchone()
    db.close()
    _sql(filled, ("UPDATE leaves SET scan = ? WHERE idx = ?", (b"forged", idx)))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and f"row {idx}: its stored scan bytes were edited" in out, out


def test_edited_checkpoint_is_refused(filled, tmp_path):
    _sql(filled, ("UPDATE checkpoints SET note = replace(note, ?, ?)", ("\n9\n", "\n8\n")))
    rc, out = _verify_cli(filled, tmp_path)
    assert rc == 1 and "checkpoint" in out, out
