"""Assemblies: an item made of marked parts, defined once and scanned part by part.

    define_assembly(host, "acme:BAG-1", {"clasp": "acme:CLASP-1", "strap": "acme:STRAP-1"})
    out = scan_assembly(host, scanner, "acme:BAG-1", place=prompt_placer())
    out.passed, out.verdicts, out.lines(), out.ledger_index, out.cert_path

``define_assembly`` appends, in one durable commit, an ``assembly`` event on the assembly
(its parts) and one on each part (its assembly and part name); a part already in another
assembly is refused. ``scan_assembly`` scans the assembly's own coating first when it has one
enrolled, then asks for each part (``place``: the operator's prompt or a feeder), identifies
what is under the lens, and judges the parts with ``twins.assess_parts``: a part that verifies
as itself belongs; a genuine part of another item, or one that does not verify, does not. Each
part scan is recorded as a verify event of the item it showed; the verdict is a verify event of
the assembly with ``parts`` {name: {res, item, scan}} (``scan``: the SHA-256 of the part's signed
scan, which names its verify event on any host), certified when every part belongs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from glint.errors import UsageError
from glint.ledger import events as ev
from glint.ledger.twins import PartVerdict, assess_parts
from glint.workflows.placing import Placement, Placer, Skip
from glint.workflows.scan import MAX_CAPTURE_ATTEMPTS, HostSession, acquire

_log = logging.getLogger(__name__)

NOT_ITS_OWN = "assembly contains a part that is not its own"
MAX_PARTS = 64


def ensure_registered(host: HostSession, item: str) -> None:
    """An item of the ledger, or enrolled in the matcher only (it gets its register event); else refused."""
    item = ev.check_item_id(item)
    if host.ledger.store.item_leaves(item):
        return
    if item not in host.db:
        raise UsageError(f"unknown item {item}", "enroll it first: glint enroll -p URL --item ITEM")
    host._ensure_registered(item)


def define_assembly(host: HostSession, assembly: str, parts: dict[str, str], operator: str | None = None):
    """Record ``assembly``'s parts (name -> part item id); returns the Appended events.

    Items enrolled in the home's matcher but not yet in its ledger are registered first."""
    _check_parts(assembly, parts)
    for it in [assembly, *parts.values()]:
        ensure_registered(host, it)
    return define_in_ledger(host.ledger, assembly, parts, operator)


def _check_parts(assembly: str, parts: dict) -> None:
    if not isinstance(parts, dict) or not parts or len(parts) > MAX_PARTS:
        raise UsageError(f"an assembly has 1..{MAX_PARTS} parts", "give --part NAME=ITEM (repeatable)")
    items = list(parts.values())
    if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in parts.items()):
        raise UsageError("parts map part names to item ids")
    if assembly in items:
        raise UsageError(f"{assembly} cannot be a part of itself")
    if len(set(items)) != len(items):
        raise UsageError("one item is given as two parts", "each part is a different marked item")


def define_in_ledger(led, assembly: str, parts: dict[str, str], operator: str | None = None):
    """``define_assembly`` on a bare Ledger (the HTTP API): every item must already be registered."""
    from glint.ledger import EventSpec

    _check_parts(assembly, parts)
    for it in [assembly, *parts.values()]:
        if not led.store.item_leaves(ev.check_item_id(it)):
            raise UsageError(f"unknown item {it}", "register and enroll it first")
    op = {"op": operator} if operator else {}
    specs = [EventSpec(ev.ASSEMBLY, assembly, {"parts": dict(parts), **op})]
    specs += [EventSpec(ev.ASSEMBLY, item, {"of": assembly, "part": name, **op}) for name, item in parts.items()]
    return led.append_batch(specs)


def parse_parts(pairs: list[str]) -> dict[str, str]:
    """``["clasp=acme:CLASP-1", ...]`` -> {name: item}; one-line errors."""
    out: dict[str, str] = {}
    for p in pairs or []:
        name, sep, item = p.partition("=")
        name, item = name.strip(), item.strip()
        if not sep or not name or not item:
            raise UsageError(f"part {p!r} is not NAME=ITEM", "e.g. --part clasp=acme:CLASP-1")
        if name in out:
            raise UsageError(f"part {name!r} is given twice")
        out[name] = item
    return out


@dataclass
class PartScan:
    name: str
    expected: str
    result: str                 # pass (showed some enrolled item) / fail / skipped
    item: str | None            # the enrolled item the scan showed
    log10_far: float | None = None
    ledger_index: int | None = None
    error: str = ""
    scan: bytes | None = None   # SHA-256 of the part's signed scan (its verify event's ``scan``)


@dataclass
class AssemblyScan:
    assembly: str
    body: str | None                        # the assembly's own coating: pass / fail / None (not enrolled)
    parts: list[PartScan]
    verdicts: list[PartVerdict]
    passed: bool
    ledger_index: int | None = None
    cert_path: Path | None = None
    timings: dict = field(default_factory=dict)

    @property
    def failing(self) -> list[PartVerdict]:
        return [v for v in self.verdicts if not v.belongs]

    def lines(self) -> list[str]:
        """The verdict for people: the headline, then each part that fails."""
        head = f"{'PASS' if self.passed else 'FAIL'} {self.assembly}"
        if self.passed:
            return [f"{head}: all {len(self.verdicts)} parts are its own"]
        why = []
        if self.body == "fail":
            why.append("its own coating did not verify")
        if self.failing:
            why.append(NOT_ITS_OWN)
        out = [f"{head}: {'; '.join(why)}"]
        out += [f"  {v.reason}" for v in self.failing]
        return out

    def to_dict(self) -> dict:
        return {"assembly": self.assembly, "result": "pass" if self.passed else "fail", "body": self.body,
                "message": None if self.passed else "; ".join(self.lines()[:1]),
                "parts": [{"part": p.name, "expected": p.expected, "scan": p.result, "item": p.item,
                           "log10_far": p.log10_far, "ledger_index": p.ledger_index, "error": p.error}
                          for p in self.parts],
                "verdicts": [{"part": v.part, "item": v.item, "belongs": v.belongs, "reason": v.reason}
                             for v in self.verdicts],
                "ledger_index": self.ledger_index, "cert": str(self.cert_path) if self.cert_path else None}


def _match(host: HostSession, probe, expected: str | None):
    """(item shown or None, log10 FAR): 1:1 against ``expected`` first, else 1:N."""
    from glint.match import identify, verify

    if expected is not None and expected in host.db:
        one = verify(host.db.reference(expected), probe)
        if one.match:
            return expected, float(one.log10_far)
    hit = identify(host.db, probe)
    return hit.item, None if hit.log10_far is None else float(hit.log10_far)


def _record(host: HostSession, item: str, res: str, log10_far, checked, note: str | None = None,
            parts: dict | None = None) -> int:
    data: dict = {"res": res}
    if res == "pass" and log10_far is not None:
        data["fap"] = 10.0 ** min(0.0, log10_far)
    for k, v in (("dev", checked.device_id if checked else None), ("op", host.operator), ("loc", host.location),
                 ("note", note), ("parts", parts)):
        if v is not None:
            data[k] = v
    return host.ledger.append_event(ev.VERIFY, item, data, scan=checked.signed if checked else None).index


def scan_assembly(host: HostSession, scanner, assembly: str, place: Placer | None = None,
                  certificate: bool = True, attempts: int = MAX_CAPTURE_ATTEMPTS,
                  on_guidance: Callable[[str], None] | None = None) -> AssemblyScan:
    """Scan ``assembly`` (its own coating if enrolled) and each of its parts; judge and record."""
    from glint.match.spots import spots_from_fields

    state = host.ledger.item(assembly)
    if not state.parts:
        raise UsageError(f"{assembly} has no parts", f"define them: glint assembly define {assembly} --part NAME=ITEM")
    if len(host.db) == 0:
        raise UsageError("no items are enrolled in this home", "enroll the parts first: glint enroll")
    place = place or (lambda p: None)

    def one(label: str, expected: str | None, env: dict):
        place(Placement(expected, label, getattr(scanner, "url", ""), env))
        checked, _ = acquire(host.registry, scanner, host.policy, attempts, on_guidance)
        probe = spots_from_fields(checked.fields, source=f"scan {checked.device_id}/{checked.counter}")
        return checked, *_match(host, probe, expected)

    body = body_far = body_checked = None
    if assembly in host.db:
        body_checked, shown, body_far = one(f"assembly {assembly} itself", assembly,
                                       {"GLINT_ASSEMBLY": assembly, "GLINT_PART": ""})
        body = "pass" if shown == assembly else "fail"
        host.registry.record_outcome(body_checked.scan_id, assembly, body, body_far, None)
    scans: list[PartScan] = []
    for name, expected in sorted(state.parts.items()):
        env = {"GLINT_ASSEMBLY": assembly, "GLINT_PART": name}
        try:
            checked, shown, far = one(f"part {name!r} of {assembly}", expected, env)
        except Skip as e:
            scans.append(PartScan(name, expected, "skipped", None, error=e.msg))
            continue
        res = "pass" if shown is not None else "fail"
        subject = shown or expected
        idx = _record(host, subject, res, far, checked, note=f"scanned as part {name!r} of {assembly}")
        host.registry.record_outcome(checked.scan_id, subject, res, far, idx)
        scans.append(PartScan(name, expected, res, shown, far, idx, scan=hashlib.sha256(checked.signed).digest()))
    results = {p.name: {"res": "pass" if p.result == "pass" else "fail", "item": p.item} for p in scans}
    part_states = {}
    for p in scans:
        if p.item is not None and p.item not in part_states:
            try:
                part_states[p.item] = host.ledger.item(p.item)
            except UsageError:
                part_states[p.item] = None
    verdicts = assess_parts(state, results, part_states)
    passed = body != "fail" and all(v.belongs for v in verdicts) and len(verdicts) == len(state.parts)
    # each part names its signed scan's event (by the scan's SHA-256, the same on every host): a server
    # recomputes this verdict from those events (glint.server.admit), so an assembly without a coating
    # of its own can be uploaded
    digests = {p.name: p.scan for p in scans if p.scan is not None}
    parts_field = {v.part: {"res": "pass" if v.belongs else "fail", "item": v.item,
                            **({"scan": digests[v.part]} if v.part in digests else {})} for v in verdicts}
    out = AssemblyScan(assembly, body, scans, verdicts, passed)
    note = None if passed else (NOT_ITS_OWN if out.failing else "its own coating did not verify")
    out.ledger_index = _record(host, assembly, "pass" if passed else "fail", body_far, body_checked, note=note,
                               parts=parts_field)
    if certificate and passed:
        out.cert_path = host.write_certificate(out.ledger_index, assembly)
    return out


__all__ = ["define_assembly", "scan_assembly", "parse_parts", "AssemblyScan", "PartScan", "NOT_ITS_OWN"]
