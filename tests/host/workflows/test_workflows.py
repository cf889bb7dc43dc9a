"""Provision, enroll, verify, identify and every refusal, against the firmware App over a socket."""

import pytest

from peer import lens_image
from glint.checks import ScanRefused, check_scan
from glint.errors import UsageError
from glint.link import Timeouts, open_scanner
from glint.registry import Registry
from glint.workflows import HostSession, enroll_from_scanner, provision

FAST = Timeouts(request=1.0, scan=10.0, keygen=10.0)


@pytest.fixture
def setup(peer, backend_home):
    """A host session on both backends (SQLite files, or a home whose config.toml names a
    PostgreSQL database: registry, ledger and references there), and the firmware App."""
    host = HostSession(backend_home.root, durable=False)
    sc = open_scanner(peer.url, FAST)
    yield host, sc, peer
    sc.close()
    host.close()


def enroll(host, sc, peer, item, seed):
    return enroll_from_scanner(host, sc, item, captures=3,
                               between=lambda i: peer.lens(lens_image(seed, 10 + i)))


def test_scan_needs_provisioning(setup):
    host, sc, peer = setup
    with pytest.raises(UsageError, match="not provisioned"):
        host.scan_and_process(sc, item="x")


# On PostgreSQL this flow runs end to end through the CLI in tests/e2e/test_postgres.py.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_provision_enroll_verify_identify(setup):
    host, sc, peer = setup
    p = provision(host.registry, sc, label="desk")
    assert p.new_key and p.device.board == "sim" and p.device.label == "desk"
    assert provision(host.registry, sc).new_key is False  # adopts the key it has
    e = enroll(host, sc, peer, "acme:BAG-1", 101)
    assert e.spots > 10
    enroll(host, sc, peer, "acme:BAG-2", 202)

    peer.lens(lens_image(101, 99))
    out = host.scan_and_process(sc, item="acme:BAG-1")
    assert out.passed and out.log10_far < -6 and out.cert_path.is_file()
    assert set(out.timings) == {"check", "match", "ledger", "cert"}
    from glint.ledger import verify_certificate

    info = verify_certificate(out.cert_path.read_bytes(), host.keys.issuer_public, host.keys.log_verifier())
    assert info is not None

    peer.lens(lens_image(202, 98))
    out = host.scan_and_process(sc)  # identify
    assert out.passed and out.item == "acme:BAG-2"

    peer.lens(lens_image(303, 1))  # a counterfeit: another coating
    out = host.scan_and_process(sc, item="acme:BAG-1")
    assert out.result == "fail" and out.cert_path is None and out.ledger_index is not None
    out = host.scan_and_process(sc)
    assert out.result == "unknown" and out.ledger_index is None
    assert host.ledger.verify().ok
    assert host.registry.scan_count() == 6 + 4
    if host.home.database:  # everything is in PostgreSQL: no SQLite file, no reference directory
        assert not [p.name for p in host.home.root.iterdir() if p.name in ("glint.db", "ledger.db", "match")]


def test_replay_tamper_revoke(setup):
    host, sc, peer = setup
    provision(host.registry, sc)
    peer.lens(lens_image(5, 1))
    nonce = host.registry.issue_nonce(sc.info()["device_id"])
    signed = sc.scan(nonce).signed
    c = check_scan(host.registry, signed)
    assert c.counter >= 1 and c.nonce == nonce
    with pytest.raises(ScanRefused, match="replayed scan") as e:
        check_scan(host.registry, signed)
    assert e.value.reason == "replay"
    # a nonce the host never issued
    with pytest.raises(ScanRefused, match="not issued by this host"):
        check_scan(host.registry, sc.scan(b"\x01" * 16).signed)
    # an expired nonce
    old = host.registry.issue_nonce(sc.info()["device_id"], ttl=-1)
    with pytest.raises(ScanRefused, match="expired"):
        check_scan(host.registry, sc.scan(old).signed)
    # a tampered descriptor: one spot byte changed under the signature
    tampered = bytearray(sc.scan(host.registry.issue_nonce(sc.info()["device_id"])).signed)
    tampered[-80] ^= 0x04
    with pytest.raises(ScanRefused) as e:
        check_scan(host.registry, bytes(tampered))
    assert e.value.reason in ("bad-signature", "malformed")
    # revoked
    host.registry.revoke(sc.info()["device_id"], "lost")
    with pytest.raises(ScanRefused, match="revoked"):
        check_scan(host.registry, sc.scan(host.registry.issue_nonce(sc.info()["device_id"])).signed)
    kinds = [a["kind"] for a in host.registry.alerts()]
    assert "replay" in kinds and "revoked" in kinds


def test_spooled_counters_and_clones(setup, tmp_path):
    host, sc, peer = setup
    provision(host.registry, sc)
    peer.lens(lens_image(5, 1))
    from glintcore import messages

    counters = [messages.decode_message(peer.app.standalone_scan()).body["counter"] for _ in range(2)]
    first, second = (sc.spool_get(c) for c in counters)
    assert check_scan(host.registry, second, expect_mode="spooled").counter == counters[1]
    with pytest.raises(ScanRefused, match="possible cloned or replayed scanner") as e:
        check_scan(host.registry, first)  # older counter after a newer one
    assert e.value.reason == "counter"
    assert any(a["kind"] == "clone" for a in host.registry.alerts())
    # the nonce is consumed atomically: a second registry on the same file sees it used
    nonce = host.registry.issue_nonce(sc.info()["device_id"])
    signed = sc.scan(nonce).signed
    other = Registry.open(host.home)
    check_scan(other, signed)
    with pytest.raises(ScanRefused):
        check_scan(host.registry, signed)
    other.close()


def test_firmware_policy(setup):
    host, sc, peer = setup
    with open(host.home.config_path, "a") as f:  # keeps the database line of a PostgreSQL home
        f.write('[firmware]\nmin_version = "99.0"\n')
    h2 = HostSession(host.home.root, durable=False)
    provision(h2.registry, sc)
    peer.lens(lens_image(5, 1))
    with pytest.raises(ScanRefused, match="older than the minimum 99.0"):
        h2.scan_and_process(sc)
    h2.close()
