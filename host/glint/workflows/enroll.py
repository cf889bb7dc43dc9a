"""Enrollment from a scanner: several checked captures of one item -> matcher reference + ledger events.

A new item's register event states its provenance, and a ``factory`` one is a brand's act
(docs/lifecycle.md): ``provenance_for`` gives ``factory`` only with a brand credential (an API
key of role brand of this home, as ``glint intake --brand`` takes), else ``later`` (by whom,
when, and why when said). The claim asked for is the caller's, else the home's ``[enroll]
provenance`` (``"factory"`` in a brand's own home; the credential is still needed), else
``later``. ``enroll_from_scanner`` without a provenance records ``later`` by the session's
operator (or the local user): never a factory claim nobody made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from glint.checks import CheckedScan
from glint.errors import MatchError, UsageError
from glint.link import Scanner
from glint.workflows.scan import MAX_CAPTURE_ATTEMPTS, HostSession, acquire
from glintcore.descriptor import K_SPOTS

_log = logging.getLogger(__name__)

DEFAULT_CAPTURES = 3
COATING_ID = "c1"
PROVENANCE_CLAIMS = ("factory", "later")


def brand_credential(host: HostSession, key: str | None) -> str:
    """Check a brand credential (an API key of role brand of this home); return who it names."""
    from glint.server import auth

    if not key:
        raise UsageError("this needs a brand credential", "give an API key of role brand of this home "
                         "(glint api-key create --role brand) in $GLINT_BRAND_KEY or --brand-key-file")
    ks = auth.KeyStore(host.home.db)
    try:
        k = ks.authenticate(f"Bearer {key.strip()}")
    except auth.AuthError as e:
        raise UsageError(f"brand credential refused: {e.msg}", e.hint) from None
    finally:
        ks.close()
    assert k is not None
    if k.role != "brand":
        raise UsageError(f"API key {k.key_id} has role {k.role}, not brand", "use a key made with --role brand")
    return f"brand key {k.key_id} ({k.label})"


def local_user() -> str:
    """Who runs this host process, as user@host (what a later enrollment says when nobody is named)."""
    import getpass
    import os
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid-{os.getuid()}"
    return f"{user}@{socket.gethostname()}"[:128]


def later_provenance(by: str | None, reason: str | None = None, at: int | None = None) -> dict:
    """``later``: enrolled after the factory, by ``by`` (default the local user), at ``at`` (now)."""
    import time

    prov: dict = {"class": "later", "by": by or local_user(), "at": int(time.time()) if at is None else at}
    if reason:
        prov["reason"] = reason
    return prov


def provenance_for(host: HostSession, claim: str | None = None, by: str | None = None, reason: str | None = None,
                   brand_key: str | None = None) -> dict:
    """The provenance a new item is registered with (refused before any capture when it cannot hold).

    ``claim``: ``factory`` or ``later`` (default the home's ``[enroll] provenance``, else later);
    factory needs ``brand_key``, a brand credential of this home (brand_credential).
    """

    if claim is None:
        claim = host.home.section("enroll").get("provenance", "later")
        if claim not in PROVENANCE_CLAIMS:
            raise UsageError(f"{host.home.config_path}: [enroll] provenance must be \"factory\" or \"later\", "
                             f"not {claim!r}")
    if claim not in PROVENANCE_CLAIMS:
        raise UsageError(f"provenance {claim!r} is not one of {', '.join(PROVENANCE_CLAIMS)}")
    if claim == "factory":
        if reason or by:
            raise UsageError("a factory enrollment takes no --reason or --by (the brand credential names who)")
        return {"class": "factory", "by": brand_credential(host, brand_key)}
    return later_provenance(by or host.operator, reason)


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
    ``provenance``: the register event's (see ``provenance_for``; default ``later`` by the
    session's operator, or the local user); ``first``: an already checked scan of the item used
    as capture 1.
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
                          provenance=provenance or later_provenance(host.operator), operator=host.operator,
                          location=host.location)
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
