"""Small inline SVG charts for HTML reports (bench, insights): no plotting dependency.

    bar_chart(["Paris", "Milan"], [3, 1], title="resales by location", ylabel="items")
    histogram([-60.2, -41.0, ...], bins=12, title="log10 FAR", xlabel="log10 FAR")

Both return an ``<svg>`` element as text (labels escaped), to paste into a page.
"""

from __future__ import annotations

import html
import math

W, H, ML, MR, MT, MB = 560, 260, 48, 12, 28, 64
BAR = "#3b6ea8"


def _frame(title: str, body: str, ylabel: str, ymax: float) -> str:
    e = html.escape
    ticks = []
    for i in range(5):
        v = ymax * i / 4
        y = H - MB - (H - MT - MB) * i / 4
        label = f"{v:.0f}" if ymax >= 4 else f"{v:.2g}"
        ticks.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{label}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            f'font-family="sans-serif" role="img" aria-label="{e(title)}">'
            f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{e(title)}</text>'
            + "".join(ticks)
            + f'<text x="12" y="{(H - MB + MT) / 2}" font-size="10" transform="rotate(-90 12 {(H - MB + MT) / 2})" '
              f'text-anchor="middle">{e(ylabel)}</text>'
            + body
            + f'<line x1="{ML}" x2="{W - MR}" y1="{H - MB}" y2="{H - MB}" stroke="#333"/></svg>')


def bar_chart(labels: list, values: list, title: str, ylabel: str = "count") -> str:
    """One bar per label (at most 60 shown: the largest)."""
    pairs = list(zip(labels, values))
    if len(pairs) > 60:
        pairs = sorted(pairs, key=lambda p: -p[1])[:60]
    if not pairs:
        return _frame(title, f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" font-size="12">no data</text>',
                      ylabel, 1)
    ymax = max(1.0, max(v for _, v in pairs))
    pw = (W - ML - MR) / len(pairs)
    bars = []
    for i, (lab, v) in enumerate(pairs):
        h = (H - MT - MB) * v / ymax
        x = ML + i * pw
        bars.append(f'<rect x="{x + pw * 0.1:.1f}" y="{H - MB - h:.1f}" width="{pw * 0.8:.1f}" height="{h:.1f}" '
                    f'fill="{BAR}"><title>{html.escape(str(lab))}: {v:g}</title></rect>'
                    f'<text x="{x + pw / 2:.1f}" y="{H - MB + 12}" font-size="9" text-anchor="end" '
                    f'transform="rotate(-40 {x + pw / 2:.1f} {H - MB + 12})">{html.escape(str(lab)[:18])}</text>')
    return _frame(title, "".join(bars), ylabel, ymax)


def histogram(values: list[float], bins: int = 12, title: str = "", xlabel: str = "") -> str:
    """Counts of ``values`` in ``bins`` equal-width bins (finite values only)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return bar_chart([], [], title)
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    labels = [f"{lo + i * width:.0f}..{lo + (i + 1) * width:.0f}" if width >= 1 else f"{lo + i * width:.2g}"
              for i in range(bins)]
    return bar_chart(labels, counts, title + (f" ({xlabel})" if xlabel and xlabel not in title else ""), "items")


__all__ = ["bar_chart", "histogram"]
