"""1:1 verify gives exactly the recorded outputs on the decisions corpus (tools/verify_corpus.py): a
speed change to the matcher must not move a decision, a count, a matched pair or a figure.

A deliberate decision change records the outputs again (``python tools/verify_corpus.py update``,
which lists what moved) and says so in its commit."""

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[3] / "tools" / "verify_corpus.py"


@pytest.fixture(scope="module")
def vc():
    spec = importlib.util.spec_from_file_location("verify_corpus", TOOL)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["verify_corpus"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_corpus_covers_the_decisions(vc):
    corpus, recorded = vc.load()
    kinds = {(prof, kind) for _r, _p, kind, prof in corpus["pairs"]}
    assert kinds == {(p, k) for p in vc.PROFILES for k in ("genuine", "impostor", "clone")}
    reasons = {o["reason"].split(" (")[0].split(";")[0] for o in recorded}
    # every way verify decides is in the corpus: accept, no code, chance, the clone gate
    assert {"match", "no quad code in common", "not beyond chance", "positions do not repeat precisely enough"} <= reasons
    assert len(corpus["pairs"]) >= 150


def test_verify_outputs_as_recorded(vc):
    corpus, recorded = vc.load()
    new = vc.run(corpus)
    diff = vc.differences(new, recorded, corpus, rtol=1e-9)
    assert not diff, (f"{len(diff)} of {len(new)} pairs changed (python tools/verify_corpus.py check; "
                      "a deliberate decision change: ... update):\n" + "\n".join(diff[:20]))


def test_the_check_can_fail(vc):
    corpus, recorded = vc.load()
    moved = [dict(o) for o in recorded]
    genuine = [n for n, pr in enumerate(corpus["pairs"]) if pr[2] == "genuine"]
    moved[genuine[0]]["log10_far"] *= 1 + 1e-8
    moved[genuine[1]]["pairs"] = moved[genuine[1]]["pairs"][:-1]
    moved[genuine[2]]["transform"] = moved[genuine[2]]["transform"] * (1 + 1e-8)
    assert len(vc.differences(moved, recorded, corpus, rtol=1e-9)) == 3
