"""Fixtures for the matcher tests: synthetic spot sets (cheap) and simulator captures (realistic)."""

from __future__ import annotations

import numpy as np
import pytest

from glint.match import synth


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def fields():
    r = np.random.default_rng(99)
    return [synth.make_field(r) for _ in range(12)]


@pytest.fixture(scope="session")
def sim_item():
    """Three enrollment images and one probe image of one simulated coating, plus a counterfeit probe."""
    sim = pytest.importorskip("glint.sim")
    from glint.sim.render import Pose

    c = sim.make_coating(7)
    enroll_imgs = [sim.capture(c, seed=k, pose=Pose()).image for k in range(3)]
    probe = sim.capture(c, seed=11).image
    other = sim.capture(sim.make_coating(8), seed=12).image
    clone = sim.capture(sim.clone_coating(c, 0.6, seed=3), seed=13).image
    return {"enroll": enroll_imgs, "probe": probe, "other": other, "clone": clone}
