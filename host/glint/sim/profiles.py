"""Named simulator profiles: the optics, sensor and coating parameters of one scanner setup.

The type is glint.sim.profile.Profile; a randomized profile (``wild``) draws each item's own
set-up with glint.sim.wild. docs/simulator.md documents each field.
"""

from __future__ import annotations

from glint.errors import UsageError
from glint.sim.profile import QVGA, VGA, Profile
from glint.sim.wild import item_profile

__all__ = ["PROFILES", "Profile", "QVGA", "VGA", "get_profile"]

PROFILES: dict[str, Profile] = {
    # Lab bench: fixed stand, clean optics, raw frames, no wear.
    "bench": Profile(
        name="bench",
        shift_sigma_px=3.0,
        shift_max_px=10.0,
        scale_range=0.03,
        tilt_max_deg=1.0,
        defocus_sigma_px=(0.0, 0.1),
        texture_sigma=0.5,
        read_noise_dn=1.2,
        hot_pixels=2,
        dust_specks=0,
    ),
    # Hand-held scanner in the field: free rotation, placement error, mild defocus, JPEG-free raw grayscale.
    "field": Profile(name="field", wear_loss=0.03),
    # Worn item, dirty lens, JPEG transport, darker and noisier.
    "harsh": Profile(
        name="harsh",
        flux_median=300.0,
        defocus_sigma_px=(0.1, 0.6),
        background=30.0,
        vignetting=0.4,
        texture_sigma=1.4,
        read_noise_dn=2.2,
        hot_pixels=20,
        dust_specks=5,
        wear_loss=0.10,
        jpeg_quality=85,
        shift_sigma_px=12.0,
    ),
    # Randomized optics: every item draws its own scanner (glint.sim.wild; docs/simulator.md). The
    # values here are placeholders: item_profile(profile, item_seed) replaces them all.
    "wild": Profile(name="wild", randomized=True),
}


def get_profile(profile: str | Profile, item_seed: int | None = None) -> Profile:
    """Resolve a profile name (or pass a Profile through); unknown names raise UsageError. For a
    randomized profile and an ``item_seed``: that item's own drawn optics (glint.sim.wild)."""
    p: Profile | None = profile if isinstance(profile, Profile) else PROFILES.get(profile)
    if p is not None:
        if p.randomized and item_seed is not None:
            return item_profile(p, item_seed)
        return p
    try:
        return PROFILES[str(profile)]
    except KeyError:
        raise UsageError(
            f"unknown simulator profile {profile!r}", hint="choose one of: " + ", ".join(PROFILES)
        ) from None
