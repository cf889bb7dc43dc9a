"""Matching of spot constellations: enroll, 1:1 verify, 1:N identify (see docs/matching.md).

Library API (the CLI in glint.commands.match is a thin layer over it)::

    from glint.match import load_spots, enroll, verify, Database, identify
    ref = enroll([load_spots(p) for p in captures])        # MatchError with the reason if poor
    res = verify(ref, load_spots(probe))                     # Result(match, log10_far, matched, transform, residual)
    db = Database("items.db"); db.add("item-1", ref)
    hit = identify(db, load_spots(probe))                    # IdentifyResult(item, log10_far, candidates)
    db = open_references(home)                               # a home's references: HOME/match, or its
                                                             # PostgreSQL database (glint.match.shared)
"""

from glint.match.database import Database
from glint.match.enroll import enroll
from glint.match.identify import IdentifyResult, identify
from glint.match.params import MatchParams
from glint.match.reference import Reference
from glint.match.spots import SpotSet, load_spots, spots_from_descriptor, spots_from_image, spots_from_scan
from glint.match.verify import Probe, Result, prepare, verify


def open_references(home) -> Database:
    """The enrolled references of a glint home: ``HOME/match``, or, when the home's data is in
    PostgreSQL, the shared references with this host's index cache in ``HOME/match-cache``."""
    if home.database:
        from glint.match.shared import SharedDatabase, cache_dir_for

        return SharedDatabase(home.database, cache_dir_for(home.root, home.database))
    return Database(home.match_dir)


def has_references(home) -> bool:
    """Whether the home may hold references (a configured database always may)."""
    return bool(home.database) or home.match_dir.exists()


__all__ = ["open_references", "has_references", "Database", "enroll", "identify", "IdentifyResult",
           "MatchParams", "Reference", "SpotSet", "load_spots", "spots_from_descriptor", "spots_from_image",
           "spots_from_scan", "Probe", "Result", "prepare", "verify"]
