"""Named simulator profiles: the optics, sensor and coating parameters of one scanner setup.

Every length in the coating is in millimetres; the profile's magnification
(``px_per_mm``) turns it into pixels. docs/simulator.md documents each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

QVGA = (320, 240)
VGA = (640, 480)


@dataclass(frozen=True)
class Profile:
    """One scanner set-up: what the coating, the optics and the sensor look like."""

    name: str
    width: int = QVGA[0]
    height: int = QVGA[1]
    px_per_mm: float = 40.0  # magnification: 25 um per pixel at QVGA
    # --- coating (mm) ---
    patch_radius_mm: float = 2.3  # printed dot of coating, round
    density_per_mm2: float = 7.0  # particles per square millimetre
    flux_median: float = 400.0  # integrated particle signal above background, DN (before vignetting)
    flux_sigma_log: float = 0.6  # lognormal spread of particle flux
    cluster_fraction: float = 0.08  # share of particles that seed a small cluster
    cluster_size: tuple[int, int] = (2, 3)  # extra particles per cluster (inclusive range)
    cluster_spacing_mm: tuple[float, float] = (0.10, 0.20)  # distance of a cluster member from its seed
    # --- pose ---
    shift_sigma_px: float = 8.0  # operator placement error (the guide keeps it small)
    shift_max_px: float = 30.0
    scale_range: float = 0.15  # +-15 % (stand-off distance)
    tilt_max_deg: float = 6.0  # mild tilt: foreshortening along a random axis
    # --- optics ---
    psf_sigma_px: float = 0.85  # in-focus point spread (Gaussian sigma)
    defocus_sigma_px: tuple[float, float] = (0.0, 0.35)  # extra blur drawn per capture (uniform)
    # --- sensor and scene ---
    background: float = 38.0  # substrate level, DN
    vignetting: float = 0.25  # relative fall-off at the frame corner (quadratic in radius)
    texture_sigma: float = 0.8  # substrate texture, DN rms
    texture_scale_px: float = 6.0  # correlation length of the texture
    gain_e_per_dn: float = 4.0  # shot noise: electrons per DN
    read_noise_dn: float = 1.6
    hot_pixels: int = 6  # single bright pixels per frame
    dust_specks: int = 2  # soft dark specks per frame
    dust_depth: float = 0.35  # attenuation at the speck centre
    wear_loss: float = 0.0  # fraction of particles lost (abrasion), drawn per capture
    jpeg_quality: int | None = None  # None: raw 8-bit sensor output
    # --- used by the randomized family (0 / False: the fixed profiles' frames are unchanged) ---
    defocus_disc_px: tuple[float, float] = (0.0, 0.0)  # radius of a uniform defocus disc, drawn per capture
    gradient: float = 0.0  # linear illumination gradient: relative change from frame centre to edge
    focal_px: float = 0.0  # pinhole focal length in px: tilt becomes a true perspective (0: foreshortening only)
    hot_pixel_rate: float = 0.0  # hot pixels per megapixel (added to ``hot_pixels``)
    randomized: bool = False  # every item draws its own optics (glint.sim.wild.item_profile)
    extras: dict = field(default_factory=dict)

    def at(self, width: int, height: int) -> "Profile":
        """The same set-up captured at another frame size (magnification scales with width)."""
        if self.randomized:
            from glint.errors import UsageError

            raise UsageError(f"profile {self.name!r} draws each item's frame size itself", hint="drop --vga")
        k = width / self.width
        return replace(
            self,
            width=width,
            height=height,
            px_per_mm=self.px_per_mm * k,
            psf_sigma_px=self.psf_sigma_px * k,
            defocus_sigma_px=(self.defocus_sigma_px[0] * k, self.defocus_sigma_px[1] * k),
            texture_scale_px=self.texture_scale_px * k,
            shift_sigma_px=self.shift_sigma_px * k,
            shift_max_px=self.shift_max_px * k,
            flux_median=self.flux_median * k * k,
        )


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
            from glint.sim.wild import item_profile

            return item_profile(p, item_seed)
        return p
    try:
        return PROFILES[str(profile)]
    except KeyError:
        from glint.errors import UsageError

        raise UsageError(
            f"unknown simulator profile {profile!r}", hint="choose one of: " + ", ".join(PROFILES)
        ) from None
