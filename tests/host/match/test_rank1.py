"""Rank-1 conditional on 1:1 acceptance on a small wild set (tools/eval_rank1.py): identify names the
item of nearly every genuine probe 1:1 verify accepts, never another item, and no unknown probe."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("glint.sim")

TOOL = Path(__file__).resolve().parents[3] / "tools" / "eval_rank1.py"
# Measured on this set (wild seed 3, 40 items, 18 enrolled): 1.0, 52 of the 52 probes 1:1 accepts, with
# the index's fill band and identify's second pass (0.942, 49 of 52, before them: 3 not among the
# index's candidates). The target is 0.99 (docs/matching.md: what the index's recall costs).
RANK1_FLOOR = 0.95


def _tool():
    spec = importlib.util.spec_from_file_location("eval_rank1", TOOL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["eval_rank1"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_wild_rank1_given_1to1_acceptance(tmp_path):
    tool = _tool()
    rep = tool.run(tool.parser().parse_args(["--out", str(tmp_path), "--profile", "wild", "--items", "40",
                                             "--probes", "3", "--seed", "3", "--jobs", "2", "--all-groups",
                                             "--unknowns", "20"]))
    c = rep["classes"]
    assert sum(c.values()) == rep["probes"] == 3 * rep["enrolled"] and rep["enrolled"] >= 10
    # Zero false identifications: neither a genuine probe nor an unknown one names another item.
    assert c["another item"] == 0 and rep["false_identifications"] == 0
    assert rep["unknown_probes"] > 0 and rep["unknown_identified"] == 0
    # Identify loses few of the probes 1:1 verify accepts (what it loses is the index's recall).
    assert rep["rank1_given_1to1"] >= RANK1_FLOOR, rep["classes"]

