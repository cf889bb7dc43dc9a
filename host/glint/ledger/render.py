"""Certificate renderings: QR code (PNG, SVG) and a printable one-page HTML certificate.

The QR code carries the certificate bytes themselves (QR byte mode), so a phone
app or `glint cert verify` can check it offline; the HTML page shows the claims,
the item's history and the same QR code, and is for people, not for verification.
"""

from __future__ import annotations

import html
import io
import time as _time
from pathlib import Path

import segno

from glint.errors import UsageError
from glint.ledger.cert import CertInfo

QR_ERROR_LEVEL = "l"  # the largest capacity: certificates are signed, not error-tolerant text
QR_SCALE_PNG = 4
QR_SCALE_SVG = 3
QR_BORDER = 4


def qr_code(blob: bytes) -> segno.QRCode:
    """A QR code of the certificate bytes; UsageError if they exceed one QR code."""
    try:
        return segno.make(blob, error=QR_ERROR_LEVEL, micro=False, boost_error=True)
    except segno.DataOverflowError:
        raise UsageError(f"certificate of {len(blob)} bytes does not fit one QR code (max 2953)",
                         "the item's history is long: share the file or the HTML page instead") from None


def qr_png(blob: bytes, scale: int = QR_SCALE_PNG) -> bytes:
    buf = io.BytesIO()
    qr_code(blob).save(buf, kind="png", scale=scale, border=QR_BORDER)
    return buf.getvalue()


def qr_svg(blob: bytes, scale: int = QR_SCALE_SVG) -> str:
    buf = io.BytesIO()
    qr_code(blob).save(buf, kind="svg", scale=scale, border=QR_BORDER, xmldecl=True)
    return buf.getvalue().decode("utf-8")


def _ts(t: int | None) -> str:
    return "" if t is None else _time.strftime("%Y-%m-%d %H:%M:%S UTC", _time.gmtime(t))


_CSS = """
@page { size: A4; margin: 15mm; }
body { font: 11pt/1.35 system-ui, sans-serif; color: #111; max-width: 180mm; margin: auto; }
h1 { font-size: 18pt; margin: 0 0 4mm; } h2 { font-size: 12pt; margin: 6mm 0 2mm; }
.verdict { font-size: 16pt; font-weight: bold; padding: 2mm 4mm; display: inline-block; }
.pass { background: #d8f3dc; color: #1b4332; } .fail { background: #ffd6d6; color: #7a0000; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; }
td, th { border-bottom: 1px solid #ccc; padding: 1mm 2mm; text-align: left; vertical-align: top; }
.mono { font-family: ui-monospace, monospace; font-size: 8pt; word-break: break-all; }
.top { display: flex; justify-content: space-between; gap: 6mm; }
"""


def certificate_html(blob: bytes, info: CertInfo) -> str:
    """A printable one-page HTML certificate (self-contained: inline CSS and QR SVG)."""
    e = html.escape
    st = info.state
    try:
        qr = qr_code(blob).svg_inline(scale=2, border=QR_BORDER)
    except UsageError as err:
        qr = f"<p>{e(str(err))}</p>"
    rows = [
        ("Item", info.item), ("Brand", st.brand), ("Provenance", st.provenance_line()),
        ("Verified at", _ts(info.time)), ("False-accept probability", "" if info.fap is None else f"{info.fap:.3g}"),
        ("Location", info.location or ""), ("Operator", info.operator or ""), ("Device", info.device or ""),
        ("Owner", st.owner or ""), ("Custodian", st.custodian or ""),
    ]
    claims = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    passport = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in sorted(st.passport.items()))
    hist = "".join(
        f"<tr><td>{h.index}</td><td>{e(_ts(h.time))}</td><td>{e(h.kind)}</td><td>{e(h.summary())}</td></tr>"
        for h in info.history + [info.event]
    )
    coats = "".join(
        f"<tr><td>{e(c.id)}</td><td>{c.enrolled_index}</td>"
        f"<td>{'active' if c.active else 'replaced by ' + e(str(c.replaced_by))}</td></tr>"
        for c in st.coatings
    )
    cp = info.checkpoint
    verdict = "GENUINE" if info.result == "pass" else "NOT VERIFIED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>glint scan certificate: {e(info.item)}</title>
<style>{_CSS}</style></head><body>
<div class="top"><div>
<h1>Scan certificate</h1>
<div class="verdict {'pass' if info.result == 'pass' else 'fail'}">{verdict}</div>
<table>{claims}</table>
</div><div>{qr}</div></div>
<h2>Product passport</h2><table>{passport or '<tr><td>none recorded</td></tr>'}</table>
<h2>Coatings</h2><table><tr><th>Coating</th><th>Enrolled (log index)</th><th>Status</th></tr>{coats}</table>
<h2>History</h2><table><tr><th>Log index</th><th>Time</th><th>Event</th><th>Details</th></tr>{hist}</table>
<h2>Transparency log</h2>
<p class="mono">log {e(cp.origin)}, event {info.index} of {cp.size}, root {cp.root.hex()}<br>
scan digest {info.scan.hex() if info.scan else '(none)'}<br>issued {e(_ts(info.issued))}</p>
<p>Verify offline: <span class="mono">glint cert verify CERT --issuer ISSUER.pub --log LOG.vkey</span></p>
</body></html>
"""


def write_outputs(blob: bytes, info: CertInfo, png: str | None = None, svg: str | None = None,
                  html_path: str | None = None) -> list[Path]:
    """Write the requested renderings; return the paths written."""
    out = []
    if png:
        Path(png).write_bytes(qr_png(blob))
        out.append(Path(png))
    if svg:
        Path(svg).write_text(qr_svg(blob))
        out.append(Path(svg))
    if html_path:
        Path(html_path).write_text(certificate_html(blob, info))
        out.append(Path(html_path))
    return out
