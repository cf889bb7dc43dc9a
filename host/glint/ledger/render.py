"""Certificate renderings: QR code (PNG, SVG) and a printable one-page HTML certificate.

The QR code carries the certificate's public URL (glint.publish.certificate_url: a GS1
Digital Link URL of the item with ``?c=<id>``, or ``https://HOST/c/<id>``), which any
phone opens; the page there verifies the certificate in the browser. The HTML page
shows the claims, the item's history and the same QR code, and is for people, not for
verification.
"""

from __future__ import annotations

import html
import io
import time as _time
from pathlib import Path

import segno

from glint.errors import UsageError
from glint.ledger.cert import CertInfo, checked_line, lineage_line
from glint.ledger.sealed import Sealed

QR_ERROR_LEVEL = "m"  # a short URL: room for 15 % damage (labels get scratched)
QR_SCALE_PNG = 4
QR_SCALE_SVG = 3
QR_BORDER = 4


def qr_code(url: str) -> segno.QRCode:
    """A QR code of the certificate's public URL; UsageError if it does not fit one code."""
    try:
        return segno.make(url, error=QR_ERROR_LEVEL, micro=False, boost_error=True)
    except segno.DataOverflowError:
        raise UsageError(f"URL of {len(url)} characters does not fit one QR code") from None


def qr_png(url: str, scale: int = QR_SCALE_PNG) -> bytes:
    buf = io.BytesIO()
    qr_code(url).save(buf, kind="png", scale=scale, border=QR_BORDER)
    return buf.getvalue()


def qr_svg(url: str, scale: int = QR_SCALE_SVG) -> str:
    buf = io.BytesIO()
    qr_code(url).save(buf, kind="svg", scale=scale, border=QR_BORDER, xmldecl=True)
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


def certificate_html(blob: bytes, info: CertInfo, url: str | None = None) -> str:
    """A printable one-page HTML certificate (self-contained: inline CSS and QR SVG of ``url``).

    ``info`` should be verified with the history (``info.state``); without it the page
    shows the certified event only.
    """
    e = html.escape
    st = info.state
    if st is None:
        from glint.ledger.twins import ItemState

        st = ItemState(info.item)
    qr = (qr_code(url).svg_inline(scale=2, border=QR_BORDER) + f'<p class="mono">{e(url)}</p>') if url else \
        "<p>no public URL (the home has no [public] host)</p>"
    rows = [
        ("Certificate", info.id),
        ("Item", info.item), ("Brand", st.brand), ("Provenance", st.provenance_line() if st.provenance else ""),
        ("Verified at", _ts(info.time)), ("False-accept probability", "" if info.fap is None else f"{info.fap:.3g}"),
        ("Location", info.location or ""), ("Operator", info.operator or ""), ("Device", info.device or ""),
        ("Owner", st.owner or ""), ("Custodian", st.custodian or ""),
        ("Authenticated by", checked_line(info.event.data)),
    ]
    if st.lineage:
        rows.insert(3, ("Made from", lineage_line(st) or ""))
    claims = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    # a sealed value (glint.ledger.sealed) this certificate's reader may not see is left out
    passport = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in sorted(st.passport.items())
                       if not isinstance(v, Sealed))
    hist = "".join(
        f"<tr><td>{h.index}</td><td>{e(_ts(h.time))}</td><td>{e(h.kind)}</td><td>{e(h.summary())}</td></tr>"
        for h in (info.history or []) + [info.event]
    )
    coats = "".join(
        f"<tr><td>{e(c.id)}</td><td>{c.enrolled_index}</td>"
        f"<td>{'active' if c.active else 'replaced by ' + e(str(c.replaced_by))}</td></tr>"
        for c in st.coatings
    )
    cp = info.checkpoint
    unchecked = "" if info.history_checked else "<p>(history not checked: only the certified event)</p>"
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
<h2>History</h2>{unchecked}<table><tr><th>Log index</th><th>Time</th><th>Event</th><th>Details</th></tr>{hist}</table>
<h2>Transparency log</h2>
<p class="mono">log {e(cp.origin)}, event {info.index} of {cp.size}, root {cp.root.hex()}<br>
scan digest {info.scan.hex() if info.scan else '(none)'}<br>issued {e(_ts(info.issued))}</p>
<p>Certificate {e(info.id)}. Verify offline: <span class="mono">glint cert verify BUNDLE --issuer ISSUER.pub --log LOG.vkey</span>
(a bundle from <span class="mono">glint cert bundle</span> carries the history too).</p>
</body></html>
"""


def write_outputs(blob: bytes, info: CertInfo, png: str | None = None, svg: str | None = None,
                  html_path: str | None = None, url: str | None = None) -> list[Path]:
    """Write the requested renderings; return the paths written. A QR code needs ``url``."""
    out = []
    if (png or svg) and not url:
        raise UsageError("a QR code needs the certificate's public URL, and this home has no [public] host",
                         'set [public] host = "id.example.com" in the home\'s config.toml')
    if png:
        assert url is not None
        Path(png).write_bytes(qr_png(url))
        out.append(Path(png))
    if svg:
        assert url is not None
        Path(svg).write_text(qr_svg(url))
        out.append(Path(svg))
    if html_path:
        Path(html_path).write_text(certificate_html(blob, info, url))
        out.append(Path(html_path))
    return out
