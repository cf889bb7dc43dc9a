"""The evaluation lab on a few simulated items: the impostor sieve is exact, parallel runs agree
with serial ones, and the report and plots are written and re-read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glint.errors import MatchError
from glint.match import lab
from glint.match.reference import Reference
from glint.match.verify import prepare, verify_prepared

pytest.importorskip("glint.sim")


@pytest.fixture(scope="module")
def small():
    cfg = lab.LabConfig("field", items=14, probes=2, clone_items=0, seed=4, identify=False, jobs=1)
    prof, coats, refs, spots, owner, refused = lab._captures(cfg)
    params = refs[0].params
    refs = [Reference(r.xy, r.flux, r.support, r.width, r.height, params, r.captures, r.info) for r in refs]
    return refs, [prepare(s, params) for s in spots], owner, params


def test_sieve_finds_exactly_the_pairs_verify_scores(small):
    refs, probes, owner, params = small
    imp = lab.impostor_trials(refs, probes, owner, params, jobs=1)
    brute = {}
    for j, pr in enumerate(probes):
        for r, ref in enumerate(refs):
            if r != owner[j]:
                res = verify_prepared(ref, pr)
                if res.hypotheses:
                    brute[(j, r)] = (res.hypotheses, res.log10_far)
    got = {(int(j), int(r)): (int(h), float(f)) for j, r, h, f in zip(imp["probe"], imp["ref"], imp["hyp"], imp["far"])}
    assert got.keys() == brute.keys() and len(got) > 20
    for key, (h, f) in brute.items():
        assert got[key][0] == h and got[key][1] == pytest.approx(f, abs=1e-9)
    assert imp["trials"] == len(probes) * (len(refs) - 1)
    assert imp["accepted"] == 0


def test_parallel_trials_equal_serial_ones(small):
    refs, probes, owner, params = small
    a = lab.impostor_trials(refs, probes, owner, params, jobs=1)
    b = lab.impostor_trials(refs, probes, owner, params, jobs=2)
    for key in ("far", "hyp", "lam", "k", "n", "p", "probe", "ref"):
        assert np.array_equal(a[key], b[key]), key


def test_evaluate_writes_report_plots_and_trials_that_recalibrate(tmp_path):
    cfg = lab.LabConfig("field", items=10, probes=2, clone_items=3, seed=6, identify=True, jobs=2)
    report = lab.evaluate(cfg, tmp_path)
    assert report["genuine_trials"] == 20 and report["frr"] <= 0.1
    assert report["impostor_trials"] == 20 * 9 and report["false_accepts"] == 0
    assert report["rank1"] >= 0.9
    assert [c["sigma_px"] for c in report["clone_curve"]][0] == 0.0
    cal = report["far_calibration"]
    assert set(cal) == {"model", "chance_codes", "in_use", "refit", "bonferroni", "identify"}
    cc = cal["chance_codes"]  # the model's chance code matches beside those seen (lambda of the pairs with one)
    assert cc["with_hypotheses"] == len(np.load(tmp_path / "impostors.npz")["lam"]) and cc["hypotheses"] >= cc["with_hypotheses"]
    for name in ("report.json", "det.svg", "det.png", "far_tail.svg", "far_tail.png", "clone.svg", "impostors.npz",
                 "genuine.npz"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "report.json").read_text())["impostor_trials"] == 180
    again = lab.recalibrate(tmp_path)
    assert again["in_use"]["table"] == cal["in_use"]["table"]
    assert again["genuine"]["frr"] == pytest.approx(report["frr"])
    assert all("pairs" in row and row["pairs"] <= row["count"] for row in cal["in_use"]["table"])


def test_recalibrate_refuses_a_directory_without_trials(tmp_path):
    with pytest.raises(MatchError, match="not a lab run"):
        lab.recalibrate(tmp_path)


def test_region_table_of_the_randomized_family():
    """Per region (PSF x SNR x particles): items, refusals, FRR, impostor counts and the tail."""
    from types import SimpleNamespace

    cfg = lab.LabConfig("wild", items=0)
    coats = [SimpleNamespace(seed=s) for s in range(12)]
    refused = [(SimpleNamespace(seed=100 + s), "item: poor capture") for s in range(3)]
    owner = np.repeat(np.arange(12), 2)
    accept = np.ones(24, bool)
    accept[:2] = False  # item 0's two probes rejected
    imp = {"far": np.array([-1.5, -9.5, -0.2]), "owner": np.array([0, 3, 5])}
    t = lab.region_table(cfg, coats, refused, owner, None, accept, imp, np.ones(24, bool), None, n_refs=12)
    assert t["axes"] == ["psf", "snr", "particles"]
    cells = [r for r in t["cells"].values() if r]
    assert sum(r["items"] for r in cells) == 12 and sum(r["refused_at_enrollment"] for r in cells) == 3
    assert sum(r["genuine_trials"] for r in cells) == 24 and sum(r["impostor_trials"] for r in cells) == 24 * 11
    assert sum(r["false_accepts"] for r in cells) == 1
    mine = next(r for k, r in t["cells"].items() if k == " / ".join(lab.item_region("wild", 0)))
    assert mine["frr"] >= 2 / mine["genuine_trials"] - 1e-9 and mine["rank1"] == 1.0
    for axis in ("psf", "snr", "particles"):
        assert sum(r["items"] for k, r in t["by_axis"].items() if k.startswith(axis)) == 12
