"""`glint cert`: keys, scan certificates, offline verification, renderings.

    glint cert keys [--export DIR]                         create/show the issuer and log keys
    glint cert issue (INDEX | --item ITEM) -o CERT [--png F] [--svg F] [--html F]
    glint cert verify CERT --issuer KEY --log KEY [--html F]   exit 0, or 1 with the reason
    glint cert render CERT --issuer KEY --log KEY [--png F] [--svg F] [--html F]

KEY for --issuer: SEC1 hex (issuer.pub) or PEM (issuer.pem), as a file or inline;
for --log: the signed-note verifier key (log.vkey), as a file or inline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from glint.errors import GlintError, UsageError, VerificationError
from glint.home import home_of
from glint.ledger import Keys, Ledger, load_issuer_public, load_log_verifier, render
from glint.ledger.cert import verify as verify_certificate


def register(subparsers) -> None:
    p = subparsers.add_parser("cert", help="scan certificates: issue, verify offline, render",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cert_cmd", metavar="SUBCOMMAND", required=True)
    outs = argparse.ArgumentParser(add_help=False)
    outs.add_argument("--png", help="write the QR code as PNG")
    outs.add_argument("--svg", help="write the QR code as SVG")
    outs.add_argument("--html", help="write a printable one-page HTML certificate")
    pubs = argparse.ArgumentParser(add_help=False)
    pubs.add_argument("cert", help="certificate file (COSE_Sign1), or - for stdin")
    pubs.add_argument("--issuer", required=True, help="issuer public key: SEC1 hex or PEM (file or text)")
    pubs.add_argument("--log", required=True, help="log verifier key (file or text)")
    pubs.add_argument("--json", action="store_true", help="print the verified claims as JSON")

    s = sub.add_parser("keys", help="create (if absent) and show the ledger keys of the home")
    s.add_argument("--export", metavar="DIR", help="write issuer.pub, issuer.pem and log.vkey to DIR")
    s.add_argument("--json", action="store_true", help="print one JSON object (issuer, log, written)")
    s.set_defaults(func=cmd_keys)

    s = sub.add_parser("issue", parents=[outs], help="issue the certificate of a verify event")
    s.add_argument("index", type=int, nargs="?", help="log index of the verify event")
    s.add_argument("--item", help="certify the item's latest verification instead")
    s.add_argument("--ledger", metavar="FILE", help="ledger database file (default HOME/ledger.db)")
    s.add_argument("-o", "--out", required=True, help="certificate output file")
    s.add_argument("--json", action="store_true", help="print one JSON object (certificate, event, item, written)")
    s.set_defaults(func=cmd_issue)

    s = sub.add_parser("verify", parents=[pubs], help="verify a certificate offline (exit 0 or 1)")
    s.add_argument("--html", help="also write the printable HTML certificate")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("render", parents=[pubs, outs], help="render a (verified) certificate")
    s.set_defaults(func=cmd_render)


def cmd_keys(args) -> int:
    keys = Keys.load(home_of(args).ledger_dir, create=True)
    written = [str(p) for p in keys.export(args.export).values()] if args.export else []
    if args.json:
        print(json.dumps({"issuer": keys.issuer_public.hex(), "log": keys.log_vkey, "written": written}))
        return 0
    print(f"issuer  {keys.issuer_public.hex()}")
    print(f"log     {keys.log_vkey}")
    for path in written:
        print(f"wrote   {path}")
    return 0


def _read_cert(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no certificate file {path}")
    return p.read_bytes()


def _verify(args):
    blob = _read_cert(args.cert)
    issuer = load_issuer_public(args.issuer)
    log = load_log_verifier(args.log)
    return blob, verify_certificate(blob, issuer, log)


def cmd_issue(args) -> int:
    home = home_of(args)
    keys = Keys.load(home.ledger_dir, create=True)
    path = Path(args.ledger) if args.ledger else home.ledger_path
    with Ledger.open(path, keys=keys) as led:
        blob = led.issue_certificate(args.index, args.item)
    Path(args.out).write_bytes(blob)
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
    written = render.write_outputs(blob, info, args.png, args.svg, args.html)
    if args.json:
        print(json.dumps({"certificate": args.out, "bytes": len(blob), "index": info.index, "item": info.item,
                          "written": [str(p) for p in written]}))
        return 0
    print(f"certificate {args.out} ({len(blob)} bytes) for event {info.index} of {info.item}")
    for p in written:
        print(f"wrote {p}")
    return 0


def _summary(info) -> str:
    fap = "" if info.fap is None else f" fap={info.fap:.3g}"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.time))
    from glint.textsafe import clean

    return clean(f"ok: {info.item} {str(info.result).upper()}{fap} at {when}; event {info.index} of"
                 f" {info.checkpoint.size} in log {info.checkpoint.origin}; history of {len(info.history)} "
                 f"events checks")


def cmd_verify(args) -> int:
    # Any failure, a malformed key or file included, is a rejection: exit 1 with one line.
    try:
        blob, info = _verify(args)
    except GlintError as e:
        print(f"glint: certificate rejected: {e.oneline()}", file=sys.stderr)
        return 1
    if args.html:
        render.write_outputs(blob, info, html_path=args.html)
    print(json.dumps(info.as_dict(), indent=1) if args.json else _summary(info))
    return 0


def cmd_render(args) -> int:
    try:
        blob, info = _verify(args)
    except VerificationError as e:
        print(f"glint: certificate rejected: {e.oneline()}", file=sys.stderr)
        return 1
    written = render.write_outputs(blob, info, args.png, args.svg, args.html)
    if not written:
        raise UsageError("nothing to render", "give --png, --svg or --html")
    if args.json:
        print(json.dumps({**info.as_dict(), "written": [str(p) for p in written]}, default=str))
        return 0
    for p in written:
        print(f"wrote {p}")
    return 0
