"""Coating and camera simulator: seeded, deterministic frames with ground truth.

API (CONTRACTS.md): PROFILES, make_coating(seed, profile), clone_coating(coating,
sigma_px, seed, profile), capture(coating, profile, seed, pose) -> Capture.
Frame files: write_frame(path, image) writes PGM (P5) or PNG by suffix.
"""

from glint.sim.coating import Coating, clone_coating, make_coating
from glint.sim.frames import read_pgm, write_frame, write_pgm
from glint.sim.profiles import PROFILES, Profile, get_profile
from glint.sim.render import Capture, Pose, capture, project, random_pose

__all__ = [
    "PROFILES", "Profile", "get_profile", "Coating", "make_coating", "clone_coating",
    "Capture", "Pose", "capture", "project", "random_pose", "write_frame", "write_pgm", "read_pgm",
]
