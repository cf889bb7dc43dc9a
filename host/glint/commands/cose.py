"""glint cose sign|verify: COSE_Sign1 ES256 on files, for tests and engineers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from glint.inspect import read_object
from glint.keys import load_private_key, load_public_key
from glintcore import cose
from glintcore.errors import CryptoError, DecodeError


def register(sub):
    p = sub.add_parser("cose", help="sign or verify COSE_Sign1 (ES256) files")
    s = p.add_subparsers(dest="cose_cmd", metavar="ACTION", required=True)
    v = s.add_parser("verify", help="exit 0 if the signature is valid, 1 with the reason if not")
    v.add_argument("file", help="COSE_Sign1 file (bytes or hex)")
    v.add_argument("--pubkey", required=True, help="P-256 public key: SEC1 hex 04||x||y or a PEM file")
    v.add_argument("--aad", default="", help="external AAD as hex")
    v.add_argument("--payload-out", metavar="FILE", help="write the verified payload here")
    v.add_argument("--json", action="store_true", help="print one JSON object (valid, payload_bytes, payload hex)")
    v.set_defaults(func=cmd_verify)
    g = s.add_parser("sign", help="sign a payload file (deterministic RFC 6979 ES256)")
    g.add_argument("payload", help="file whose bytes become the payload")
    g.add_argument("--key", required=True, help="P-256 private key: 64 hex digits or a PEM file")
    g.add_argument("--kid", default=None, help="key id as hex")
    g.add_argument("-o", "--out", required=True, help="where to write the COSE_Sign1 bytes")
    g.add_argument("--json", action="store_true", help="print one JSON object (out, bytes)")
    g.set_defaults(func=cmd_sign)


def cmd_verify(args) -> int:
    pub = load_public_key(args.pubkey)
    data = read_object(args.file)
    try:
        payload = cose.verify1(data, pub, bytes.fromhex(args.aad))
    except (CryptoError, DecodeError) as e:
        print(f"glint: invalid: {e}", file=sys.stderr)
        return 1
    if args.payload_out:
        Path(args.payload_out).write_bytes(payload)
    if args.json:
        print(json.dumps({"valid": True, "payload_bytes": len(payload), "payload": payload.hex()}))
        return 0
    print(f"valid COSE_Sign1 ES256 signature ({len(payload)}-byte payload)")
    return 0


def cmd_sign(args) -> int:
    d = load_private_key(args.key)
    payload = Path(args.payload).read_bytes()
    kid = bytes.fromhex(args.kid) if args.kid else None
    blob = cose.sign1(payload, d, kid=kid)
    Path(args.out).write_bytes(blob)
    print(json.dumps({"out": args.out, "bytes": len(blob)}) if args.json else f"wrote {args.out}")
    return 0
