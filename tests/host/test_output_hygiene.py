"""Output hygiene: data cannot forge lines or terminal escapes in human output; device references
are never SQL patterns (issue 15, point 7)."""

from __future__ import annotations

import pytest
from glinttest import glint_cli

from glint.errors import UsageError
from glint.ledger import Keys, Ledger
from glint.registry import Registry
from glint.textsafe import clean


def glint(*args):
    return glint_cli(*args)


def test_clean_escapes_controls_and_bidi_only():
    assert clean("acme:BAG-1 café ✓") == "acme:BAG-1 café ✓"
    assert clean("a\nb\x1b[2Kc\x00\x7f\u202e\u2028") == "a\\nb\\x1b[2Kc\\x00\\x7f\\u202e\\u2028"
    assert clean(5) == "5"


def test_ledger_log_and_show_escape_forged_lines(tmp_path):
    home = tmp_path / "home"
    with Ledger.open(home / "ledger.db", keys=Keys.load(home, create=True), durable=False) as led:
        led.register_item("acme:BAG-1", "ACME")
        led.service("acme:BAG-1", "clean\n       99  2026-01-01T00:00:00Z  verify        acme:BAG-1  PASS\x1b[2K",
                    by="\x1b]0;owned\x07")
        with pytest.raises(UsageError, match="bad item id"):
            led.register_item("https://id.example.com/01/09506000134352/21/A\nB", "ACME")
    out = glint("ledger", "log", "--home", str(home)).stdout
    assert len(out.strip().splitlines()) == 2 and "\x1b" not in out and "\\n" in out and "\\x1b" in out
    out = glint("ledger", "show", "acme:BAG-1", "--home", str(home)).stdout
    assert "\x1b" not in out and "\x07" not in out and "99  2026" in out.splitlines()[-1]


def test_device_reference_is_not_a_like_pattern(tmp_path):
    home = tmp_path / "home"
    with Registry.open(home) as reg:
        reg.add_device("a1b2c3d4e5f60708", b"\x04" + bytes(64), label="bench-1")
    for ref in ("%%%%", "____", "a1b2%", "a1b_"):
        r = glint("device", "revoke", ref, "--home", str(home))
        assert r.returncode != 0 and "no provisioned device" in r.stderr and len(r.stderr.splitlines()) == 1, ref
    with Registry.open(home) as reg:
        assert not reg.device("a1b2c3d4e5f60708").revoked
        assert reg.find_device("A1B2").device_id == "a1b2c3d4e5f60708"
