"""Describe any glint CBOR/COSE object for an engineer: diagnostic notation, headers, signature status."""

from __future__ import annotations

from dataclasses import dataclass, field

from glint.diag import diag
from glint.errors import UsageError
from glintcore import cbor, cose
from glintcore import descriptor as D
from glintcore.errors import CryptoError, DecodeError

DESCRIPTOR_FIELDS = {
    D.K_VERSION: "version", D.K_DEVICE: "device", D.K_COUNTER: "counter", D.K_NONCE: "nonce",
    D.K_FW: "fw", D.K_BOARD: "board", D.K_GEOM: "geometry", D.K_QUALITY: "quality",
    D.K_SPOTS: "spots", D.K_GUIDANCE: "guidance",
}
HEADER_NAMES = {1: "alg", 2: "crit", 3: "content type", 4: "kid"}


@dataclass
class Report:
    kind: str
    lines: list[str] = field(default_factory=list)
    signature_ok: bool | None = None


def read_object(path: str) -> bytes:
    """File bytes; a file holding only hex text is decoded (handy for pasted vectors)."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    text = data.strip()
    if text and all(c in b"0123456789abcdefABCDEF" for c in text) and len(text) % 2 == 0:
        return bytes.fromhex(text.decode())
    return data


def _is_sign1(value) -> bool:
    if isinstance(value, cbor.Tag):
        return value.tag == cose.TAG_SIGN1
    return (isinstance(value, list) and len(value) == 4 and isinstance(value[0], bytes)
            and isinstance(value[1], dict) and isinstance(value[3], bytes))


def _describe_descriptor(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        name = DESCRIPTOR_FIELDS.get(k, str(k))
        if k == D.K_SPOTS:
            spots = D.spots_list(v)
            shown = ", ".join(f"({x / D.SPOT_SCALE:.2f}, {y / D.SPOT_SCALE:.2f}, {f})" for x, y, f in spots[:4])
            out.append(f"  {name:9} {len(spots)} spots (x px, y px, flux): {shown}{' ...' if len(spots) > 4 else ''}")
        else:
            out.append(f"  {name:9} {diag(v)}")
    return out


def inspect_bytes(data: bytes, pub: bytes | None = None) -> Report:
    try:
        value = cbor.loads(data)
    except DecodeError as e:
        raise UsageError(f"not a CBOR object: {e}") from None
    if _is_sign1(value):
        s = cose.decode1(data)
        rep = Report("COSE_Sign1")
        rep.lines.append(f"COSE_Sign1 ({len(data)} bytes{', tagged' if isinstance(value, cbor.Tag) else ''})")
        for label, hdr in (("protected", s.protected), ("unprotected", s.unprotected)):
            items = ", ".join(f"{HEADER_NAMES.get(k, k)}={diag(v)}" for k, v in hdr.items()) or "(empty)"
            rep.lines.append(f"  {label:11} {items}")
        rep.lines.append(f"  signature   {s.signature.hex()}")
        try:
            inner = cbor.loads(s.payload)
        except DecodeError:
            rep.lines.append(f"  payload     {len(s.payload)} bytes (not CBOR): {s.payload[:32].hex()}")
        else:
            try:
                d = D.decode(s.payload)
            except DecodeError:
                rep.lines.append("  payload     " + diag(inner, 14))
            else:
                rep.kind = "signed scan"
                rep.lines.append(f"  payload     scan descriptor v{d[D.K_VERSION]} ({len(s.payload)} bytes)")
                rep.lines += ["  " + line for line in _describe_descriptor(d)]
        if pub is not None:
            try:
                cose.verify_decoded(s, pub)
                rep.signature_ok = True
                rep.lines.append("  status      signature valid")
            except CryptoError as e:
                rep.signature_ok = False
                rep.lines.append(f"  status      signature INVALID: {e}")
        else:
            rep.lines.append("  status      signature not checked (no --pubkey)")
        return rep
    try:
        d = D.decode(data)
    except DecodeError:
        return Report("CBOR", [diag(value)])
    return Report("scan descriptor", [f"scan descriptor v{d[D.K_VERSION]} (unsigned, {len(data)} bytes)"]
                  + _describe_descriptor(d))
