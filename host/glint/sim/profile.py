"""The scanner set-up type of the simulator: optics, sensor and coating parameters.

``Profile`` is imported by the named profiles (glint.sim.profiles) and by the randomized
family that draws one per item (glint.sim.wild); neither imports the other's internals.
Every length in the coating is in millimetres; the profile's magnification (``px_per_mm``)
turns it into pixels. docs/simulator.md documents each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from glint.errors import UsageError

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
