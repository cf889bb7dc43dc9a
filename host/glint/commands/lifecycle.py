"""glint intake / transfer / service / rental / retire: the custody lifecycle (docs/lifecycle.md).

    glint intake -p URL [--item ID] [--reason vintage|pre-owned|re-coated] [--by NAME] [--brand]
    glint transfer ITEM --to OWNER [-p URL] [--seller S] [--channel C] [--price P] [--currency EUR]
    glint service ITEM --action TEXT [-p URL] [--recoat] [--open] [--override REASON]
    glint rental out ITEM --to RENTER [-p URL] [--due TIME]
    glint rental return ITEM -p URL [--cond TEXT]
    glint retire ITEM --reason TEXT

A thin layer over glint.workflows.lifecycle. Exit 0 when the workflow went through, 1 when
its scan failed (intake verify, a rental return: a substitution case), 2 on a refusal or an
error (one line, e.g. "glint: item X is retired (since ...): no lifecycle event is accepted").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from glint.cli import add_port_argument
from glint.home import home_of

BRAND_KEY_ENV = "GLINT_BRAND_KEY"


def _session_options(p: argparse.ArgumentParser, scanner: str | None = "optional") -> None:
    if scanner is not None:
        add_port_argument(p, default_help="none: rely on a passing scan within the scan window"
                          if scanner == "optional" else "auto: the one USB scanner found")
    p.add_argument("--operator", help="who does this (recorded in the ledger)")
    p.add_argument("--location", help="where (recorded in the ledger)")
    p.add_argument("--json", action="store_true", help="print one JSON object (events, state, history, ...)")


def _window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=int, metavar="SECONDS",
                   help="without -p: the latest passing scan may be this old (default [lifecycle] scan_window_s "
                        "of config.toml, else 900)")


def _brand_key(p: argparse.ArgumentParser) -> None:
    p.add_argument("--brand-key-file", type=Path, metavar="FILE",
                   help=f"file holding the brand credential (an API key of role brand of this home); "
                        f"default ${BRAND_KEY_ENV}")


def register(sub) -> None:
    p = sub.add_parser("intake", help="take an item in: verify it if enrolled, else identify and enroll it (later)")
    _session_options(p, scanner="required")
    p.add_argument("--item", help="the item's id (needed to enroll a new item; omit to identify)")
    p.add_argument("--reason", default="pre-owned", choices=("vintage", "pre-owned", "re-coated"),
                   help="why it is enrolled after the factory (default pre-owned)")
    p.add_argument("--by", help="the authenticator recorded in the provenance (default --operator)")
    p.add_argument("--brand", action="store_true",
                   help="register it as the brand's factory enrollment (needs the brand credential)")
    p.add_argument("--brand-name", metavar="NAME", help="the brand recorded in the twin (default the item id's prefix)")
    _brand_key(p)
    p.add_argument("--captures", type=int, default=3, help="captures fused into a new enrollment (default 3)")
    p.set_defaults(func=cmd_intake)

    p = sub.add_parser("transfer", help="hand an item to a new owner after a passing scan; the buyer's certificate")
    p.add_argument("item", help="item id")
    p.add_argument("--to", required=True, metavar="OWNER", help="the buyer (new owner)")
    p.add_argument("--seller", help="the seller (default the current owner)")
    p.add_argument("--channel", help="sales channel (resale platform, shop, private, ...)")
    p.add_argument("--price", type=float, help="price paid")
    p.add_argument("--currency", help="currency of the price (EUR, USD, ...)")
    p.add_argument("--note", help="free text recorded with the transfer")
    _window(p)
    _session_options(p)
    p.add_argument("--no-cert", action="store_true", help="do not issue the buyer's certificate")
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser("service", help="record service work; --recoat enrolls a new coating")
    p.add_argument("item", help="item id")
    p.add_argument("--action", default="repair", help="the work (repair, clean, re-coat, ...; default repair)")
    p.add_argument("--by", help="the service centre or technician (default --operator)")
    p.add_argument("--note", help="free text recorded with the work")
    p.add_argument("--recoat", action="store_true", help="enroll the new coating from the scanner (-p)")
    p.add_argument("--captures", type=int, default=3, help="captures of the new coating (default 3)")
    p.add_argument("--open", dest="keep_open", action="store_true",
                   help="the item stays in service (more work later); default: the work is done")
    p.add_argument("--override", metavar="REASON",
                   help="a brand's reason to work without a passing scan (needs the brand credential)")
    _brand_key(p)
    _window(p)
    _session_options(p)
    p.set_defaults(func=cmd_service)

    p = sub.add_parser("rental", help="rent an item out or take it back",
                       description="glint rental out|return ITEM: a return needs a passing scan of the same item; "
                                   "a failed one opens a substitution case and marks the item suspect.")
    rs = p.add_subparsers(dest="rental_cmd", metavar="SUBCOMMAND", required=True)
    s = rs.add_parser("out", help="rent an item out after a passing scan")
    s.add_argument("item", help="item id")
    s.add_argument("--to", required=True, metavar="RENTER", help="the renter")
    s.add_argument("--due", type=int, metavar="TIME", help="due back (Unix seconds)")
    s.add_argument("--note", help="free text recorded with the rental")
    _window(s)
    _session_options(s)
    s.set_defaults(func=cmd_out)
    s = rs.add_parser("return", help="take a rented item back: its scan must pass")
    s.add_argument("item", help="item id")
    s.add_argument("--cond", help="condition on return (recorded)")
    s.add_argument("--note", help="free text recorded with the return")
    _session_options(s, scanner="required")
    s.set_defaults(func=cmd_return)

    p = sub.add_parser("retire", help="retire an item for good: no later event is accepted")
    p.add_argument("item", help="item id")
    p.add_argument("--reason", required=True, help="why (destroyed, lost, recycled, ...)")
    _session_options(p, scanner=None)
    p.set_defaults(func=cmd_retire)


def _brand_secret(args) -> str | None:
    f = getattr(args, "brand_key_file", None)
    if f is not None:
        return f.read_text().strip()
    return os.environ.get(BRAND_KEY_ENV) or None


class _Run:
    """A HostSession (and a scanner when -p was given) for one command."""

    def __init__(self, args, scanner: str | None):
        from glint.workflows import HostSession

        self.args = args
        self.home = home_of(args)
        self.host = HostSession(self.home, operator=args.operator, location=args.location)
        self.sc = None
        try:
            port = getattr(args, "port", None)
            if scanner == "required" or port:
                from glint.address import resolve_port
                from glint.link import Timeouts, open_scanner

                self.sc = open_scanner(resolve_port(port), Timeouts.from_config(self.home.section("link")))
        except BaseException:
            self.host.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.sc is not None:
            self.sc.close()
        self.host.close()


def _guidance(text: str) -> None:
    print(f"capture: {text}; scanning again", file=sys.stderr)


def _print(args, out, head: str) -> int:
    from glint.ledger import lifecycle as lc
    from glint.textsafe import clean

    if args.json:
        print(json.dumps(out.to_dict()))
    else:
        print(clean(head))
        if out.note:
            print(clean(out.note))
        if out.scan is not None:
            s = out.scan
            far = f", log10 FAR {s.log10_far:.1f}" if s.log10_far is not None else ""
            print(f"scan: {s.result.upper()}{far} (device {s.checked.device_id}, counter {s.checked.counter}, "
                  f"event {s.ledger_index})")
        if out.events:
            print("events: " + ", ".join(str(i) for i in out.events))
        print(f"state: {lc.STATE_TEXT.get(out.state, out.state)}")
        if out.case is not None:
            print(f"exception case {out.case} (glint bench --exceptions)")
        if out.cert_path:
            print(f"certificate {out.cert_path}")
        if out.history:
            from glint.commands.ledger import _ts

            print("history")
            for e in out.history:
                print(f"  {e.index:>8}  {_ts(e.time)}  {clean(e.kind):<13} {e.summary()}")
    return 0 if out.passed else 1


def cmd_intake(args) -> int:
    from glint.workflows import lifecycle as lw

    with _Run(args, "required") as r:
        assert r.sc is not None
        key = _brand_secret(args) if args.brand else None
        if args.brand and key is None:
            lw.brand_credential(r.host, None)  # the one-line refusal naming what is missing
        out = lw.intake(r.host, r.sc, item=args.item, reason=args.reason, by=args.by, brand=args.brand_name,
                        brand_key=key, captures=args.captures, on_guidance=_guidance)
    return _print(args, out, f"intake {out.item}: {'PASS' if out.passed else 'FAIL'}")


def cmd_transfer(args) -> int:
    from glint.workflows import lifecycle as lw

    with _Run(args, None) as r:
        out = lw.transfer(r.host, args.item, args.to, r.sc, seller=args.seller, channel=args.channel,
                          price=args.price, currency=args.currency, note=args.note, window_s=args.window,
                          certificate=not args.no_cert, on_guidance=_guidance)
    return _print(args, out, f"transferred {out.item} to {args.to} (relies on scan event {out.verified})")


def cmd_service(args) -> int:
    from glint.workflows import lifecycle as lw

    with _Run(args, None) as r:
        key = _brand_secret(args) if args.override is not None else None
        out = lw.service(r.host, args.item, args.action, r.sc, by=args.by, note=args.note, recoat=args.recoat,
                         keep_open=args.keep_open, override=args.override, brand_key=key, captures=args.captures,
                         window_s=args.window, on_guidance=_guidance)
    return _print(args, out, f"service of {out.item}: {args.action}" + (" (new coating enrolled)" if args.recoat else ""))


def cmd_out(args) -> int:
    from glint.workflows import lifecycle as lw

    with _Run(args, None) as r:
        out = lw.rental_out(r.host, args.item, args.to, r.sc, due=args.due, note=args.note, window_s=args.window,
                            on_guidance=_guidance)
    return _print(args, out, f"rented out {out.item} to {args.to}")


def cmd_return(args) -> int:
    from glint.workflows import lifecycle as lw

    with _Run(args, "required") as r:
        assert r.sc is not None
        out = lw.rental_return(r.host, args.item, r.sc, condition=args.cond, note=args.note, on_guidance=_guidance)
    return _print(args, out, f"returned {out.item}" if out.passed else f"RETURN REFUSED {out.item}")


def cmd_retire(args) -> int:
    from glint.workflows import lifecycle as lw

    with _Run(args, None) as r:
        out = lw.retire(r.host, args.item, args.reason)
    return _print(args, out, f"retired {out.item}: {args.reason}")
