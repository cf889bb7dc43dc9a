"""The item state machine (glint.ledger.lifecycle): the table, its doc, and the refusal on every append path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glint.errors import UsageError
from glint.ledger import Ledger
from glint.ledger import events as ev
from glint.ledger import lifecycle as lc

DOC = Path(__file__).parents[3] / "docs" / "lifecycle.md"
T0 = 1_700_000_000
ITEM = "acme:BAG-1"


def test_every_kind_has_a_rule_and_every_rule_a_kind():
    kinds_with_rows = {name.split(":")[0] for name in lc.TABLE}
    assert kinds_with_rows == set(ev.KIND_FIELDS), "add the kind's row to glint.ledger.lifecycle.TABLE"
    for name, row in lc.TABLE.items():
        assert set(row) <= set(lc.STATES) and all(v in lc.STATES + (lc.SAME, lc.PREVIOUS) for v in row.values())
        assert lc.RETIRED not in row, f"{name}: a retired item accepts nothing"
        assert name in lc.DOC and name in lc.COMMANDS


def test_the_doc_table_is_current():
    assert lc.table_markdown() in DOC.read_text(), (
        "docs/lifecycle.md's state table is stale: python -c \"from glint.ledger.lifecycle import write_doc; "
        "write_doc('docs/lifecycle.md')\"")


def _item(led, item=ITEM):
    led.register_item(item, "ACME", time=T0)
    led.add_coating(item, "c1", time=T0 + 1)


def test_states_follow_the_table(tmp_path):
    with Ledger.open(tmp_path / "l.db", durable=False) as led:
        _item(led)
        assert led.item(ITEM).state == lc.ENROLLED
        led.service(ITEM, "repair", by="atelier", time=T0 + 2)  # work in one visit: stays enrolled
        assert led.item(ITEM).state == lc.ENROLLED
        led.append_event("service", ITEM, {"action": "repair", "stage": "in"}, T0 + 3)
        assert led.item(ITEM).state == lc.IN_SERVICE
        with pytest.raises(lc.LifecycleRefused, match=r"is in service \(since .*: repair\): a transfer event"):
            led.transfer(ITEM, owner="bob", time=T0 + 4)
        led.add_coating(ITEM, "c2", replaces="c1", time=T0 + 4)  # a re-coat while in service
        led.append_event("service", ITEM, {"action": "repair", "stage": "out"}, T0 + 5)
        led.rental_out(ITEM, to="carol", time=T0 + 6)
        st = led.item(ITEM)
        assert (st.state, st.since, st.why) == (lc.RENTED_OUT, T0 + 6, "to carol")
        with pytest.raises(UsageError, match="already rented out"):
            led.rental_out(ITEM, to="dave", time=T0 + 7)
        led.record_verify(ITEM, "fail", time=T0 + 7)
        v = led.item(ITEM).last_verify["index"]
        with pytest.raises(UsageError, match="did not pass"):
            led.append_event("rental-return", ITEM, {"verified": v}, T0 + 8)
        led.append_event("suspect", ITEM, {"reason": "substitution at return", "verified": v, "case": 3}, T0 + 8)
        st = led.item(ITEM)
        assert (st.state, st.before_suspect) == (lc.SUSPECT, lc.RENTED_OUT)
        with pytest.raises(UsageError, match="is suspect .*substitution at return.*rental-return event"):
            led.rental_return(ITEM, time=T0 + 9)
        led.append_event("clear", ITEM, {"reason": "the real bag came back"}, T0 + 9)
        assert led.item(ITEM).state == lc.RENTED_OUT  # back to the state before
        led.record_verify(ITEM, "pass", time=T0 + 10)
        led.append_event("rental-return", ITEM, {"verified": led.item(ITEM).last_verify["index"]}, T0 + 11)
        with pytest.raises(UsageError, match="not the item's latest scan"):
            led.append_event("transfer", ITEM, {"owner": "bob", "verified": 0}, T0 + 12)
        led.retire(ITEM, reason="destroyed", time=T0 + 13)
        assert led.item(ITEM).state == lc.RETIRED
        with pytest.raises(lc.LifecycleRefused) as e:
            led.update_passport(ITEM, {"x": 1})
        assert e.value.msg == ("item acme:BAG-1 is retired (since 2023-11-14T22:13:33Z: destroyed): "
                               "no lifecycle event is accepted") and e.value.reason == "retired"
        assert led.verify().ok


def test_the_refusal_is_the_same_on_the_cli_and_http_paths(tmp_path, capsys):
    from softdevice import NOW, Api

    from glint.cli import main

    home = tmp_path / "home"
    main(["init", "--home", str(home)])
    capsys.readouterr()

    def append(kind, data, t):
        rc = main(["ledger", "append", kind, ITEM, "--data", json.dumps(data), "--time", str(t), "--home", str(home)])
        return rc, capsys.readouterr().err

    assert append("register", {"brand": "ACME", "prov": {"class": "factory"}}, NOW - 100)[0] == 0
    assert append("retire", {"reason": "destroyed"}, NOW - 90)[0] == 0
    rc, err = append("rental-out", {"to": "carol"}, NOW - 80)
    assert rc == 2 and err.startswith(f"glint: item {ITEM} is retired (since ") and err.count("\n") == 1
    assert "destroyed): no lifecycle event is accepted" in err

    api = Api(home)
    try:
        r = api.post({"kind": "rental-out", "item": ITEM, "time": NOW - 70, "data": {"to": "carol"}}, role="brand")
        assert r.status_code == 422 and r.json["reason"] == "retired"
        assert r.json["error"] == err.strip()[len("glint: "):]
    finally:
        api.close()
