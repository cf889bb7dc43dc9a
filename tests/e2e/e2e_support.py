"""Constants and helpers shared by the end-to-end tests (imported by conftest.py and the tests)."""

from glint.link import Timeouts

PROFILE = "field"
ITEMS = {"e2e:ITEM-A": 11, "e2e:ITEM-B": 22}
E2E_TIMEOUTS = Timeouts(request=3.0, scan=20.0, keygen=30.0, reconnect=1.0)


def lens(vs, kind, item, capture):
    from glint.vscanner import LensSpec

    vs.set_lens(LensSpec(kind, ITEMS[item], capture, PROFILE))


def two_orgs(db_path, keys: dict) -> dict:
    """A served home's two organizations, acme (the brand) and shop (a reseller), and its API keys:
    ``keys`` maps a name to (role, label, org); returns each name's token."""
    from glint import orgs
    from glint.db import connect
    from glint.server.auth import KeyStore

    db = connect(db_path)
    o = orgs.Orgs(db)
    o.create("acme", "ACME SA")
    o.create("shop", "A reseller")
    db.close()
    ks = KeyStore(db_path)
    try:
        return {name: ks.create(role, label, org=org)[1] for name, (role, label, org) in keys.items()}
    finally:
        ks.close()
