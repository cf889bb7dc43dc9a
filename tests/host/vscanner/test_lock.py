"""The locked scanner end to end on the virtual scanner (real MicroPython): provisioning sets the
home's maintainer key; the REPL and forced re-keying are refused until its signed challenge; the key
file is 0600; another home's maintainer key cannot unlock it (issue 15 point 3)."""

from __future__ import annotations

import stat

import pytest

from glint.errors import DeviceError, UsageError
from glint.keys import maintainer_key
from glint.link import open_scanner
from glint.registry import Registry
from glint.workflows.provision import provision
from glintcore import proto


@pytest.fixture
def locked(tmp_path, node_required):
    from glint.vscanner import LensSpec, VirtualScanner

    home = tmp_path / "home"
    with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=3)) as vs:
        with Registry.open(home) as reg, open_scanner(vs.url) as sc:
            assert sc.info()["locked"] is False  # bring-up: an unprovisioned scanner is open
            provision(reg, sc)
            yield home, vs, sc, reg


def test_provisioned_scanner_is_locked_and_unlocks_with_the_maintainer_key(locked, tmp_path):
    home, vs, sc, reg = locked
    info = sc.info(refresh=True)
    assert info["locked"] is True and info["maintainer"] is True
    kfile = home / "keys" / "maintainer.key"
    assert stat.S_IMODE(kfile.stat().st_mode) == 0o600
    dev_key = vs.flash_dir / "glint" / "key"
    assert stat.S_IMODE(dev_key.stat().st_mode) == 0o600 and stat.S_IMODE(vs.flash_dir.stat().st_mode) == 0o700
    with pytest.raises(DeviceError) as e:
        sc.request(proto.MSG_REPL, {})
    assert e.value.status == proto.ST_LOCKED
    sc.transport.write(b"\r\x03\r\x01")  # mpremote's interrupt + raw REPL: ignored while locked
    assert sc.info(refresh=True)["locked"] is True  # still in protocol mode
    with pytest.raises(DeviceError) as e:
        sc.keygen(force=True)
    assert e.value.status == proto.ST_LOCKED
    other = maintainer_key(tmp_path / "other-home")
    with pytest.raises(DeviceError) as e:
        sc.unlock(other)
    assert e.value.status == proto.ST_LOCKED
    assert sc.unlock(maintainer_key(home, create=False)) is True
    assert sc.info(refresh=True)["locked"] is False
    # re-provisioning with force goes through the unlock by itself, and the scanner locks again on reboot
    vs.restart()
    with open_scanner(vs.url) as sc2:
        assert sc2.info()["locked"] is True
        p = provision(reg, sc2, force=True)
        assert p.new_key and reg.device(p.device.device_id).pubkey == p.device.pubkey


def test_fw_deploy_unlocks_with_the_home_key_first(locked, tmp_path):
    """glint fw deploy's first step (before mpremote's interrupt) unlocks with the maintainer key."""
    from glint.fw.deploy import unlock_for_repl as _unlock

    home, vs, sc, reg = locked
    sc.close()
    with pytest.raises(DeviceError, match="refused this home's maintainer key"):
        _unlock(vs.url, maintainer_key(tmp_path / "stranger"))
    _unlock(vs.url, maintainer_key(home, create=False))
    with open_scanner(vs.url) as again:
        assert again.info()["locked"] is False
    _unlock("socket://127.0.0.1:9", maintainer_key(home, create=False))  # nothing there: left alone


@pytest.fixture
def unix_locked(tmp_path):
    """A scanner on the MicroPython Unix port, provisioned (so locked) from ``home``."""
    from glinttest import require_micropython

    from glint.vscanner import LensSpec, VirtualScanner

    require_micropython("unix")
    home = tmp_path / "home"
    with VirtualScanner(tmp_path / "flash", runtime="unix", lens=LensSpec("item", item_seed=4)) as vs:
        with Registry.open(home) as reg, open_scanner(vs.url) as sc:
            provision(reg, sc, label="desk-1")
        yield home, vs


def _glint(*args, home):
    from glinttest import glint_cli

    return glint_cli("--home", home, *args, env={"GLINT_LOG": "WARNING"})


def _one_line(r, *words):
    err = r.stderr.strip()
    assert r.returncode != 0 and err.startswith("glint: ") and len(err.splitlines()) == 1, r.stderr
    assert "(hint: " in err and "button" in err, err
    for w in words:
        assert w in err, err
    return err


def test_bringup_commands_unlock_first_or_refuse_in_one_line(unix_locked, tmp_path):
    """device provision --force and fw deploy unlock a locked scanner with the home's maintainer key; from a
    home without one, or another home's, they stop before anything is done with one line and a hint."""
    from glint.fw.deploy import unlock_for_repl

    home, vs = unix_locked
    with open_scanner(vs.url) as sc:
        assert sc.info(refresh=True)["locked"] is True
        pub_before = sc.info()["pubkey"]
    stranger, keyed = tmp_path / "stranger", tmp_path / "keyed"
    assert _glint("init", home=stranger).returncode == 0
    maintainer_key(keyed)  # a home with a maintainer key, not the one this scanner knows
    # the commands, as an engineer runs them: forced re-keying and the REPL for fw deploy, refused up front
    _one_line(_glint("device", "provision", "-p", vs.url, "--force", home=stranger),
              "is locked and this home has no maintainer key", "re-keying")
    _one_line(_glint("fw", "deploy", "-p", vs.url, "--board", "sim", home=stranger),
              "is locked and this home has no maintainer key", "REPL")
    # the library steps under them: another home's key is refused by the scanner
    with Registry.open(keyed) as reg, open_scanner(vs.url) as sc:
        with pytest.raises(DeviceError, match="refused this home's maintainer key"):
            provision(reg, sc, force=True)
    with pytest.raises(DeviceError, match="refused this home's maintainer key"):
        unlock_for_repl(vs.url, home=keyed)
    with open_scanner(vs.url) as sc:
        info = sc.info(refresh=True)
        assert info["locked"] is True and info["pubkey"] == pub_before  # nothing happened
    # the provisioning home unlocks by itself (the REPL step of fw deploy, then re-keying)
    unlock_for_repl(vs.url, home=home)
    with open_scanner(vs.url) as sc:
        assert sc.info(refresh=True)["locked"] is False
    vs.restart()
    with Registry.open(home) as reg, open_scanner(vs.url) as sc:
        assert sc.info(refresh=True)["locked"] is True
        assert provision(reg, sc, force=True).new_key and sc.info(refresh=True)["pubkey"] != pub_before


@pytest.mark.slow
def test_a_scanner_provisioned_without_a_maintainer_key_says_use_the_button(tmp_path):
    from glinttest import require_micropython

    from glint.fw.deploy import unlock_for_repl
    from glint.vscanner import LensSpec, VirtualScanner

    require_micropython("unix")
    with VirtualScanner(tmp_path / "flash", runtime="unix", lens=LensSpec("item", item_seed=5)) as vs:
        with open_scanner(vs.url) as sc:
            sc.keygen()  # no maintainer key sent: only the button opens it again
        vs.restart()
        with open_scanner(vs.url) as sc:
            info = sc.info(refresh=True)
            assert info["locked"] is True and info["maintainer"] is False
        with pytest.raises(UsageError, match="provisioned without a maintainer key") as e:
            unlock_for_repl(vs.url, home=tmp_path / "home")
        assert "button" in (e.value.hint or "")
