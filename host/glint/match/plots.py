"""Tiny line plots without a plotting dependency: SVG written by hand, PNG drawn with OpenCV."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

W, H, M = 640, 440, 60
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


def _scale(vals, lo, hi, log):
    v = np.asarray(vals, dtype=float)
    if log:
        v = np.log10(np.clip(v, 10 ** lo, None))
    return (v - lo) / max(hi - lo, 1e-12)


def _log_label(e: float, span: float) -> str:
    """A log-axis tick at 10^e: 1e-6 when the axis spans decades, 2.4e-3 when it spans less."""
    return f"1e{e:.0f}" if span >= 4 else f"{10 ** e:.2g}"


def line_plot(path: str | Path, series: list[tuple[str, list, list]], title: str, xlabel: str, ylabel: str,
              xlog: bool = False, ylog: bool = False, xrange=None, yrange=None) -> list[Path]:
    """Write ``path``.svg and ``path``.png; ``series`` = [(label, xs, ys)]; log axes take decades."""
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy]
    fx = (lambda v: math.log10(v)) if xlog else float
    fy = (lambda v: math.log10(v)) if ylog else float
    xlo, xhi = xrange or (min(fx(x) for x in xs if x > 0 or not xlog), max(fx(x) for x in xs if x > 0 or not xlog))
    ylo, yhi = yrange or (min(fy(y) for y in ys if y > 0 or not ylog), max(fy(y) for y in ys if y > 0 or not ylog))
    pw, ph = W - 2 * M, H - 2 * M

    def px(x, y):
        return (M + pw * _scale([x], xlo, xhi, xlog)[0], H - M - ph * _scale([y], ylo, yhi, ylog)[0])

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<rect x="{M}" y="{M}" width="{pw}" height="{ph}" fill="none" stroke="black"/>',
           f'<text x="{W / 2}" y="{M / 2}" text-anchor="middle" font-size="14">{title}</text>',
           f'<text x="{W / 2}" y="{H - 15}" text-anchor="middle">{xlabel}</text>',
           f'<text x="15" y="{H / 2}" text-anchor="middle" transform="rotate(-90 15 {H / 2})">{ylabel}</text>']
    img = np.full((H, W, 3), 255, np.uint8)
    cv2.rectangle(img, (M, M), (W - M, H - M), (0, 0, 0), 1)
    cv2.putText(img, title, (M, M // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (W // 2 - 80, H - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (4, M - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(5):  # ticks
        tx, ty = xlo + (xhi - xlo) * k / 4, ylo + (yhi - ylo) * k / 4
        kx, ky = M + pw * k / 4, H - M - ph * k / 4
        lx = _log_label(tx, xhi - xlo) if xlog else f"{tx:.3g}"
        ly = _log_label(ty, yhi - ylo) if ylog else f"{ty:.3g}"
        svg.append(f'<text x="{kx}" y="{H - M + 15}" text-anchor="middle">{lx}</text>')
        svg.append(f'<text x="{M - 5}" y="{ky + 4}" text-anchor="end">{ly}</text>')
        cv2.putText(img, lx, (int(kx) - 12, H - M + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, ly, (2, int(ky) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    for n, (label, sx, sy) in enumerate(series):
        pts = [px(x, y) for x, y in zip(sx, sy) if (x > 0 or not xlog) and (y > 0 or not ylog)]
        pts = [(min(max(a, M), W - M), min(max(b, M), H - M)) for a, b in pts]
        col = COLOURS[n % len(COLOURS)]
        if pts:
            svg.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
            bgr = tuple(int(col[i:i + 2], 16) for i in (5, 3, 1))
            cv2.polylines(img, [np.array(pts, np.int32)], False, bgr, 2, cv2.LINE_AA)
            legend_y = M + 18 * (n + 1)
            svg.append(f'<text x="{W - M - 5}" y="{legend_y}" text-anchor="end" fill="{col}">{label}</text>')
            cv2.putText(img, label, (W - M - 200, legend_y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, bgr, 1, cv2.LINE_AA)
    svg.append("</svg>")
    path = Path(path)
    path.with_suffix(".svg").write_text("\n".join(svg))
    cv2.imwrite(str(path.with_suffix(".png")), img)
    return [path.with_suffix(".svg"), path.with_suffix(".png")]
