"""The custody lifecycle as workflows: intake, transfer, service (re-coat), rental, retire (docs/lifecycle.md).

    from glint.workflows import HostSession
    from glint.workflows import lifecycle as lw
    with HostSession(home, operator="ana", location="Paris") as host, open_scanner(url) as sc:
        lw.intake(host, sc, item="acme:BAG-9", reason="vintage")          # verify or identify, then enroll (later)
        lw.transfer(host, "acme:BAG-9", to="bob", scanner=sc, channel="resale", price=1200, currency="EUR")
        lw.service(host, "acme:BAG-9", "re-coat", scanner=sc, recoat=True, by="atelier")
        lw.rental_out(host, "acme:BAG-9", to="carol", scanner=sc)
        lw.rental_return(host, "acme:BAG-9", sc)                           # a failed scan opens a substitution case
        lw.retire(host, "acme:BAG-9", reason="destroyed")

Every workflow checks the item's lifecycle state first (glint.ledger.lifecycle: the same table
the ledger enforces on each append, so a refusal comes before any scan) and records its
events with the operator and location of the session. A scan a workflow relies on is either
taken in the same call (``scanner``) or is the item's latest verify event, when it passed no
longer ago than the scan window (``[lifecycle] scan_window_s`` in the home's config.toml,
default 900 s). The events that rely on a scan name it (``verified``: its log index) and the
ledger checks that it passed.

The brand credential (``--brand`` intake, a service without a passing scan): an API key of
role ``brand`` of this home (``glint api-key create --role brand --label acme``). It is the
same credential the HTTP API takes for brand actions, stored hashed, revocable, and named
in the event (``by``: "brand key <id> (<label>)"). Locally it proves that the home's
administrator gave the operator brand authority; it is not a signature by the brand.
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from glint.errors import UsageError
from glint.ledger import EventSpec
from glint.ledger import events as ev
from glint.ledger import lifecycle as lc
from glint.link import Scanner
from glint.workflows.enroll import brand_credential
from glint.workflows.scan import MAX_CAPTURE_ATTEMPTS, HostSession, ScanOutcome, acquire

_log = logging.getLogger(__name__)

DEFAULT_SCAN_WINDOW_S = 900
INTAKE_REASONS = ("vintage", "pre-owned", "re-coated")
SUBSTITUTION = "substitution suspected at rental return"


class ScanRequired(lc.LifecycleRefused):
    """A workflow that needs a passing scan of the item has none (HTTP 422, reason ``no-passing-scan``)."""

    def __init__(self, msg: str, hint: str | None = None):
        super().__init__(msg, hint, "no-passing-scan")


@dataclass
class LifecycleOutcome:
    """What a workflow did: the events it appended, the scan it relied on, a certificate."""

    workflow: str
    item: str
    events: list[int] = field(default_factory=list)   # log indexes appended
    scan: ScanOutcome | None = None                    # the scan taken in this call
    verified: int | None = None                        # the log index of the scan relied on
    cert_path: Path | None = None
    state: str = ""
    passed: bool = True
    case: int | None = None                            # exception queue entry (a failed return)
    note: str = ""
    history: list = field(default_factory=list)        # the item's events (ev.Event), oldest first

    def to_dict(self) -> dict:
        return {"workflow": self.workflow, "item": self.item, "events": self.events, "verified": self.verified,
                "scan": self.scan.to_dict() if self.scan else None, "state": self.state, "passed": self.passed,
                "certificate": str(self.cert_path) if self.cert_path else None, "case": self.case,
                "note": self.note,
                "history": [{"index": e.index, "kind": e.kind, "time": e.time, "data": _jsonable(e.data)}
                            for e in self.history]}


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_jsonable(v) for v in d]
    return d.hex() if isinstance(d, bytes) else d


def scan_window(host: HostSession) -> int:
    return scan_window_of(host.home.section("lifecycle"), host.home.config_path)


def scan_window_of(section: dict, where) -> int:
    """The scan window of a home's ``[lifecycle]`` config section (seconds)."""
    w = section.get("scan_window_s", DEFAULT_SCAN_WINDOW_S)
    if type(w) is not int or w < 0:
        raise UsageError(f"{where}: [lifecycle] scan_window_s must be a whole number of seconds")
    return w


def _state(host: HostSession, item: str):
    try:
        return host.ledger.item(item)
    except UsageError:
        return None


def _check(item: str, st, kind: str, data: dict | None = None) -> None:
    """Refuse now (before any scan) what the ledger would refuse: the same state machine."""
    if st is None:
        lc.step(item, lc.NEW, None, None, kind, data or {})
    else:
        lc.step(item, st.state, st.since, st.why, kind, data or {}, st.before_suspect)


def _scan(host: HostSession, scanner: Scanner, item: str, on_guidance=None,
          attempts: int = MAX_CAPTURE_ATTEMPTS) -> ScanOutcome:
    checked, t = acquire(host.registry, scanner, host.policy, attempts, on_guidance)
    out = host.match(checked, item)
    out.timings = {"check": t, **out.timings}
    return out


def _append(host: HostSession, specs: list[EventSpec], scan: ScanOutcome | None = None) -> list[int]:
    """Append ``specs`` in one durable commit; the scan (if any) is the verify among them.

    An event that names a scan (``verified``) is appended after the scan's own commit, with
    the index the ledger gave it: on a shared ledger (PostgreSQL, several hosts) indexes are
    assigned when the commit takes the sequencer, so an index predicted earlier could be wrong.
    """
    done = host.ledger.append_batch(specs)
    idx = [a.index for a in done]
    if scan is not None:
        scan.ledger_index = next(a.index for a, s in zip(done, specs) if s.kind == ev.VERIFY)
        host.record_outcome(scan)
    return idx


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _who(host: HostSession) -> dict:
    return _clean({"op": host.operator, "loc": host.location})


def passing_scan(host: HostSession, item: str, window_s: int | None = None, now: float | None = None) -> int:
    """The log index of the item's latest verify event if it passed within the scan window; else ScanRequired."""
    st = _state(host, item)
    window = scan_window(host) if window_s is None else window_s
    return _recent_pass(item, st, window, now)


def _recent_pass(item: str, st, window: int, now: float | None = None) -> int:
    now = _time.time() if now is None else now
    lv = st.last_verify if st is not None else None
    if lv is None:
        raise ScanRequired(f"item {item} has no scan on record", "scan it in this command (-p URL)")
    age = int(now - lv["time"])
    if lv.get("res") != "pass":
        raise ScanRequired(f"the latest scan of {item} (event {lv['index']}, {lc.when(lv['time'])}) did not pass",
                           "scan it again (-p URL); a failing item is not handed on")
    if age > window:
        raise ScanRequired(f"the latest passing scan of {item} (event {lv['index']}) is {age} s old, more than "
                           f"the scan window of {window} s", "scan it in this command (-p URL)")
    return lv["index"]


def _fail_line(out: ScanOutcome) -> str:
    far = f", log10 FAR {out.log10_far:.1f}" if out.log10_far is not None else ""
    return f"the scan of {out.item} did not pass ({out.reason or 'no match'}{far})"


# --------------------------------------------------------------------------- intake

def intake(host: HostSession, scanner: Scanner, item: str | None = None, reason: str = "pre-owned",
           by: str | None = None, brand: str | None = None, brand_key: str | None = None,
           captures: int = 3, between: Callable[[int], None] | None = None,
           on_guidance: Callable[[str], None] | None = None) -> LifecycleOutcome:
    """Take an item in: verify it if enrolled (history shown), else identify 1:N, then enroll it.

    A new item is enrolled with provenance ``later`` (``by``: the authenticator, default the
    session's operator; ``at``: now; ``reason``: vintage, pre-owned or re-coated), never
    ``factory``, unless ``brand_key`` is a brand credential (then ``factory``, by that key).
    ``between(i)`` runs before capture i (capture 0 is the intake scan itself).
    """
    if reason not in INTAKE_REASONS:
        raise UsageError(f"intake reason {reason!r} is not one of {', '.join(INTAKE_REASONS)}")
    factory_by = brand_credential(host, brand_key) if brand_key is not None else None
    st = _state(host, item) if item else None
    if st is not None and st.state == lc.RETIRED:
        _check(item or "", st, ev.VERIFY)
    if between:
        between(0)
    checked, t = acquire(host.registry, scanner, host.policy, MAX_CAPTURE_ATTEMPTS, on_guidance)
    db = host.db
    if item is not None and item in db:  # enrolled: verify 1:1 and show its history
        out = host.process(checked, item)
        st = host.ledger.item(item)
        return LifecycleOutcome("intake", item, [out.ledger_index] if out.ledger_index is not None else [], out,
                                out.ledger_index, out.cert_path, st.state, out.passed,
                                note="enrolled: verified" if out.passed else _fail_line(out), history=st.events)
    hit = host.match(checked, None) if len(db) else None
    if hit is not None and hit.item is not None:  # the coating is already enrolled, as another item maybe
        if item is not None and hit.item != item:
            host.process(checked, None)
            raise UsageError(f"this coating is already enrolled as {hit.item}, not {item}",
                             f"take it in as {hit.item} (its history: glint ledger show {hit.item})")
        out = host.process(checked, None)
        st = host.ledger.item(hit.item)
        return LifecycleOutcome("intake", hit.item, [out.ledger_index] if out.ledger_index is not None else [], out,
                                out.ledger_index, out.cert_path, st.state, True,
                                note="enrolled: identified", history=st.events)
    if item is None:
        raise UsageError("this item is not enrolled here (no enrolled item matches its scan)",
                         "give --item ID to enroll it")
    from glint.workflows.enroll import enroll_from_scanner

    prov: dict[str, object]
    if factory_by is not None:
        prov = {"class": "factory", "by": factory_by}
    else:
        who = by or host.operator
        if not who:
            raise UsageError("a later enrollment names who authenticated the item", "give --by NAME (or --operator)")
        prov = {"class": "later", "by": who, "at": int(_time.time()), "reason": reason}
    e = enroll_from_scanner(host, scanner, item, captures=max(1, captures), brand=brand, between=between,
                            provenance=prov, first=checked, on_guidance=on_guidance)
    st = host.ledger.item(item)
    return LifecycleOutcome("intake", item, [ev_.index for ev_ in st.events], None, None, None, st.state, True,
                            note=f"enrolled ({prov['class']}) from {e.captures} captures, {e.spots} spots",
                            history=st.events)


# --------------------------------------------------------------------------- transfer

def transfer(host: HostSession, item: str, to: str, scanner: Scanner | None = None, seller: str | None = None,
             channel: str | None = None, price: float | None = None, currency: str | None = None,
             note: str | None = None, custodian: str | None = None, window_s: int | None = None,
             certificate: bool = True, on_guidance=None) -> LifecycleOutcome:
    """Hand the item to a new owner: a passing scan now (``scanner``) or within the scan window.

    With a scan now the transfer and the scan are appended in one commit, the scan last, and
    its certificate is the buyer's (its history holds the transfer: seller, buyer, channel,
    price, who, where, when). Without, the transfer names the recent passing scan it relies on
    (``verified``), and the buyer's certificate is that scan's (it certifies the scan, made
    before the transfer: its history does not hold the transfer; scan at the handover for one
    that does).
    """
    st = _state(host, item)
    _check(item, st, ev.TRANSFER)
    assert st is not None
    data = _clean({"owner": to, "custodian": custodian, "seller": seller or st.owner, "channel": channel,
                   "price": price, "currency": currency, "note": note, **_who(host)})
    if scanner is None:
        data["verified"] = _recent_pass(item, st, scan_window(host) if window_s is None else window_s)
        idx = _append(host, [EventSpec(ev.TRANSFER, item, data)])
        res = _done(host, "transfer", item, idx, None, data["verified"])
        if certificate:
            res.cert_path = host.write_certificate(data["verified"], item)
        return res
    out = _scan(host, scanner, item, on_guidance)
    if not out.passed:
        idx = _append(host, [host.verify_spec(out)], out)
        raise ScanRequired(f"{_fail_line(out)}: transfer refused (scan recorded as event {idx[0]})",
                           "a failing item is not handed on; check it (glint ledger show)")
    idx = _append(host, [EventSpec(ev.TRANSFER, item, data), host.verify_spec(out, note=f"handover to {to}")], out)
    res = _done(host, "transfer", item, idx, out, idx[1])
    if certificate:
        res.cert_path = out.cert_path = host.write_certificate(idx[1], item)
    return res


def _done(host, workflow, item, idx, scan, verified, passed=True, note="") -> LifecycleOutcome:
    st = host.ledger.item(item)
    return LifecycleOutcome(workflow, item, idx, scan, verified, None, st.state, passed, note=note,
                            history=st.events)


# --------------------------------------------------------------------------- service

def service(host: HostSession, item: str, action: str, scanner: Scanner | None = None, by: str | None = None,
            note: str | None = None, recoat: bool = False, keep_open: bool = False, override: str | None = None,
            brand_key: str | None = None, captures: int = 3, between: Callable[[int], None] | None = None,
            window_s: int | None = None, on_guidance=None) -> LifecycleOutcome:
    """Record service work; ``recoat`` enrolls a new coating that replaces the active one.

    An item not yet in service is received first (``service`` stage "in"), which needs a
    passing scan before the work (now on ``scanner``, or within the scan window), unless a
    brand overrides: ``override`` (the reason) with ``brand_key``. The work is recorded at
    stage "out" (back in circulation) unless ``keep_open`` (it stays in service; a later
    call records more work and closes it).
    """
    st = _state(host, item)
    if st is None:
        _check(item, st, ev.SERVICE)
    assert st is not None
    if recoat and scanner is None:
        raise UsageError("a re-coat enrolls the new coating from a scanner", "give -p URL")
    idx: list[int] = []
    scan = None
    verified = None
    by = by or host.operator
    if st.state != lc.IN_SERVICE:
        _check(item, st, ev.SERVICE, {"stage": "in"})
        data = _clean({"action": action, "stage": "in", "by": by, **_who(host)})
        if override is not None:
            data["override"] = override
            data["by"] = brand_credential(host, brand_key)
            idx += _append(host, [EventSpec(ev.SERVICE, item, data)])
        elif scanner is not None:
            scan = _scan(host, scanner, item, on_guidance)
            if not scan.passed:
                i = _append(host, [host.verify_spec(scan)], scan)
                raise ScanRequired(f"{_fail_line(scan)}: service refused (scan recorded as event {i[0]})",
                                   "work on an item that does not pass needs a brand's --override REASON")
            vi = _append(host, [host.verify_spec(scan, note=f"before service: {action}")], scan)[0]
            data["verified"] = verified = vi
            idx += [vi] + _append(host, [EventSpec(ev.SERVICE, item, data)])
        else:
            verified = data["verified"] = _recent_pass(item, st, scan_window(host) if window_s is None else window_s)
            idx += _append(host, [EventSpec(ev.SERVICE, item, data)])
    if recoat:
        from glint.workflows.enroll import enroll_from_scanner

        assert scanner is not None
        e = enroll_from_scanner(host, scanner, item, captures=max(1, captures), replace=True, between=between,
                                on_guidance=on_guidance)
        idx.append(e.ledger_index)
    done = _clean({"action": action, "by": by, "note": note, **_who(host)})
    if not keep_open:
        done["stage"] = "out"
    idx += _append(host, [EventSpec(ev.SERVICE, item, done)])
    return _done(host, "service", item, idx, scan, verified)


# --------------------------------------------------------------------------- rental

def rental_out(host: HostSession, item: str, to: str, scanner: Scanner | None = None, due: int | None = None,
               note: str | None = None, window_s: int | None = None, on_guidance=None) -> LifecycleOutcome:
    """Lend the item out after a passing scan (now or within the window): the return is compared with it."""
    st = _state(host, item)
    _check(item, st, ev.RENTAL_OUT)
    data = _clean({"to": to, "due": due, "note": note, **_who(host)})
    if scanner is None:
        data["verified"] = _recent_pass(item, st, scan_window(host) if window_s is None else window_s)
        return _done(host, "rental-out", item, _append(host, [EventSpec(ev.RENTAL_OUT, item, data)]), None,
                     data["verified"])
    out = _scan(host, scanner, item, on_guidance)
    if not out.passed:
        i = _append(host, [host.verify_spec(out)], out)
        raise ScanRequired(f"{_fail_line(out)}: rental refused (scan recorded as event {i[0]})")
    vi = _append(host, [host.verify_spec(out, note=f"rental to {to}")], out)[0]
    data["verified"] = vi
    return _done(host, "rental-out", item, [vi] + _append(host, [EventSpec(ev.RENTAL_OUT, item, data)]), out, vi)


def rental_return(host: HostSession, item: str, scanner: Scanner, condition: str | None = None,
                  note: str | None = None, on_guidance=None) -> LifecycleOutcome:
    """Take the item back: a passing scan of the same item now, else a substitution case.

    A failing scan is recorded, a case is opened in the exception queue (source ``rental``)
    and the twin is marked ``suspect`` (naming the case and the failed scan); the outcome
    has ``passed`` False. A suspect item accepts no return until cleared.
    """
    from glint.bench.exceptions import ExceptionQueue
    from glint.db import transaction

    st = _state(host, item)
    _check(item, st, ev.RENTAL_RETURN)
    assert st is not None
    out = _scan(host, scanner, item, on_guidance)
    vi = _append(host, [host.verify_spec(out, note="rental return")], out)[0]
    if out.passed:
        data = _clean({"cond": condition, "note": note, "verified": vi, **_who(host)})
        return _done(host, "rental-return", item, [vi] + _append(host, [EventSpec(ev.RENTAL_RETURN, item, data)]),
                     out, vi)
    q = ExceptionQueue(host.registry.conn)
    with transaction(host.registry.conn):
        case = q.add("rental", item, f"{SUBSTITUTION}: {_fail_line(out)}",
                     {"renter": st.rented_to, "scan_event": vi, "device": out.checked.device_id,
                      "counter": out.checked.counter, "log10_far": out.log10_far})
    data = _clean({"reason": SUBSTITUTION, "case": case, "verified": vi, **_who(host)})
    idx = [vi] + _append(host, [EventSpec(ev.SUSPECT, item, data)])
    res = _done(host, "rental-return", item, idx, out, vi, passed=False,
                note=f"{_fail_line(out)}: substitution case {case} opened, item marked suspect")
    res.case = case
    return res


# --------------------------------------------------------------------------- retire

def retire(host: HostSession, item: str, reason: str) -> LifecycleOutcome:
    """Retire the item for good: the ledger accepts no later event of it."""
    if not reason:
        raise UsageError("a retirement names its reason (destroyed, lost, recycled, ...)")
    st = _state(host, item)
    _check(item, st, ev.RETIRE)
    idx = _append(host, [EventSpec(ev.RETIRE, item, _clean({"reason": reason, **_who(host)}))])
    return _done(host, "retire", item, idx, None, None)


# --------------------------------------------------------------------------- the same rules on a server

# Workflows of the HTTP API (POST /v1/items/<item>/lifecycle/<workflow>): workflow -> (event kind, stage,
# the roles that may run it). The scan each relies on was uploaded before (POST /v1/events, a verify
# event the server re-checked): the item's latest verify, passed, within the server's scan window.
REMOTE = {
    "transfer": (ev.TRANSFER, None, ("bench", "field", "brand")),
    "service-in": (ev.SERVICE, "in", ("bench", "field", "brand")),
    "service-out": (ev.SERVICE, "out", ("bench", "field", "brand")),
    "rental-out": (ev.RENTAL_OUT, None, ("bench", "field", "brand")),
    "rental-return": (ev.RENTAL_RETURN, None, ("bench", "field", "brand")),
    "retire": (ev.RETIRE, None, ("brand",)),
}
OVERRIDE_ROLES = ("brand",)


def run_remote(led, queue, workflow: str, item: str, data: dict, role: str, who: str, window_s: int,
               now: float | None = None) -> dict:
    """One lifecycle workflow on a server's ledger, as the local commands do it (the same checks).

    ``data``: the event's client fields (already schema-checked; not ``stage``/``verified``,
    which are set here); ``role``/``who``: the caller's key role and name (a brand override
    records ``who``); ``queue``: the exception queue for a failed rental return.
    Returns {workflow, item, events: [{index, leaf_hash}], state, verified, passed, case}.
    """
    from glint.errors import UsageError as _U

    kind, stage, roles = REMOTE[workflow]
    if role not in roles:
        from glint.server.auth import Forbidden

        raise Forbidden(f"a {role} key may not run the {workflow} workflow", f"roles: {', '.join(roles)}")
    data = dict(data)
    for k in ("stage", "verified"):
        if k in data:
            raise _U(f"the server sets {k!r} of a {workflow}", "leave it out")
    st = led.item(item) if led.store.head(item) is not None else None
    if stage is not None:
        data["stage"] = stage
    _check(item, st, kind, data)
    assert st is not None
    case = None
    passed = True
    specs: list[EventSpec] = []
    if workflow in ("transfer", "rental-out") or (workflow == "service-in" and "override" not in data):
        data["verified"] = _recent_pass(item, st, window_s, now)
    elif workflow == "service-in":
        if role not in OVERRIDE_ROLES:
            from glint.server.auth import Forbidden

            raise Forbidden("only a brand key may override the scan before service")
        data["by"] = who
    elif workflow == "rental-return":
        lv = st.last_verify
        if lv is None or st.since_index is None or lv["index"] < st.since_index:
            raise ScanRequired(f"item {item} has not been scanned since it was rented out",
                               "upload the return scan (a verify event) first")
        data["verified"] = lv["index"]
        if lv.get("res") != "pass":
            passed = False
            case = queue.add("rental", item, f"{SUBSTITUTION}: the return scan (event {lv['index']}) did not pass",
                             {"renter": st.rented_to, "scan_event": lv["index"], "by": who})
            specs.append(EventSpec(ev.SUSPECT, item, _clean({"reason": SUBSTITUTION, "case": case,
                                                              "verified": lv["index"], "op": data.get("op"),
                                                              "loc": data.get("loc")})))
    if not specs:
        specs.append(EventSpec(kind, item, data))
    done = led.append_batch(specs)
    st = led.item(item)
    return {"workflow": workflow, "item": item, "events": [{"index": a.index, "leaf_hash": a.leaf_hash.hex()}
                                                           for a in done],
            "state": st.state, "verified": data.get("verified"), "passed": passed, "case": case}
