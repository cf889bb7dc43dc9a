"""glint insights: quick resales by location, out-of-market scans, scans per item per month (a real ledger)."""

import csv
import json

import pytest

from glint.errors import UsageError
from glint.home import Home
from glint.insights import collect, region_of, write_insights
from glint.ledger import Keys, Ledger

T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    h = Home(tmp_path_factory.mktemp("brand")).ensure()
    with Ledger.open(h.ledger_path, keys=Keys.load(h.ledger_dir, create=True), durable=False) as led:
        for n, market in ((1, "FR"), (2, "FR"), (3, "US"), (4, None)):
            item = f"acme:BAG-{n}"
            led.register_item(item, "ACME", time=T0, passport={"market": market} if market else None)
        led.register_item("other:X-1", "OTHER", time=T0, passport={"market": "EU"})
        led.record_verify("acme:BAG-1", "pass", location="Paris, FR", time=T0 + DAY)
        led.transfer("acme:BAG-1", owner="ann", time=T0 + 2 * DAY)                 # first sale
        led.record_verify("acme:BAG-1", "pass", location="Milan, IT", time=T0 + 9 * DAY)
        led.transfer("acme:BAG-1", owner="bob", time=T0 + 10 * DAY)                # resold in 8 days, in Milan
        led.transfer("acme:BAG-2", owner="cat", time=T0 + 3 * DAY)
        led.transfer("acme:BAG-2", owner="dan", time=T0 + 60 * DAY)                # 57 days: not quick
        led.record_verify("acme:BAG-3", "pass", location="Shenzhen, CN", time=T0 + 40 * DAY)   # US market, CN scan
        led.record_verify("acme:BAG-3", "fail", location="Shenzhen, CN", time=T0 + 41 * DAY)
        led.record_verify("acme:BAG-4", "pass", location="Tokyo, JP", time=T0 + 5 * DAY)       # no market: not judged
        led.record_verify("other:X-1", "pass", location="Lima, PE", time=T0 + 5 * DAY)
        led.update_passport("acme:BAG-2", {"market": "JP"}, time=T0 + 70 * DAY)
        led.record_verify("acme:BAG-2", "pass", location="Osaka, JP", time=T0 + 71 * DAY)      # its market now
    return h


def test_figures_from_the_ledger(home, tmp_path):
    with Ledger.open(home.ledger_path, readonly=True) as led:
        ins = collect(led, resale_days=30, brand="ACME")
        wide = collect(led, resale_days=90)
        mapped = collect(led, regions={"Shenzhen, CN": "APAC", "Paris, FR": "EU"}, brand="ACME")
    assert [(r["item"], r["days"], r["location"], r["owner"]) for r in ins.resales] == [
        ("acme:BAG-1", 8.0, "Milan, IT", "bob")]
    assert ins.resales_by_location == {"Milan, IT": 1}
    assert [(r["item"], r["region"], r["result"]) for r in ins.out_of_market] == [
        ("acme:BAG-1", "IT", "pass"), ("acme:BAG-3", "CN", "pass"), ("acme:BAG-3", "CN", "fail")]  # FR, US markets
    assert ins.out_of_market_by_region == {"CN": 2, "IT": 1}
    assert ins.scans_per_month == {("acme:BAG-1", "2026-01"): 2, ("acme:BAG-3", "2026-02"): 2,
                                   ("acme:BAG-4", "2026-01"): 1, ("acme:BAG-2", "2026-03"): 1}
    assert ins.items == 4 and ins.scans_by_month == {"2026-01": 3, "2026-02": 2, "2026-03": 1}
    assert len(wide.resales) == 2 and any(r["item"] == "other:X-1" for r in wide.out_of_market)
    # with a region map, only mapped locations are judged (and the market is compared with the region)
    assert [(r["item"], r["region"]) for r in mapped.out_of_market] == [("acme:BAG-1", "EU")] + [
        ("acme:BAG-3", "APAC")] * 2
    assert region_of("Milan, IT", None) == "IT" and region_of(None, None) is None
    with pytest.raises(UsageError, match="must not be negative"):
        collect(led, resale_days=-1)

    paths = write_insights(ins, tmp_path / "out")
    rows = list(csv.DictReader(paths["resales"].open()))
    assert rows[0]["first_sale"] == "2026-01-03T00:00:00Z" and rows[0]["location"] == "Milan, IT"
    assert len(list(csv.DictReader(paths["scans_per_month"].open()))) == 4
    html = paths["html"].read_text()
    assert html.count("<svg") == 3 and "quick resales by location" in html and "Milan, IT" in html


def test_insights_command(home, tmp_path, capsys):
    from glint.cli import main

    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps({"Shenzhen, CN": "APAC"}))
    assert main(["--home", str(home.root), "insights", "--regions", str(regions), "--out", str(tmp_path / "r"),
                 "--json", "--brand", "ACME"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["out_of_market_by_region"] == {"APAC": 2} and (tmp_path / "r" / "insights.html").is_file()
    regions.write_text("[1]")
    assert main(["--home", str(home.root), "insights", "--regions", str(regions)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a JSON object" in err
