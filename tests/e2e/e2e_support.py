"""Constants and helpers shared by the end-to-end tests (imported by conftest.py and the tests)."""

from glint.link import Timeouts

PROFILE = "field"
ITEMS = {"e2e:ITEM-A": 11, "e2e:ITEM-B": 22}
E2E_TIMEOUTS = Timeouts(request=3.0, scan=20.0, keygen=30.0, reconnect=1.0)


def lens(vs, kind, item, capture):
    from glint.vscanner import LensSpec

    vs.set_lens(LensSpec(kind, ITEMS[item], capture, PROFILE))
