"""tools/eval_detector.py: the region table and the real-exposure consensus count what they say."""

import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[3] / "tools" / "eval_detector.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("eval_detector", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_regions_count_every_frame_and_particle(tool):
    res = tool.regions(2, 0)
    allr = res["regions"]["all"]
    assert allr["frames"] == 2
    per_region = [r for name, r in res["regions"].items() if " x " in name]
    assert sum(r["frames"] for r in per_region) == 2
    assert sum(c["n"] for c in allr["completeness"]) == sum(
        c["n"] for r in per_region for c in r["completeness"])
    for c in allr["completeness"]:
        assert 0 <= c["found"] <= c["n"]
    assert 0.0 <= allr["kept_false_near_share"] <= allr["kept_false_share"] <= 1.0


def test_real_exposures_against_the_long_exposures_consensus(tool, real_photos):
    res = tool.real_exposures(str(real_photos))
    assert res["truth"] >= 30  # the test_5mp field's stars in both long exposures
    by = {(r["frame"], r["max_spots"]): r for r in res["frames"]}
    # the long exposures find (nearly) every consensus star, and the positions agree to a fraction of a pixel
    assert by[("100 ms", 4096)]["found"] >= res["truth"] - 2
    assert by[("50 ms", 4096)]["found"] >= res["truth"] - 6
    assert by[("100 ms", 4096)]["median_err_px"] < 0.5
    assert by[("20 ms", 64)]["found"] <= by[("50 ms", 64)]["found"]
