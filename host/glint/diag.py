"""CBOR diagnostic notation (RFC 8949 section 8) for glint's objects, for humans."""

from __future__ import annotations

import math

from glintcore import cbor


def diag(value, indent: int = 0, width: int = 100) -> str:
    """Render a decoded CBOR value in diagnostic notation; long containers wrap with indentation."""
    flat = _flat(value)
    if len(flat) + indent <= width or not isinstance(value, (list, dict, cbor.Tag)):
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, cbor.Tag):
        return f"{value.tag}({diag(value.value, indent, width)})"
    if isinstance(value, list):
        inner = ",\n".join(pad + diag(v, indent + 2, width) for v in value)
        return "[\n" + inner + "\n" + " " * indent + "]"
    inner = ",\n".join(pad + _flat(k) + ": " + diag(v, indent + 2, width) for k, v in value.items())
    return "{\n" + inner + "\n" + " " * indent + "}"


def _flat(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if v is cbor.undefined:
        return "undefined"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        return "h'" + bytes(v).hex() + "'"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_flat(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(_flat(k) + ": " + _flat(x) for k, x in v.items()) + "}"
    if isinstance(v, cbor.Tag):
        return f"{v.tag}({_flat(v.value)})"
    if isinstance(v, cbor.Simple):
        return f"simple({v.value})"
    return repr(v)
