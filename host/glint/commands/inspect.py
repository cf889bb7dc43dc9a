"""glint inspect FILE: pretty-print any glint CBOR/COSE object."""

from __future__ import annotations

import json

from glint.inspect import inspect_bytes, read_object
from glint.keys import load_public_key


def register(sub):
    p = sub.add_parser("inspect", help="pretty-print a glint CBOR/COSE object (scan, certificate, message)")
    p.add_argument("file", help="file with CBOR bytes (or their hex)")
    p.add_argument("--pubkey", help="check the signature with this P-256 key (SEC1 hex or PEM)")
    p.add_argument("--json", action="store_true", help="print one JSON object (kind, lines, signature_ok)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    pub = load_public_key(args.pubkey) if args.pubkey else None
    rep = inspect_bytes(read_object(args.file), pub)
    if args.json:
        print(json.dumps({"kind": rep.kind, "lines": rep.lines, "signature_ok": rep.signature_ok}))
    else:
        print("\n".join(rep.lines))
    return 1 if rep.signature_ok is False else 0
