"""Enrollment fuses what repeats and refuses poor references with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from glint.errors import MatchError
from glint.match import Reference, SpotSet, enroll
from glint.match import synth


def test_fusion_keeps_repeating_spots_and_drops_spurious(fields, rng):
    caps = synth.enrollment_captures(fields[2], rng, n=3, drop=0.1, spurious=0.2)
    ref = enroll(caps, item="x")
    assert ref.captures == 3
    assert ref.support.min() >= 2
    assert len(ref.xy) < max(len(c) for c in caps) + 5
    assert len(ref.info["repeat_rate"]) == 3


def test_captures_of_different_items_are_refused(fields, rng):
    a = synth.enrollment_captures(fields[3], rng, n=1)[0]
    b = synth.enrollment_captures(fields[4], rng, n=1)[0]
    with pytest.raises(MatchError, match="matches none of the other captures"):
        enroll([a, b], item="mixed")


def test_too_few_spots_is_refused_with_the_reason(fields, rng):
    cap = synth.observe(fields[5], rng, max_spots=12)
    with pytest.raises(MatchError, match="only 12 spots"):
        enroll([cap])


def test_the_scanners_few_spots_hint_refuses_only_below_the_reference_minimum(fields, rng):
    """The scanner says "too few spots" below 30 (an operator hint); enrollment refuses a capture for
    it only below its own minimum of 20 spots: above, the registration and the quality gate decide."""
    from glintcore.proto import GD_TOO_FEW_SPOTS

    caps = synth.enrollment_captures(fields[2], rng, n=3, drop=0.1, spurious=0.1)
    caps[1] = SpotSet(caps[1].xy[:26], caps[1].flux[:26], caps[1].width, caps[1].height, "few", sigma=caps[1].sigma[:26])
    caps[1].meta = {"guidance": GD_TOO_FEW_SPOTS, "quality": {0: 26}}
    assert enroll(caps).captures == 3
    few = SpotSet(caps[1].xy[:15], caps[1].flux[:15], caps[1].width, caps[1].height, "few", sigma=caps[1].sigma[:15])
    few.meta = {"guidance": GD_TOO_FEW_SPOTS, "quality": {0: 15}}
    with pytest.raises(MatchError, match="poor capture 2: too few spots.*15 spots found"):
        enroll([caps[0], few, caps[2]])


def test_clustered_spots_are_refused(rng):
    xy = rng.normal((320, 240), 8, (40, 2))
    with pytest.raises(MatchError, match="cover only"):
        enroll([SpotSet(xy, np.ones(40), 640, 480)])


def test_reference_round_trips_through_bytes(fields, rng):
    ref = enroll(synth.enrollment_captures(fields[6], rng))
    back = Reference.from_bytes(ref.to_bytes())
    assert np.array_equal(back.xy, ref.xy) and back.params == ref.params
    with pytest.raises(MatchError):
        Reference.from_bytes(b"junk")


def test_captures_that_predict_a_weak_rescan_are_refused_at_enrollment(fields, rng):
    """Each capture is verified against the reference of the others (held out): where a genuine
    rescan would not reach the operating point with margin, the item is refused, named, with a hint;
    good captures enroll and keep the held-out figures in the reference's info."""
    good = enroll(synth.enrollment_captures(fields[2], rng, n=3, drop=0.1, spurious=0.1))
    held = good.info["held_out_log10_far"]
    assert len(held) == 3 and max(held) <= -20
    weak = synth.enrollment_captures(synth.make_field(np.random.default_rng(1000)), np.random.default_rng(1000),
                                     n=3, drop=0.4, spurious=0.2, noise=0.6)
    with pytest.raises(MatchError, match="genuine rescan would not reliably reach log10 FAR -9") as e:
        enroll(weak, item="w")
    assert "better scanner setting" in e.value.hint and "\n" not in e.value.msg


def test_held_out_rule_needs_all_but_one_capture_beyond_the_margin():
    from glint.match.enroll import held_out_problem
    from glint.match.params import MatchParams

    def h(i, far, match=True, pairs=40):
        return {"capture": i, "match": match, "log10_far": far, "pairs": pairs,
                "reason": "match" if match else "not beyond chance (x)"}

    p = MatchParams()
    assert held_out_problem([h(1, -30), h(2, -21), h(3, 0.0, False)], p) == ""
    why = held_out_problem([h(1, -30), h(2, -12), h(3, 0.0, False)], p)
    assert "need 2 of 3 at -20" in why and "capture 3: not beyond chance" in why
    assert "capture 2: log10 FAR -12.0" in held_out_problem([h(1, -30), h(2, -12), h(3, -13)], p)
    # ... and with enough matched pairs for the clone gate to refuse a replica at 2 x the noise.
    assert held_out_problem([h(1, -30), h(2, -25, pairs=24), h(3, -25, pairs=10)], p) == ""
    why = held_out_problem([h(1, -30), h(2, -25, pairs=18), h(3, -25, pairs=10)], p)
    assert "too few spots for the clone gate" in why and "need 2 of 3 with 24 or more" in why


def test_clone_power_pairs_follows_the_gate():
    """The fewest pairs with which the clone gate refuses 99 % of replicas at 2 x the noise: fewer
    with a wider displacement, more with a looser margin."""
    from glint.match.noise import clone_power_pairs

    assert clone_power_pairs(1.25, 1e-3) == 24
    assert clone_power_pairs(1.25, 1e-3, ratio=3.0) < 24 < clone_power_pairs(1.4, 1e-3)
