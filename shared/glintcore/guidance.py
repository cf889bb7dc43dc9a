"""Operator guidance: what a capture's quality map (descriptor Q_*) says the operator should do.

Defined once for every side: the scanner's detector (firmware/glintfw/detect.py) puts
``guidance(quality)`` in each descriptor, the host twin (glint.imaging.twin) computes the same
code from the same frame, and the host reads the code back from signed scans. The codes and
their texts are the wire contract's (glintcore.proto GD_*, GUIDANCE_TEXT).
"""

from micropython import const

from glintcore.descriptor import Q_FOCUS, Q_MEAN, Q_SATURATION, Q_SPOTS
from glintcore.proto import GD_NO_COATING, GD_OK, GD_OUT_OF_FOCUS, GD_SATURATED, GD_TOO_DARK, GD_TOO_FEW_SPOTS

DARK_MEAN = const(12)  # mean level below this: too dark
SAT_PERMILLE_MAX = const(20)  # more saturated pixels than 2 %: saturated
NO_COATING_SPOTS = const(6)  # fewer spots: no coating under the lens
FOCUS_MIN = const(800)  # focus = 1477 / sigma_psf**2 (log2 curvature); 800: PSF sigma > 1.36 px is out of focus
MIN_SPOTS = const(30)  # fewer spots: too few to identify the item


def guidance(q):
    """Guidance code (GD_*) from a quality map {Q_*: int}; the first problem found wins."""
    if q[Q_MEAN] < DARK_MEAN:
        return GD_TOO_DARK
    if q[Q_SATURATION] > SAT_PERMILLE_MAX:
        return GD_SATURATED
    if q[Q_SPOTS] < NO_COATING_SPOTS:
        return GD_NO_COATING
    if q[Q_FOCUS] < FOCUS_MIN:
        return GD_OUT_OF_FOCUS
    if q[Q_SPOTS] < MIN_SPOTS:
        return GD_TOO_FEW_SPOTS
    return GD_OK
