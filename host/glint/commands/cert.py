"""`glint cert`: keys, scan certificates, offline verification, renderings.

    glint cert keys [--export DIR]                         create/show the issuer and log keys
    glint cert issue (INDEX | --item ITEM) -o CERT [--bundle F] [--reveal READER] [--png F] [--svg F] [--html F]
    glint cert bundle CERT -o BUNDLE [--reveal READER] [--remote URL]   certificate + the item's history
    glint cert verify CERT|BUNDLE --issuer KEY --log KEY [--remote URL] [--html F]   exit 0, or 1 with the reason
    glint cert void CERT --reason TEXT                     void a certificate (a void event in the ledger)
    glint cert render CERT|BUNDLE --issuer KEY --log KEY [--png F] [--svg F] [--html F]

KEY for --issuer: SEC1 hex (issuer.pub) or PEM (issuer.pem), as a file or inline;
for --log: the signed-note verifier key (log.vkey), as a file or inline.
Who, where and non-public passport values are sealed in the log (glint.ledger.sealed): a bundle
reveals those its reader may see (--reveal owner: the buyer's; default public: none), and
verify checks every revealed value against its commitment.
A certificate is compact (format 4: the event, its inclusion proof, the log's signature
on the checkpoint; ~300 bytes plus 32 per 1 bit of the event's log index); the item's
history is checked against the event's chain head from a bundle, or fetched with
--remote from the log's `glint serve`, which also says the certificate's current
status (voided: rejected; the item retired or suspect since: said). The QR codes encode
the certificate's public URL on the home's resolver host ([public] host in
config.toml; glint.publish).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from glint import publish
from glint.db import is_url
from glint.errors import GlintError, UsageError, VerificationError
from glint.home import Home, home_of
from glint.ledger import Keys, Ledger, load_issuer_public, load_log_verifier, render
from glint.ledger import cert as certmod
from glint.ledger.cert import verify as verify_certificate
from glint.ledger.sealed import READS

_REVEAL = dict(choices=tuple(READS), default="public", metavar="READER",
               help="reveal the sealed values this reader may see (public, owner: the buyer's, regulator, "
                    "recycler, brand; default public: none) in the bundle and the HTML")


def register(subparsers) -> None:
    p = subparsers.add_parser("cert", help="scan certificates: issue, verify offline, render",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cert_cmd", metavar="SUBCOMMAND", required=True)
    outs = argparse.ArgumentParser(add_help=False)
    outs.add_argument("--png", help="write the QR code as PNG")
    outs.add_argument("--svg", help="write the QR code as SVG")
    outs.add_argument("--html", help="write a printable one-page HTML certificate")
    pubs = argparse.ArgumentParser(add_help=False)
    pubs.add_argument("cert", help="certificate (COSE_Sign1) or bundle file, or - for stdin")
    pubs.add_argument("--issuer", required=True, help="issuer public key: SEC1 hex or PEM (file or text)")
    pubs.add_argument("--log", required=True, help="log verifier key (file or text)")
    pubs.add_argument("--remote", metavar="URL",
                      help="fetch the item's history from this glint serve (http://HOST:PORT) and check it")
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
    s.add_argument("--bundle", metavar="FILE", help="also write the bundle (certificate + history) for offline checks")
    s.add_argument("--reveal", **_REVEAL)
    s.add_argument("--json", action="store_true",
                   help="print one JSON object (certificate, id, url, bytes, event, item, written)")
    s.set_defaults(func=cmd_issue)

    s = sub.add_parser("bundle", help="write a certificate with the item's history, for offline checks")
    s.add_argument("cert", help="certificate file (COSE_Sign1)")
    s.add_argument("-o", "--out", required=True, help="bundle output file")
    s.add_argument("--ledger", metavar="FILE", help="ledger database file (default HOME/ledger.db)")
    s.add_argument("--remote", metavar="URL", help="fetch the history from this glint serve instead of the home's ledger")
    s.add_argument("--reveal", **_REVEAL)
    s.add_argument("--issuer", help="issuer public key (default: the home's; needed with --remote)")
    s.add_argument("--log", help="log verifier key (default: the home's; needed with --remote)")
    s.add_argument("--json", action="store_true", help="print one JSON object (bundle, events, bytes)")
    s.set_defaults(func=cmd_bundle)

    s = sub.add_parser("verify", parents=[pubs], help="verify a certificate offline (exit 0 or 1)")
    s.add_argument("--html", help="also write the printable HTML certificate")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("void", help="void a certificate this home issued (a void event in its ledger)")
    s.add_argument("cert", help="the certificate file (COSE_Sign1 or bundle), or a published certificate's id")
    s.add_argument("--reason", required=True, help="why it no longer counts (shown wherever it is checked)")
    s.add_argument("--op", help="who voids it (operator)")
    s.add_argument("--ledger", metavar="FILE", help="ledger database file (default HOME/ledger.db)")
    s.add_argument("--json", action="store_true", help="print one JSON object (event, certificate status)")
    s.set_defaults(func=cmd_void)

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


def _fetch_history(remote: str, blob: bytes, issuer: bytes, log) -> list[bytes]:
    from glint.server.client import RemoteLedger

    info = verify_certificate(blob, issuer, log)
    return RemoteLedger(remote).history(info.item, info.event.seq)


def _verify(args):
    blob, history, reveals = certmod.read_bundle(_read_cert(args.cert))
    issuer = load_issuer_public(args.issuer)
    log = load_log_verifier(args.log)
    if history is None and getattr(args, "remote", None):
        history = _fetch_history(args.remote, blob, issuer, log)
    info = verify_certificate(blob, issuer, log, history, reveals)
    args.current_status = None
    if getattr(args, "remote", None):  # the ledger is reachable: what is true of the certificate now
        from glint.orgs import status_line
        from glint.server.client import RemoteLedger

        s = RemoteLedger(args.remote).certificate_status(info.index)
        if s.get("item") != info.item:
            raise VerificationError(f"{args.remote} gives the status of another item for event {info.index}")
        if s["status"] == "voided":
            raise VerificationError(status_line(s), "the issuer no longer stands behind this certificate")
        args.current_status = s
    return blob, info


def _url(home: Home | None, info, required: bool) -> str | None:
    if home is None:
        home = Home(None)
    host = publish.resolver_host(home, required=required)
    return publish.certificate_url(host, info.item, info.id) if host else None


def _ledger_arg(value: str) -> Path | str:
    """--ledger FILE, or a postgresql:// URL."""
    return value if is_url(value) else Path(value)


def cmd_issue(args) -> int:
    home = home_of(args)
    keys = Keys.load(home.ledger_dir, create=True)
    # The QR codes encode the public URL: refuse before issuing when the home has no resolver host.
    publish.resolver_host(home, required=bool(args.png or args.svg))
    path = _ledger_arg(args.ledger) if args.ledger else home.ledger_target
    with Ledger.open(path, keys=keys) as led:
        blob = led.issue_certificate(args.index, args.item)
        info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
        history = led.history(info.item, info.event.seq)
        reveals = led.history_reveals(history + [info.event.raw], args.reveal)
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(), history, reveals)
    Path(args.out).write_bytes(blob)
    written = []
    if args.bundle:
        Path(args.bundle).write_bytes(certmod.make_bundle(blob, history, reveals))
        written.append(Path(args.bundle))
    publish.publish(home, blob, info.id)
    url = _url(home, info, required=False)
    written += render.write_outputs(blob, info, args.png, args.svg, args.html, url=url)
    if args.json:
        print(json.dumps({"certificate": args.out, "id": info.id, "url": url, "bytes": len(blob),
                          "index": info.index, "item": info.item, "written": [str(p) for p in written]}))
        return 0
    print(f"certificate {args.out} ({len(blob)} bytes) for event {info.index} of {info.item}")
    print(f"url {url}" if url else f"url (none: no [public] host in {home.config_path})")
    for p in written:
        print(f"wrote {p}")
    return 0


def cmd_bundle(args) -> int:
    blob, _ = certmod.read(_read_cert(args.cert))
    if args.remote:
        if not (args.issuer and args.log):
            raise UsageError("--remote needs --issuer and --log (the keys the certificate must verify with)")
        issuer, log = load_issuer_public(args.issuer), load_log_verifier(args.log)
        history = _fetch_history(args.remote, blob, issuer, log)
        reveals = None
        if args.reveal != "public":
            raise UsageError("--remote bundles reveal nothing (the server's history is public)",
                             "make the bundle where the ledger is, or with its owner's 'glint cert bundle'")
    else:
        home = home_of(args)
        keys = None if (args.issuer and args.log) else Keys.load(home.ledger_dir)
        issuer = load_issuer_public(args.issuer) if args.issuer else keys.issuer_public  # type: ignore[union-attr]
        log = load_log_verifier(args.log) if args.log else keys.log_verifier()  # type: ignore[union-attr]
        info = verify_certificate(blob, issuer, log)
        with Ledger.open(_ledger_arg(args.ledger) if args.ledger else home.ledger_target, readonly=True) as led:
            history = led.history(info.item, info.event.seq)
            reveals = led.history_reveals(history + [info.event.raw], args.reveal)
    verify_certificate(blob, issuer, log, history, reveals)  # a bundle that would not verify is not written
    data = certmod.make_bundle(blob, history, reveals)
    Path(args.out).write_bytes(data)
    if args.json:
        print(json.dumps({"bundle": args.out, "events": len(history) + 1, "bytes": len(data)}))
    else:
        print(f"bundle {args.out} ({len(data)} bytes): certificate and {len(history)} earlier events")
    return 0


def _summary(info) -> str:
    fap = "" if info.fap is None else f" fap={info.fap:.3g}"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.time))
    from glint.textsafe import clean

    if info.history_checked:
        hist = f"history of {len(info.history)} events checks against the chain head"
    else:
        hist = "history not checked (give a bundle from 'glint cert bundle', or --remote URL)"
    head = clean(f"ok: {info.item} {str(info.result).upper()}{fap} at {when}; event {info.index} of"
                 f" {info.checkpoint.size} in log {info.checkpoint.origin}; {hist}" + _facts(info))
    # every event of the item up to the certified scan: when, what, who and where (Event.summary)
    from glint.ledger.lifecycle import when as _when

    lines = [f"  {h.index:>8}  {_when(h.time)}  {clean(h.kind):<13} "
             f"{h.summary()}" for h in (info.history or []) + [info.event]]
    return "\n".join([head, *lines])


def _facts(info) -> str:
    """Lineage (when the history was checked) and what the scan checked (always: it is the certified event)."""
    from glint.ledger.cert import checked_line, lineage_line

    made = lineage_line(info.state) if info.state is not None else None
    via = info.event.data.get("via")
    return (f"; {made}" if made else "") + (f"; checked {checked_line(info.event.data)}" if via else "")


def cmd_verify(args) -> int:
    # Any failure, a malformed key or file included, is a rejection: exit 1 with one line.
    try:
        blob, info = _verify(args)
    except GlintError as e:
        print(f"glint: certificate rejected: {e.oneline()}", file=sys.stderr)
        return 1
    if args.html:
        render.write_outputs(blob, info, html_path=args.html, url=_url(None, info, required=False))
    s = getattr(args, "current_status", None)
    if args.json:
        print(json.dumps({**info.as_dict(), **({"status": s} if s else {})}, indent=1))
    else:
        print(_summary(info))
        if s:
            from glint.orgs import status_line

            print(f"status now: {status_line(s)}")
    return 0


def cmd_void(args) -> int:
    from glint import orgs

    home = home_of(args)
    if certmod.is_cert_id(args.cert) and not Path(args.cert).exists():
        blob = publish.published(home, args.cert)
        if blob is None:
            raise UsageError(f"no certificate {args.cert} is published in this home", "give the certificate file")
    else:
        blob = certmod.read(_read_cert(args.cert))[0]
    keys = Keys.load(home.ledger_dir, create=True)
    # Only this home's own certificates: its issuer signed it and its log holds the certified event.
    info = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
    path = _ledger_arg(args.ledger) if args.ledger else home.ledger_target
    with Ledger.open(path, keys=keys) as led:
        if info.index >= led.size or led.event(info.index).hash != info.event.hash:
            raise UsageError("this certificate's event is not in this home's ledger", "void it where it was issued")
        a = orgs.void_certificate(led, info.index, args.reason, args.op)
        status = orgs.current_status(led, info.index)
    if args.json:
        print(json.dumps({"certificate": info.id, "item": info.item, "event": a.index, "status": status}))
    else:
        print(f"voided certificate {info.id} of {info.item} (verify event {info.index}): void event {a.index}")
    return 0


def cmd_render(args) -> int:
    try:
        blob, info = _verify(args)
    except VerificationError as e:
        print(f"glint: certificate rejected: {e.oneline()}", file=sys.stderr)
        return 1
    url = _url(Home.open(getattr(args, "home", None)) if (args.png or args.svg) else None, info,
               required=bool(args.png or args.svg))
    written = render.write_outputs(blob, info, args.png, args.svg, args.html, url=url)
    if not written:
        raise UsageError("nothing to render", "give --png, --svg or --html")
    if args.json:
        print(json.dumps({**info.as_dict(), "url": url, "written": [str(p) for p in written]}, default=str))
        return 0
    for p in written:
        print(f"wrote {p}")
    return 0
