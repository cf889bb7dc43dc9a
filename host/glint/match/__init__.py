"""Matching of spot constellations: enroll, 1:1 verify, 1:N identify (see docs/matching.md).

Library API (the CLI in glint.commands.match is a thin layer over it)::

    from glint.match import load_spots, enroll, verify, Database, identify
    ref = enroll([load_spots(p) for p in captures])        # MatchError with the reason if poor
    res = verify(ref, load_spots(probe))                     # Result(match, log10_far, matched, transform, residual)
    db = Database("items.db"); db.add("item-1", ref)
    hit = identify(db, load_spots(probe))                    # IdentifyResult(item, log10_far, candidates)
"""

from glint.match.database import Database
from glint.match.enroll import enroll
from glint.match.identify import IdentifyResult, identify
from glint.match.params import MatchParams
from glint.match.reference import Reference
from glint.match.spots import SpotSet, load_spots, spots_from_descriptor, spots_from_image, spots_from_scan
from glint.match.verify import Probe, Result, prepare, verify

__all__ = ["Database", "enroll", "identify", "IdentifyResult", "MatchParams", "Reference", "SpotSet",
           "load_spots", "spots_from_descriptor", "spots_from_image", "spots_from_scan", "Probe", "Result",
           "prepare", "verify"]
