"""SpoolSync against a real virtual scanner: unknown device left alone, no-match and refusals
recorded once each with an exception, re-sync of an emptied spool is a no-op."""

import pytest

from glint.home import Home
from glint.ledger import Keys, Ledger
from glint.link import open_scanner
from glint.match import Database, enroll, spots_from_image
from glint.registry import Registry
from glint.sync import SpoolSync
from glint.vscanner import LensSpec, VirtualScanner
from glint.workflows.provision import provision

pytestmark = pytest.mark.usefixtures("mpy_runtime")  # needs a MicroPython: the default runtime


def test_sync_outcomes(tmp_path):
    from glint import sim

    home = Home(tmp_path / "home").ensure()
    prof = sim.get_profile("field")
    coating = sim.make_coating(1, prof)
    db = Database(home.match_dir)
    db.add("acme:BAG-1", enroll([spots_from_image(sim.capture(coating, prof, seed=k).image) for k in (1, 2, 3)]))
    led = Ledger.open(home.ledger_path, keys=Keys.load(home.root, create=True), durable=False)
    reg = Registry.open(home)
    try:
        with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=1, capture_seed=7)) as vs, \
                open_scanner(vs.url) as sc:
            sc.keygen(entropy=b"k" * 32)
            assert vs.press_button()["ok"]
            sync = SpoolSync(led, reg, db)
            rep = sync.sync(sc)                      # device unknown here: left on the device
            assert (rep.skipped, rep.acked, sc.spool_list()) == (1, 0, [1])
            provision(reg, sc)
            vs.set_lens(LensSpec("counterfeit", item_seed=1, capture_seed=8))
            assert vs.press_button()["ok"]
            rep = sync.sync(sc)
            assert [s for _c, s, _i in rep.items] == ["recorded", "no-match"]
            assert rep.items[0][2] == "acme:BAG-1" and sc.spool_list() == []
            assert sync.sync(sc).listed == 0
            ex = sync.exceptions.list()
            assert len(ex) == 1 and ex[0].source == "sync" and "no enrolled item" in ex[0].reason
            reg.revoke(sc.info()["device_id"])
            assert vs.press_button()["ok"]
            rep = sync.sync(sc)
            assert (rep.refused, rep.acked, sc.spool_list()) == (1, 1, [])
            assert "revoked" in sync.exceptions.list()[-1].reason
        assert sum(e.kind == "verify" for e in led.events()) == 1
        assert sync.last_run()["refused"] == 1
    finally:
        reg.close()
        led.close()


def test_bad_spool_entry_is_quarantined_and_the_rest_syncs(tmp_path):
    """A spool entry rewritten on the flash (a well-formed record holding CBOR with two NaN map keys,
    which once made the decoder raise ValueError and killed the daemon) is refused with its bytes kept
    in the exception queue; the entries before and after it are synced."""
    import sys

    from glinttest import REPO

    sys.path.insert(0, str(REPO / "firmware"))
    from glintfw import store  # the firmware's own record writer (CRC, atomic rename), run on CPython

    home = Home(tmp_path / "home").ensure()
    led = Ledger.open(home.ledger_path, keys=Keys.load(home.root, create=True), durable=False)
    reg = Registry.open(home)
    evil = bytes.fromhex("a2f97e0001f97e0002")
    try:
        with VirtualScanner(tmp_path / "flash", lens=LensSpec("item", item_seed=1, capture_seed=7)) as vs:
            with open_scanner(vs.url) as sc:
                sc.keygen(entropy=b"q" * 32)
                provision(reg, sc)
                for _ in range(3):
                    assert vs.press_button()["ok"]
                assert sc.spool_list() == [1, 2, 3]
            vs.kill()  # the flash is loaded at boot: rewrite the entry while the board is off
            [entry] = (tmp_path / "flash").rglob("0000000002.scn")
            store.write_record(str(entry), evil)
            vs.start()
            sc = open_scanner(vs.url)
            assert sc.spool_get(2) == evil
            sync = SpoolSync(led, reg, None)
            rep = sync.sync(sc)
            assert rep.error is None and sc.spool_list() == []
            states = {c: s for c, s, _i in rep.items}
            assert states[2] == "refused" and states[1] == states[3] == "no-match"
            [bad] = [e for e in sync.exceptions.list() if e.subject.endswith(":2")]
            assert bad.detail["scan"] == evil.hex() and "NaN" in bad.reason
            sc.close()
    finally:
        reg.close()
        led.close()
