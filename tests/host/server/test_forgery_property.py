"""A forged event or certificate never verifies: random mutations of a signed scan, an upload and a
certificate (hypothesis) are refused with glint's own errors, never accepted, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from softdevice import SoftDevice

from glint.checks import ScanRefused, check_scan
from glint.errors import VerificationError
from glint.ledger import Keys, Ledger, verify_certificate
from glint.registry import Registry

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutate(blob: bytes, data) -> bytes:
    """One random edit: flip bits of a byte, delete, insert or truncate; never the identity."""
    how = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
    i = data.draw(st.integers(0, 1 << 16)) % len(blob)  # independent of the length: draws stay reproducible
    if how == "flip":
        return blob[:i] + bytes([blob[i] ^ data.draw(st.integers(1, 255))]) + blob[i + 1:]
    if how == "delete":
        return blob[:i] + blob[i + 1:]
    if how == "insert":
        return blob[:i] + bytes([data.draw(st.integers(0, 255))]) + blob[i:]
    return blob[:i]


@pytest.fixture(scope="module")
def signed_world(tmp_path_factory, coating):
    home = tmp_path_factory.mktemp("prop")
    dev = SoftDevice(5)
    dev.provision(home)
    reg = Registry.open(home)
    ref, probes, size = coating
    scans = [dev.sign(probes[0], *size, counter=1000 + k) for k in range(4)]
    keys = Keys.generate("glint.test/prop")
    led = Ledger.open(home / "ledger.db", keys=keys, durable=False)
    led.register_item("acme:BAG-1", "ACME")
    led.service("acme:BAG-1", "clean", by="ana")
    a = led.record_verify("acme:BAG-1", "pass", fap=1e-12, device=dev.hex, scan=scans[0])
    cert = led.issue_certificate(a.index)
    yield {"reg": reg, "scans": scans, "cert": cert, "keys": keys}
    led.close()
    reg.close()


@SETTINGS
@given(data=st.data())
def test_a_mutated_scan_never_passes_the_checks(signed_world, data):
    good = signed_world["scans"][data.draw(st.integers(0, 3))]
    bad = mutate(good, data)
    with pytest.raises(ScanRefused):
        check_scan(signed_world["reg"], bad, relayed=True)


@SETTINGS
@given(data=st.data())
def test_a_mutated_certificate_never_verifies(signed_world, data):
    k = signed_world["keys"]
    bad = mutate(signed_world["cert"], data)
    with pytest.raises(VerificationError):
        verify_certificate(bad, k.issuer_public, k.log_verifier())


def test_the_unmutated_ones_do_verify(signed_world):
    k = signed_world["keys"]
    assert verify_certificate(signed_world["cert"], k.issuer_public, k.log_verifier()).result == "pass"
    assert check_scan(signed_world["reg"], signed_world["scans"][3], relayed=True).counter == 1003


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_upload_is_refused_or_changes_nothing_it_claims(api, device, coating, data):
    """An upload whose scan or fields were mutated is refused, or (a mutation of a free-text or time field)
    stored as exactly the mutated event, with the server's own device and fap: never a pass it did not compute."""
    from glint.server import wire

    ref, probes, size = coating
    if api.n == 0:
        api.post({"kind": "register", "item": "acme:BAG-1", "time": __import__("softdevice").NOW - 100,
                  "data": {"brand": "ACME", "prov": {"class": "factory"}}}, role="brand")
        import hashlib

        from glint.match.database import to_record
        from glint.server.admit import reference_wire

        body = wire.event_body("enroll", "acme:BAG-1", __import__("softdevice").NOW - 90,
                               {"coat": "c1", "ref": hashlib.sha256(to_record(ref).tobytes()).digest()},
                               device.sign(probes[0], *size))
        body["reference"] = reference_wire(ref)
        assert api.post(body).status_code == 201
    device.counter = max(device.counter, 300)  # same-length counters: the same draws for every example
    other = SoftDevice(6).sign(probes[1], *size, counter=device.counter)  # a plausible scan, unprovisioned key
    scan = data.draw(st.sampled_from([device.sign(probes[1], *size), other]))
    mutated = mutate(scan, data) if data.draw(st.booleans()) else scan
    body = wire.event_body("verify", "acme:BAG-1", __import__("softdevice").NOW - 10, {"res": "pass"}, mutated)
    r = api.post(body)
    assert r.status_code in (201, 422), r.json
    if r.status_code == 201:
        assert mutated == scan and scan != other  # only the genuine, provisioned, unmutated scan is stored
    else:
        assert "\n" not in r.json["error"]
