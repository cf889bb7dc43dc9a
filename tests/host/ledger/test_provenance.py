"""A twin the host makes for a matcher-only enrollment claims no factory provenance (issue 16)."""

from __future__ import annotations

from glint.ledger import Keys, Ledger


def test_a_twin_for_a_matcher_only_item_is_a_later_enrollment_by_the_operator(tmp_path):
    led = Ledger.open(tmp_path / "ledger.db", keys=Keys.load(tmp_path, create=True), durable=False)
    try:
        led.register_twin("acme:BAG-1", "ana")
        led.register_twin("plain-id", None)
        p = led.item("acme:BAG-1").provenance
        assert p["class"] == "later" and p["by"] == "ana" and p["reason"] == "enrolled in the matcher only"
        st = led.item("plain-id")
        assert st.provenance["class"] == "later" and st.provenance["by"] == "glint" and st.brand == "glint"
        assert "factory" not in led.item("acme:BAG-1").provenance_line()
    finally:
        led.close()
