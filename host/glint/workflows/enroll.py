"""Enrollment from a scanner: several checked captures of one item -> matcher reference + ledger events."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from glint.checks import CheckedScan
from glint.errors import MatchError
from glint.link import Scanner
from glint.workflows.scan import MAX_CAPTURE_ATTEMPTS, HostSession, acquire
from glintcore.descriptor import K_SPOTS

_log = logging.getLogger(__name__)

DEFAULT_CAPTURES = 3
COATING_ID = "c1"


@dataclass
class EnrollOutcome:
    item: str
    spots: int
    captures: int
    ledger_index: int
    scan_ids: list
    spot_fields: list = field(default_factory=list)  # each capture's descriptor spot records (bytes)


def enroll_from_scanner(host: HostSession, scanner: Scanner, item: str, captures: int = DEFAULT_CAPTURES,
                        brand: str | None = None, replace: bool = False,
                        on_guidance: Callable[[str], None] | None = None,
                        between: Callable[[int], None] | None = None, provenance: dict | None = None,
                        first: CheckedScan | None = None) -> EnrollOutcome:
    """Take ``captures`` checked scans of ``item`` and enroll their fused reference.

    ``between(i)`` runs before capture i (an operator re-places the item; the virtual
    scanner changes its lens). Every capture passes glint.checks like any other scan.
    The ledger gets a register event (if the item is new) and an enroll event whose
    ``ref`` is the SHA-256 of the stored reference and whose scan is the first capture.
    ``provenance``: the register event's (default ``{"class": "factory"}``; intake enrolls
    ``later``); ``first``: an already checked scan of the item used as capture 1.
    """
    from glint.match import enroll, spots_from_descriptor

    db = host.db
    if item in db and not replace:
        raise MatchError(f"item {item!r} is already enrolled", hint="use --replace to re-enroll it")
    checked = [first] if first is not None else []
    for i in range(len(checked), captures):
        if between:
            between(i)
        c, _ = acquire(host.registry, scanner, host.policy, MAX_CAPTURE_ATTEMPTS, on_guidance)
        checked.append(c)
    spots = [spots_from_descriptor(c.payload, source=f"capture {i + 1}") for i, c in enumerate(checked)]
    ref = enroll(spots, db.params, item=item)
    db.add(item, ref, replace=replace)
    led = host.ledger
    extra = {"dev": checked[0].device_id, "op": host.operator, "loc": host.location}
    digest = host.reference_digest(item)
    if not led.store.item_leaves(item):
        led.register_item(item, brand=brand or (item.split(":", 1)[0] if ":" in item else "glint"),
                          provenance=provenance, operator=host.operator, location=host.location)
        a = led.add_coating(item, COATING_ID, ref=digest, scan=checked[0].signed, **extra)
    else:  # re-enrollment (after a repair): a new coating replaces the active one
        state = led.item(item)
        active = state.active_coatings()
        coating = f"c{len(state.coatings) + 1}"
        a = led.add_coating(item, coating, ref=digest, scan=checked[0].signed,
                            replaces=active[-1].id if active else None, **extra)
    for c in checked:
        host.registry.record_outcome(c.scan_id, item, "enrolled", ledger_index=a.index)
    _log.info("enrolled %s from %d captures (%d spots)", item, captures, len(ref.xy))
    return EnrollOutcome(item, len(ref.xy), captures, a.index, [c.scan_id for c in checked],
                         [bytes(c.fields[K_SPOTS]) for c in checked])
