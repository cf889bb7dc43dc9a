"""The host companion against the virtual scanner on real MicroPython over socket://.

One scanner and one home per module (see conftest.py); tests run in file order and the
destructive ones (scanner killed, device revoked) come last.
"""

import subprocess
import sys
import threading
import time

import pytest

from e2e_support import E2E_TIMEOUTS, lens
from glint.checks import ScanRefused, check_scan
from glint.errors import LinkError
from glint.link import open_scanner


def test_provisioned_and_enrolled(world):
    prov, host = world["prov"], world["host"]
    assert prov.new_key and prov.device.board == "sim" and prov.device.label == "e2e"
    assert world["sc"].info()["impl"] == "micropython"
    assert sorted(host.db.items()) == ["e2e:ITEM-A", "e2e:ITEM-B"]
    for e in world["enrolled"].values():
        assert e.spots >= 20 and e.captures == 3


def test_verify_genuine_passes(world):
    host, sc = world["host"], world["sc"]
    lens(world["vs"], "item", "e2e:ITEM-A", 50)
    out = host.scan_and_process(sc, item="e2e:ITEM-A")
    assert out.passed and out.log10_far < -9 and out.cert_path.is_file()
    from glint.ledger import verify_certificate

    info = verify_certificate(out.cert_path.read_bytes(), host.keys.issuer_public, host.keys.log_verifier())
    assert info.item == "e2e:ITEM-A" and info.result == "pass"


def test_counterfeit_fails(world):
    host, sc = world["host"], world["sc"]
    lens(world["vs"], "counterfeit", "e2e:ITEM-A", 51)
    out = host.scan_and_process(sc, item="e2e:ITEM-A")
    assert out.result == "fail" and out.cert_path is None
    assert host.ledger.item("e2e:ITEM-A").last_verify["res"] == "fail"


def test_identify_without_item(world):
    host, sc = world["host"], world["sc"]
    lens(world["vs"], "item", "e2e:ITEM-B", 52)
    out = host.scan_and_process(sc)
    assert out.passed and out.item == "e2e:ITEM-B"
    lens(world["vs"], "counterfeit", "e2e:ITEM-B", 53)
    assert host.scan_and_process(sc).result == "unknown"


def test_line_noise_on_the_link(world):
    host, sc = world["host"], world["sc"]
    lens(world["vs"], "item", "e2e:ITEM-A", 54)
    # garbage, a frame with a bad CRC and a lone delimiter, before a real request
    sc.transport.write(b"\x13\x37 noise \xff\xfe\x00" + b"\x47\x05\x01\x02\x03\x04\x05\x00" + b"\x00")
    out = host.scan_and_process(sc, item="e2e:ITEM-A")
    assert out.passed


def test_replayed_messages_refused(world):
    host, sc = world["host"], world["sc"]
    reg = host.registry
    lens(world["vs"], "item", "e2e:ITEM-A", 55)
    nonce = reg.issue_nonce(sc.info()["device_id"])
    first = sc.scan(nonce).signed
    check_scan(reg, first)
    before = reg.scan_count()
    with pytest.raises(ScanRefused, match="replayed scan") as e:  # the same signed scan again
        check_scan(reg, first)
    assert e.value.reason == "replay"
    again = sc.scan(nonce).signed  # the same request (nonce) replayed to the scanner
    with pytest.raises(ScanRefused, match="nonce was already used"):
        check_scan(reg, again)
    assert reg.scan_count() == before
    assert sum(a["kind"] == "replay" for a in reg.alerts()) >= 2


def test_tampered_descriptor_refused(world):
    host, sc = world["host"], world["sc"]
    reg = host.registry
    lens(world["vs"], "item", "e2e:ITEM-A", 56)
    signed = bytearray(sc.scan(reg.issue_nonce(sc.info()["device_id"])).signed)
    signed[-75] ^= 0x10  # a spot coordinate inside the signed descriptor
    with pytest.raises(ScanRefused, match="signature of the scan does not verify") as e:
        check_scan(reg, bytes(signed))
    assert "\n" not in e.value.oneline()


def test_cli_scan_over_socket(world):
    host, vs = world["host"], world["vs"]
    lens(vs, "item", "e2e:ITEM-B", 57)
    host.ledger.close()  # the CLI process is the ledger's writer now
    host._ledger = None
    r = subprocess.run([sys.executable, "-m", "glint", "scan", "--port", vs.url, "--item", "e2e:ITEM-B",
                        "--home", str(host.home.root)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PASS e2e:ITEM-B") and "certificate" in r.stdout
    r = subprocess.run([sys.executable, "-m", "glint", "device", "list", "--home", str(host.home.root)],
                       capture_output=True, text=True, timeout=60)
    assert "e2e" in r.stdout and "active" in r.stdout


def test_scanner_killed_mid_scan(world):
    host, sc, vs = world["host"], world["sc"], world["vs"]
    lens(vs, "item", "e2e:ITEM-A", 58)
    scans, size = host.registry.scan_count(), host.ledger.size
    sent = sc.stats["sent"]

    def killer():
        deadline = time.monotonic() + 10
        while sc.stats["sent"] == sent and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # the device is detecting spots now
        vs.kill()

    t = threading.Thread(target=killer)
    t.start()
    with pytest.raises(LinkError) as e:
        host.scan_and_process(sc, item="e2e:ITEM-A")
    t.join()
    line = e.value.oneline()
    assert "\n" not in line and "plugged in" in line
    assert host.registry.scan_count() == scans and host.ledger.size == size  # nothing recorded
    vs.start()  # reboot from the same flash: same key, counter continues
    with open_scanner(vs.url, E2E_TIMEOUTS) as sc2:
        out = host.scan_and_process(sc2, item="e2e:ITEM-A")
    assert out.passed and host.registry.scan_count() == scans + 1 and host.ledger.size == size + 1
    world["sc"] = open_scanner(vs.url, E2E_TIMEOUTS)
    sc.close()


def test_revoked_device_refused(world):
    host, sc = world["host"], world["sc"]
    lens(world["vs"], "item", "e2e:ITEM-A", 59)
    signed = sc.scan(host.registry.issue_nonce(sc.info()["device_id"])).signed  # signed before the revocation
    host.registry.revoke(sc.info()["device_id"], "reported stolen")
    with pytest.raises(ScanRefused, match="revoked"):
        host.scan_and_process(sc, item="e2e:ITEM-A")
    with pytest.raises(ScanRefused, match=r"revoked device .* \(reported stolen\)"):
        check_scan(host.registry, signed)
